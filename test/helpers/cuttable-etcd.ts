/**
 * A real etcd plus a client that reaches it through a TCP proxy the test can
 * cut and restore (to simulate a partition), and a direct client to change
 * and compact etcd meanwhile.
 */
import type { Etcd3 } from 'etcd3';
import { connect } from '../../src/registry/client.js';
import { resolveConnection } from '../../src/registry/connection.js';
import { startEtcd, type EtcdServer } from './etcd.js';
import { TcpProxy } from './tcp-proxy.js';

export interface CuttableEtcd {
  etcd: EtcdServer;
  direct: Etcd3;
  viaProxy: Etcd3;
  proxy: TcpProxy;
  stop(): Promise<void>;
}

export async function startCuttableEtcd(): Promise<CuttableEtcd> {
  const etcd = await startEtcd();
  const direct = connect(resolveConnection({ endpoint: etcd.endpoints[0] }, {}));
  const proxy = await TcpProxy.start(Number(new URL(etcd.endpoints[0]!).port));
  const viaProxy = connect(resolveConnection({ endpoint: `http://127.0.0.1:${proxy.port}`, requestTimeout: '1' }, {}));
  return {
    etcd,
    direct,
    viaProxy,
    proxy,
    async stop() {
      viaProxy.close();
      direct.close();
      await proxy.cut();
      await etcd.stop();
    },
  };
}
