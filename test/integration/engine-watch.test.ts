/**
 * The engine's watches survive a broken connection during which etcd
 * compacted the revisions they would resume from: etcd cancels such a watch
 * (`error` in etcd3, which would crash the process unhandled); the engine
 * re-lists, re-watches and keeps scheduling. The connection is broken with a
 * small TCP proxy between the engine's client and a real etcd.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import { keyspace } from '../../src/registry/keys.js';
import type { UnitRecord } from '../../src/registry/records.js';
import type { FleetxError } from '../../src/errors/errors.js';
import { Engine } from '../../src/engine/engine.js';
import { parseUnit } from '../../src/unit/parse.js';
import { unitHash } from '../../src/unit/hash.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { waitFor } from '../helpers/wait.js';

const etcd = useEtcd({ proxy: true, proxyRequestTimeout: '2' });
let proxy: TcpProxy;
let admin: Etcd3;
let viaProxy: Etcd3;

beforeAll(() => {
  ({ proxy, client: admin, viaProxy } = etcd);
});

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
      await waitFor('leadership', () => engine.state === 'leader');
      await submit('before.service');
      await waitFor('before.service placed', () => placed('before.service'));

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

      // the re-opened watches work: a new unit is placed (the next resync is ten minutes away)
      await submit('after.service');
      await waitFor('after.service placed', () => placed('after.service'));
      expect(engine.state).toBe('leader');
    } finally {
      await engine.stop();
      await machineLease.revoke();
    }
  }, 60_000);
});
