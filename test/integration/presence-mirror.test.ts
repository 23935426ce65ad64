/**
 * PrefixMirror against a real etcd reached through a TCP proxy the test can
 * cut: while the mirror is cut off, keys change and etcd compacts its
 * history, so the watch cannot resume (etcd cancels it: "required revision
 * has been compacted"); the mirror must re-list and watch again, and end up
 * with exactly what etcd holds.
 */
import { describe, expect, it } from 'vitest';
import { PrefixMirror } from '../../src/presence/mirror.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { waitFor } from '../helpers/wait.js';

const etcd = useEtcd({ proxy: true });

describe('PrefixMirror', () => {
  it('follows puts and deletes, filters with accept, and reports unreadable records', async () => {
    await etcd.client.put('/m1/a').value('{"n":1}').exec();
    await etcd.client.put('/m1/skip').value('{"n":-1}').exec();
    const problems: string[] = [];
    let changes = 0;
    const m = new PrefixMirror<{ n: number }>(
      etcd.viaProxy,
      { prefix: '/m1/' },
      (_k, v) => {
        const r = JSON.parse(v) as { n: number };
        return r.n >= 0 ? r : undefined;
      },
      () => changes++,
      (msg) => problems.push(msg),
      200,
    );
    try {
      await m.start();
      expect(m.ready).toBe(true);
      expect(m.values()).toEqual([{ n: 1 }]);
      await etcd.client.put('/m1/b').value('{"n":2}').exec();
      await etcd.client.delete().key('/m1/a').exec();
      await etcd.client.put('/m1/bad').value('not json').exec();
      await waitFor('b in, a out', () => JSON.stringify(m.values()) === '[{"n":2}]' && problems.length === 1);
      expect(problems[0]).toMatch(/unreadable record at \/m1\/bad/);
      expect(changes).toBeGreaterThanOrEqual(3);
    } finally {
      await m.stop();
    }
  });

  it('one exact key does not match longer keys', async () => {
    await etcd.client.put('/m2/app').value('{"n":1}').exec();
    await etcd.client.put('/m2/app2').value('{"n":2}').exec();
    const m = new PrefixMirror<{ n: number }>(etcd.viaProxy, { key: '/m2/app' }, (_k, v) => JSON.parse(v), () => undefined, () => undefined, 200);
    try {
      await m.start();
      expect(m.values()).toEqual([{ n: 1 }]);
      await etcd.client.put('/m2/app2').value('{"n":3}').exec();
      await etcd.client.put('/m2/app').value('{"n":4}').exec();
      await waitFor('app updated', () => m.values()[0]?.n === 4);
      expect(m.values()).toEqual([{ n: 4 }]);
    } finally {
      await m.stop();
    }
  });

  it('a watch that cannot resume after compaction is re-listed and re-watched', async () => {
    await etcd.client.put('/m3/a').value('{"n":1}').exec();
    const problems: string[] = [];
    const m = new PrefixMirror<{ n: number }>(etcd.viaProxy, { prefix: '/m3/' }, (_k, v) => JSON.parse(v), () => undefined, (msg) => problems.push(msg), 200);
    try {
      await m.start();
      expect(m.values()).toEqual([{ n: 1 }]);
      await etcd.proxy.cut();
      // while the mirror is cut off: changes, then history compacted away
      await etcd.client.delete().key('/m3/a').exec();
      await etcd.client.put('/m3/b').value('{"n":2}').exec();
      const res = await etcd.client.put('/m3/c').value('{"n":3}').exec();
      await etcd.client.put('/m3/d').value('{"n":4}').exec();
      await etcd.client.delete().key('/m3/d').exec();
      const compactTo = (BigInt(res.header.revision) + 2n).toString();
      // etcd3 1.1.2 has no compact() helper: use the raw KV client
      await etcd.client.kv.compact({ revision: compactTo, physical: true });
      await etcd.proxy.restore();
      await waitFor('mirror caught up', () => JSON.stringify(m.values().map((v) => v.n).sort()) === '[2,3]');
      expect(problems).toContain('watch on /m3/ failed; listing again');
      // and it keeps following
      await etcd.client.put('/m3/e').value('{"n":5}').exec();
      await waitFor('e seen', () => m.values().some((v) => v.n === 5));
    } finally {
      await m.stop();
    }
  });
});
