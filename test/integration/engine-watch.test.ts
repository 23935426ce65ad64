/**
 * The engine's watches survive a broken connection during which etcd
 * compacted the revisions they would resume from: etcd cancels such a watch
 * (`error` in etcd3, which would crash the process unhandled); the engine
 * re-lists, re-watches and keeps scheduling. The connection is broken with a
 * small TCP proxy between the engine's client and a real etcd.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import { connect } from '../../src/registry/client.js';
import { keyspace } from '../../src/registry/keys.js';
import type { UnitRecord } from '../../src/registry/records.js';
import type { FleetxError } from '../../src/errors/errors.js';
import { Engine } from '../../src/engine/engine.js';
import { parseUnit } from '../../src/unit/parse.js';
import { unitHash } from '../../src/unit/hash.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';


let etcd: EtcdServer;
let proxy: TcpProxy;
let admin: Etcd3;
let viaProxy: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  const url = new URL(etcd.endpoints[0]!);
  proxy = await TcpProxy.start(Number(url.port));
  admin = connect({ endpoints: etcd.endpoints, requestTimeoutMs: 3000, prefix: '/fleetx' });
  viaProxy = connect({ endpoints: [`http://127.0.0.1:${proxy.port}`], requestTimeoutMs: 2000, prefix: '/fleetx' });
});

afterAll(async () => {
  viaProxy?.close();
  admin?.close();
  await proxy?.cut();
  await etcd?.stop();
});

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('engine watches', () => {
  it('re-list and re-watch after the connection broke and etcd compacted past their revision', async () => {
    const keys = keyspace('/w');
    const text = '[Service]\nExecStart=/bin/true\n';
    const hash = unitHash(parseUnit(text));
    await admin.put(keys.body(hash)).value(text).exec();
    const submit = (name: string) => {
      const rec: UnitRecord = { name, hash, targetState: 'launched' };
      return admin.put(keys.unit(name)).value(JSON.stringify(rec)).exec();
    };
    const placed = async (name: string) => (await admin.get(keys.schedule('m1', name)).string()) !== null;
    const machineLease = admin.lease(60);
    await machineLease.put(keys.machine('m1')).value(JSON.stringify({ id: 'm1', metadata: {} })).exec();

    // resync far away: whatever gets scheduled below was triggered by watches or re-listing
    const engine = new Engine({ client: viaProxy, keys, machineId: 'e1', leaseTtlSeconds: 10, resyncMs: 600_000, retryMs: 300 });
    const warnings: FleetxError[] = [];
    engine.on('warning', (w) => warnings.push(w));
    engine.start();
    try {
      await waitFor('leadership', async () => engine.state === 'leader', 10_000);
      await submit('before.service');
      await waitFor('before.service placed', () => placed('before.service'), 5000);

      await proxy.cut();
      await submit('during.service');
      for (let i = 0; i < 5; i++) await admin.put(`/w/noise/${i}`).value('x').exec();
      const rev = (await admin.get('/w/noise/4').exec()).header.revision;
      await admin.kv.compact({ revision: rev, physical: true });
      await proxy.restore();

      // etcd3 may first reconnect (a pass follows), then learn that the
      // revision was compacted (cancel + error): both lead to a full re-list.
      // While the proxy refuses connections etcd3's circuit breaker may open
      // for 5 s, hence the generous waits.
      await waitFor('during.service placed after reconnecting', () => placed('during.service'), 15_000);
      await waitFor('the compaction error', async () => warnings.some((w) => /watch on .* failed/.test(w.message)), 15_000);

      // the re-opened watches work: a new unit is placed long before any resync
      const t0 = Date.now();
      await submit('after.service');
      await waitFor('after.service placed', () => placed('after.service'), 3000);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(engine.state).toBe('leader');
    } finally {
      await engine.stop();
      await machineLease.revoke();
    }
  }, 60_000);
});
