/**
 * One real etcd for the calling test file, with clients on it: started in
 * beforeAll, closed and stopped in afterAll. Tests share it without seeing
 * each other by taking a fresh key prefix each (`fresh()`).
 *
 *   const etcd = useEtcd();                  // or useEtcd({ auth: true }), useEtcd({ proxy: true })
 *   it('…', async () => { const keys = etcd.freshKeys(); await etcd.client.put(keys.unit('a')).value('…'); });
 *
 * With `proxy`, a second client (`viaProxy`) reaches etcd through a TCP
 * proxy the test can cut (`etcd.proxy.cut()`), for outages and compaction.
 */
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll } from 'vitest';
import { connect } from '../../src/registry/client.js';
import { resolveConnection, type ConnectionOptions } from '../../src/registry/connection.js';
import { keyspace, type Keyspace } from '../../src/registry/keys.js';
import { startEtcd, type EtcdServer, type StartEtcdOptions } from './etcd.js';
import { TcpProxy } from './tcp-proxy.js';

export interface UseEtcdOptions extends StartEtcdOptions {
  /** also a client through a TCP proxy the test can cut */
  proxy?: boolean;
  /** the request timeout of the client through the proxy, in seconds (default 1) */
  proxyRequestTimeout?: string;
}

export interface EtcdFixture {
  readonly server: EtcdServer;
  readonly endpoint: string;
  /** how fleetx connects to it (credentials and TLS files included) */
  readonly conn: ConnectionOptions;
  /** a client straight to etcd, for the test's own reads and writes */
  readonly client: Etcd3;
  /** with `proxy`: the proxy and a client through it */
  readonly proxy: TcpProxy;
  readonly viaProxy: Etcd3;
  readonly viaProxyConn: ConnectionOptions;
  /** a key prefix no other test of this file has had: `/${tag}${n}` */
  fresh(tag?: string): string;
  freshKeys(tag?: string): Keyspace;
  /** the CLI's environment for a fresh prefix (FLEETX_ENDPOINT, FLEETX_ETCD_KEY_PREFIX, FLEETX_USER) */
  cliEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** a JSON record, or undefined when the key is absent */
  json<T>(key: string): Promise<T | undefined>;
}

export function useEtcd(opts: UseEtcdOptions = {}): EtcdFixture {
  let server: EtcdServer | undefined;
  let conn: ConnectionOptions | undefined;
  let client: Etcd3 | undefined;
  let proxy: TcpProxy | undefined;
  let viaProxy: Etcd3 | undefined;
  let viaProxyConn: ConnectionOptions | undefined;
  let n = 0;
  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`etcd fixture: ${what} is not there (used outside a test, or without the option?)`);
    return v;
  };

  beforeAll(async () => {
    server = await startEtcd(opts);
    const flags = {
      etcdUsername: server.username,
      etcdPassword: server.password,
      caFile: server.caFile,
      certFile: server.certFile,
      keyFile: server.keyFile,
    };
    conn = resolveConnection({ endpoint: server.endpoints[0], ...flags }, {});
    client = connect(conn);
    if (opts.proxy) {
      proxy = await TcpProxy.start(Number(new URL(server.endpoints[0]!).port));
      viaProxyConn = resolveConnection({ endpoint: proxy.url, requestTimeout: opts.proxyRequestTimeout ?? '1', ...flags }, {});
      viaProxy = connect(viaProxyConn);
    }
  });

  afterAll(async () => {
    viaProxy?.close();
    client?.close();
    await proxy?.cut();
    await server?.stop();
  });

  const fixture: EtcdFixture = {
    get server() {
      return started(server, 'the server');
    },
    get endpoint() {
      return started(server, 'the server').endpoints[0]!;
    },
    get conn() {
      return started(conn, 'the connection');
    },
    get client() {
      return started(client, 'the client');
    },
    get proxy() {
      return started(proxy, 'the proxy');
    },
    get viaProxy() {
      return started(viaProxy, 'the client through the proxy');
    },
    get viaProxyConn() {
      return started(viaProxyConn, 'the connection through the proxy');
    },
    fresh: (tag = 't') => `/${tag}${++n}`,
    freshKeys: (tag) => keyspace(fixture.fresh(tag)),
    cliEnv: (extra = {}) => ({ FLEETX_ENDPOINT: fixture.endpoint, FLEETX_ETCD_KEY_PREFIX: fixture.fresh(), FLEETX_USER: 'tester', ...extra }),
    async json<T>(key: string) {
      const s = await fixture.client.get(key).string();
      return s === null ? undefined : (JSON.parse(s) as T);
    },
  };
  return fixture;
}
