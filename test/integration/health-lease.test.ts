/**
 * HealthMonitor with the agent's Registration against a real etcd and a real
 * local HTTP server as the instance: records live under the machine lease,
 * are rewritten after the lease is lost (with what changed meanwhile), and
 * deleted when the unit leaves the machine.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registration } from '../../src/agent/registration.js';
import { StopSignal } from '../../src/agent/util.js';
import { HealthMonitor } from '../../src/health/monitor.js';
import type { HealthRecord } from '../../src/health/types.js';
import { keyspace } from '../../src/registry/keys.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { waitFor as until } from '../helpers/wait.js';

const keys = keyspace('/fx-health-lease');
const ME = 'machine-h';
const etcd = useEtcd();
let client: Etcd3;
let app: Server;
let port: number;
let healthy = true;

beforeAll(async () => {
  client = etcd.client;
  app = createServer((_req, res) => res.writeHead(healthy ? 200 : 503).end());
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  port = (app.address() as AddressInfo).port;
});

afterAll(async () => {
  app?.closeAllConnections();
  await new Promise((r) => app?.close(r));
});

const record = async (unit: string) => {
  const kv = (await client.get(keys.health(ME, unit)).exec()).kvs[0];
  return kv ? { rec: JSON.parse(kv.value.toString()) as HealthRecord, lease: kv.lease } : undefined;
};

describe('health records under the machine lease (real etcd)', () => {
  it('written under the lease, rewritten after it is lost, deleted when the unit leaves', async () => {
    const leases: string[] = [];
    let monitor!: HealthMonitor;
    const reg = new Registration(client, keys, { id: ME, ip: '10.0.0.9', hostname: 'h', metadata: {} }, { ttlSec: 3, version: 'test', startedAt: new Date().toISOString() }, {
      registered: (id) => {
        leases.push(id);
        monitor.rewriteAll();
      },
      lost: () => undefined,
      problem: () => undefined,
    });
    monitor = new HealthMonitor({ machineId: ME, keys, sink: reg, now: () => new Date(), coalesceMs: 5, retryMs: 100 });
    const stop = new StopSignal();
    const loop = reg.run(stop);
    try {
      monitor.setServices(new Map([['app@.service', { type: 'http', port, path: '/healthz', intervalMs: 100, timeoutMs: 80, threshold: 2, failureThreshold: 2 }]]));
      monitor.setManaged(new Map([['app@1.service', 'h1']]));
      monitor.observe({ name: 'app@1.service', activeState: 'active', mainPid: 4242 });
      const first = await until('healthy under the first lease', async () => {
        const r = await record('app@1.service');
        return r?.rec.status === 'healthy' ? r : undefined;
      });
      expect(first.lease).toBe(leases[0]);
      expect(first.lease).toBe((await client.get(keys.machine(ME)).exec()).kvs[0]!.lease);
      expect(first.rec).toMatchObject({ unit: 'app@1.service', machine: ME, hash: 'h1', mainPid: 4242, message: 'HTTP 200' });

      // the lease disappears (partition, expiry): the record goes with it; the instance turns bad meanwhile
      healthy = false;
      await client.leaseClient.leaseRevoke({ ID: first.lease });
      const back = await until('rewritten under the new lease', async () => {
        const r = await record('app@1.service');
        return r && leases.length >= 2 && r.lease === leases.at(-1) && r.rec.status === 'unhealthy' ? r : undefined;
      }, 15_000);
      expect(back.rec.message).toBe('HTTP 503');

      monitor.setManaged(new Map());
      await until('deleted', async () => (await record('app@1.service')) === undefined);
    } finally {
      await monitor.stop();
      monitor.close();
      stop.stop();
      await loop;
      await reg.revoke();
    }
  }, 30_000);
});
