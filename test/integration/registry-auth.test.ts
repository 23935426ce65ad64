import { beforeAll, describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { resolveConnection, type ConnectionOptions } from '../../src/registry/connection.js';
import { etcd3 } from '../../src/registry/libraries.js';
import { connect } from '../../src/registry/client.js';
import { openRegistry } from '../../src/registry/open.js';
import type { Registry } from '../../src/registry/registry.js';
import { etcdctlOn, type EtcdServer } from '../helpers/etcd.js';
import { rejection } from '../helpers/errors.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { sleep } from '../../src/registry/backoff.js';
import { waitFor } from '../helpers/wait.js';

const fixture = useEtcd({ auth: true });
let etcd: EtcdServer;

beforeAll(async () => {
  etcd = fixture.server;
  // a user that may only read fleetx's keys
  await etcdctlOn(etcd, ['role', 'add', 'reader']);
  await etcdctlOn(etcd, ['role', 'grant-permission', 'reader', 'read', '/fleetx/', '--prefix']);
  await etcdctlOn(etcd, ['user', 'add', 'reader', '--new-user-password=readpw']);
  await etcdctlOn(etcd, ['user', 'grant-role', 'reader', 'reader']);
});

function conn(env: NodeJS.ProcessEnv): ConnectionOptions {
  return resolveConnection({ endpoint: etcd.endpoints[0], 'request-timeout': '3' }, env);
}

async function using<T>(c: ConnectionOptions, fn: (r: Registry) => Promise<T>): Promise<T> {
  const { registry, close } = openRegistry(c, () => new Date(0));
  try {
    return await fn(registry);
  } finally {
    close();
  }
}

const fleetx = () => conn({ FLEETX_ETCD_USERNAME: etcd.username, FLEETX_ETCD_PASSWORD: etcd.password });

describe('etcd with authentication', () => {
  it('works with the fleetx user', async () => {
    await using(fleetx(), async (r) => {
      await r.createUnit({ name: 'auth.service', hash: 'h', targetState: 'inactive' }, 'A', { replace: false });
      await r.setTargetState('auth.service', 'launched');
      expect(await r.getUnit('auth.service')).toMatchObject({ hash: 'h', targetState: 'launched' });
    });
  });

  it('a wrong password is a usage error naming the user', async () => {
    const e = await using(conn({ FLEETX_ETCD_USERNAME: 'fleetx', FLEETX_ETCD_PASSWORD: 'wrong' }), (r) => rejection(r.listUnits()));
    expect(e.kind).toBe('usage');
    expect(e.retryable).toBe(false);
    expect(e.message).toBe('etcd rejected the credentials for user fleetx');
    expect(e.hint).toMatch(/--etcd-password/);
  });

  it('no credentials at all says authentication is required', async () => {
    const e = await using(conn({}), (r) => rejection(r.listUnits()));
    expect(e.kind).toBe('usage');
    expect(e.message).toBe(`etcd at ${etcd.endpoints[0]} requires authentication`);
  });

  it('a user without write permission gets a permission error and changes nothing', async () => {
    const before = await using(fleetx(), (r) => r.snapshot());
    const reader = conn({ FLEETX_ETCD_USERNAME: 'reader', FLEETX_ETCD_PASSWORD: 'readpw' });
    const e = await using(reader, (r) => rejection(r.createUnit({ name: 'x.service', hash: 'x', targetState: 'inactive' }, 'X', { replace: false })));
    expect(e.kind).toBe('usage');
    expect(e.message).toBe('etcd user reader may not access keys under /fleetx (permission denied)');
    expect(await using(fleetx(), (r) => r.snapshot())).toEqual(before);
    // reading is allowed
    expect((await using(reader, (r) => r.listUnits())).map((u) => u.name)).toEqual(['auth.service']);
  });

  it('a watch created after etcd dropped the user\'s tokens (its password was set) is served on a fresh token, not cancelled for ever', async () => {
    const hosts = etcd.endpoints;
    const client = new etcd3.Etcd3({ hosts, auth: { username: etcd.username!, password: etcd.password! } });
    const root = new etcd3.Etcd3({ hosts, auth: { username: 'root', password: etcd.rootPassword! } });
    try {
      const first = await client.watch().prefix('/fleetx/tok-a/').create(); // the stream, on the first token
      await root.user(etcd.username!).setPassword(etcd.password!); // same password: etcd still drops the tokens
      const seen: string[] = [];
      const errors: string[] = [];
      const second = client.watch().prefix('/fleetx/tok-b/').watcher();
      second.on('put', (kv) => seen.push(kv.key.toString()));
      second.on('error', (e) => errors.push(String(e)));
      await new Promise<void>((done) => second.once('connected', () => done()));
      await client.put('/fleetx/tok-b/x').value('1');
      await waitFor('the put seen by the new watch', () => seen.includes('/fleetx/tok-b/x'), 10_000);
      expect(errors).toEqual([]);
      await Promise.all([first.cancel(), second.cancel()]);
    } finally {
      client.close();
      root.close();
    }
  });

  it('a member back from an outage that no longer knows the token serves calls again after the pause, instead of hanging them for good (the token retry waited for the trial it ran in)', async () => {
    // fleet's own client (client.ts): its per-member breaker opens after 3
    // refused calls and lets one trial call through 5 s later. That trial
    // meets a token the member no longer knows (a restarted member forgets
    // simple tokens; here etcd drops them as its password is set), and etcd3
    // retries it with a fresh token from inside the trial: the retry used to
    // wait for the trial, which waited for the retry, and every later call to
    // that member hung with them (found as an agent frozen for good in the
    // fault matrix's NOSPACE cell).
    const proxy = await TcpProxy.start(Number(new URL(etcd.endpoints[0]!).port));
    const client = connect(resolveConnection({ endpoint: proxy.url, 'request-timeout': '3' }, { FLEETX_ETCD_USERNAME: etcd.username, FLEETX_ETCD_PASSWORD: etcd.password }));
    const root = new etcd3.Etcd3({ hosts: etcd.endpoints, auth: { username: 'root', password: etcd.rootPassword! } });
    try {
      await client.put('/fleetx/trial/k').value('1'); // a token is taken
      await proxy.cut();
      for (let i = 0; i < 3; i++) await client.get('/fleetx/trial/k').catch(() => undefined); // refused 3 times: the member is skipped
      await root.user(etcd.username!).setPassword(etcd.password!); // etcd forgets the token
      await proxy.restore();
      // calls fail fast while the member is skipped; the first one after the pause is the
      // trial (with this one member, the trial's own token retry fails fast too: it is retried)
      const outcomes: string[] = [];
      let value: string | null = null;
      while (value === null) {
        const call = client.get('/fleetx/trial/k').string().then((v) => ({ v }), (e: unknown) => ({ e }));
        const r = await Promise.race([call, sleep(15_000).then(() => 'hung' as const)]);
        if (r === 'hung') throw new Error(`a call to the member never returned (after ${outcomes.join(', ')})`);
        if ('v' in r) value = r.v;
        else {
          outcomes.push((r.e as Error).constructor.name);
          await sleep(250);
        }
      }
      expect(value).toBe('1');
      // and the member serves every call after it
      expect(await Promise.all([1, 2, 3].map(() => client.get('/fleetx/trial/k').string()))).toEqual(['1', '1', '1']);
    } finally {
      client.close();
      root.close();
      await proxy.cut();
    }
  }, 60_000);
});
