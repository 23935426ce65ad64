/**
 * PrefixWatch (registry/watch.ts) against a real etcd reached through a TCP
 * proxy the test can cut. While the watch is cut off, keys change and etcd
 * compacts its history, so the watch cannot resume: it must re-list, hand
 * the consumer a replace(), watch again, and end with exactly what etcd holds.
 */
import type { Etcd3 } from 'etcd3';
import { beforeAll, describe, expect, it } from 'vitest';
import { PrefixWatch, type KeyValue, type WatchEvent, type WatchOptions, type WatchRange } from '../../src/registry/watch.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { sleep, waitFor as until } from '../helpers/wait.js';

const cluster = useEtcd({ proxy: true });
let direct: Etcd3;
let viaProxy: Etcd3;

beforeAll(() => {
  ({ client: direct, viaProxy } = cluster);
});

/** A consumer that keeps a copy of the range, the way every user of PrefixWatch does. */
function copyOf(client: Etcd3, range: WatchRange, opts: WatchOptions = {}) {
  const items = new Map<string, string>();
  const log = { replaces: 0, events: [] as WatchEvent[], problems: [] as string[], live: [] as boolean[] };
  const watch = new PrefixWatch(client, range, {
    replace: (kvs: KeyValue[]) => {
      log.replaces++;
      items.clear();
      for (const kv of kvs) items.set(kv.key, kv.value);
    },
    event: (e) => {
      log.events.push(e);
      if (e.type === 'put') items.set(e.key, e.value);
      else items.delete(e.key);
    },
    live: (l) => log.live.push(l),
    problem: (msg) => log.problems.push(msg),
  }, { backoff: { initialMs: 100, maxMs: 400 }, probeMs: 200, ...opts });
  const sorted = () => JSON.stringify([...items].sort());
  return { watch, items, log, sorted };
}

describe('PrefixWatch', () => {
  it('lists, then delivers typed put/delete events with their mod revisions', async () => {
    await direct.put('/w1/a').value('1').exec();
    const c = copyOf(viaProxy, { prefix: '/w1/' });
    try {
      await c.watch.start();
      expect(c.watch.synced).toBe(true);
      expect(c.log.replaces).toBe(1);
      expect(c.sorted()).toBe(JSON.stringify([['/w1/a', '1']]));
      await until('live', () => c.watch.live);
      expect(c.watch.state).toBe('watching');
      const put = await direct.put('/w1/b').value('2').exec();
      const del = await direct.delete().key('/w1/a').exec();
      await until('two events', () => c.log.events.length === 2);
      expect(c.log.events).toEqual([
        { type: 'put', key: '/w1/b', value: '2', modRevision: put.header.revision },
        { type: 'delete', key: '/w1/a', modRevision: del.header.revision },
      ]);
    } finally {
      await c.watch.stop();
    }
    expect(c.watch.state).toBe('stopped');
  });

  it('a peer that froze (no reset, no FIN) is noticed by gRPC keepalive pings: the watch stops watching, then converges once it flows again', async () => {
    const c = copyOf(viaProxy, { prefix: '/w9/' });
    try {
      await c.watch.start();
      await until('live', () => c.watch.live);
      cluster.proxy.blackhole();
      await direct.put('/w9/x').value('1').exec(); // etcd has it; the frozen stream never tells
      // without keepalive the stream stays 'watching' for ever (the old behaviour: the test's timeout)
      await until('the watch notices the frozen peer', () => c.watch.state !== 'watching', { timeoutMs: 45_000, intervalMs: 100 });
      cluster.proxy.flow();
      await until('the key written meanwhile arrives', () => c.items.get('/w9/x') === '1', { timeoutMs: 30_000, intervalMs: 100 });
      expect(c.log.live).toContain(false);
    } finally {
      cluster.proxy.flow();
      await c.watch.stop();
    }
  }, 90_000);

  it('an exact key does not match longer keys', async () => {
    await direct.put('/w2/app').value('1').exec();
    await direct.put('/w2/app2').value('2').exec();
    const c = copyOf(viaProxy, { key: '/w2/app' });
    try {
      await c.watch.start();
      await direct.put('/w2/app2').value('3').exec();
      await direct.put('/w2/app').value('4').exec();
      await until('app updated', () => c.items.get('/w2/app') === '4');
      expect([...c.items.keys()]).toEqual(['/w2/app']);
    } finally {
      await c.watch.stop();
    }
  });

  it.each([
    ['the watch error (compacted start revision)', { probeMs: 3_600_000 }],
    ['the reconnect probe', {}],
  ])('compaction while disconnected: re-lists through %s and converges', async (_how, opts) => {
    const p = `/w3-${Object.keys(opts).length}/`;
    await direct.put(`${p}a`).value('1').exec();
    const c = copyOf(viaProxy, { prefix: p }, opts);
    try {
      await c.watch.start();
      await until('live', () => c.watch.live);
      await cluster.proxy.cut();
      await until('disconnected', () => !c.watch.live);
      // while cut off: changes, then history compacted away
      await direct.delete().key(`${p}a`).exec();
      await direct.put(`${p}b`).value('2').exec();
      await direct.put(`${p}c`).value('3').exec();
      await direct.put(`${p}d`).value('4').exec();
      const last = await direct.delete().key(`${p}d`).exec();
      await direct.kv.compact({ revision: last.header.revision, physical: true });
      await cluster.proxy.restore();
      await until('converged', () => c.sorted() === JSON.stringify([[`${p}b`, '2'], [`${p}c`, '3']]) && c.watch.live);
      expect(c.log.replaces).toBeGreaterThanOrEqual(2);
      // live went false while cut off and true again, in that order
      expect(c.log.live.slice(0, 3)).toEqual([true, false, true]);
      // and it keeps following
      await direct.put(`${p}e`).value('5').exec();
      await until('e seen', () => c.items.get(`${p}e`) === '5');
    } finally {
      await c.watch.stop();
    }
    if (Object.keys(opts).length > 0) expect(c.log.problems).toContain(`watch on ${p} failed; listing again`);
  });

  it('a long outage keeps one reconnect probe per watch, not one more per failed reconnect', async () => {
    // etcd3 emits `disconnected` at every failed reconnect: each one used to start another probe
    // loop reading etcd every probeMs, so the read rate grew with the outage. Every probe waits on
    // the watch's abort signal, and Node warns at more than 10 listeners on one: without the fix,
    // 4 s of outage were enough for 11 probes.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    const c = copyOf(viaProxy, { prefix: '/w7/' }, { probeMs: 600_000 });
    try {
      await c.watch.start();
      await until('live', () => c.watch.live);
      await cluster.proxy.cut();
      await until('disconnected', () => !c.watch.live);
      await sleep(4_000);
      expect(warnings.filter((w) => w.includes('MaxListenersExceeded'))).toEqual([]);
      await cluster.proxy.restore();
    } finally {
      await cluster.proxy.restore();
      await c.watch.stop();
      process.off('warning', onWarning);
    }
  });

  it('an answer for a watch id etcd3 does not know resets the stream instead of killing the process', async () => {
    // etcd3 1.1.2 threw from the stream's data handler (an uncaught exception: an agent died after a
    // compaction cancelled its resuming watches). Here etcd3's own dispatch gets such an answer.
    const c = copyOf(viaProxy, { prefix: '/w8/' });
    try {
      await c.watch.start();
      await until('live', () => c.watch.live);
      const manager = (viaProxy as unknown as { watchManager: { handleResponse(res: object): void } }).watchManager;
      expect(() => manager.handleResponse({ watch_id: '987654321', canceled: false, events: [], header: {} })).not.toThrow();
      await until('disconnected, then live again', () => c.log.live.length >= 3 && c.watch.live);
      expect(c.log.live.slice(0, 3)).toEqual([true, false, true]);
      await direct.put('/w8/a').value('1').exec();
      await until('a seen', () => c.items.get('/w8/a') === '1');
    } finally {
      await c.watch.stop();
    }
  });

  it('a failed list is retried until etcd answers, and reported', async () => {
    await cluster.proxy.cut();
    const c = copyOf(viaProxy, { prefix: '/w4/' });
    try {
      await c.watch.start(); // resolves after the first failed attempt
      expect(c.watch.synced).toBe(false);
      expect(c.log.problems[0]).toBe('cannot list /w4/; retrying');
      await direct.put('/w4/a').value('1').exec();
      await cluster.proxy.restore();
      await until('listed', () => c.items.get('/w4/a') === '1' && c.watch.live);
    } finally {
      await cluster.proxy.restore();
      await c.watch.stop();
    }
  });

  it('a throwing handler is reported and the watch goes on', async () => {
    const problems: string[] = [];
    const seen: string[] = [];
    const w = new PrefixWatch(viaProxy, { prefix: '/w5/' }, {
      replace: () => undefined,
      event: (e) => {
        seen.push(e.key);
        if (e.key === '/w5/bad') throw new Error('consumer bug');
      },
      problem: (msg) => problems.push(msg),
    });
    try {
      await w.start();
      await direct.put('/w5/bad').value('x').exec();
      await direct.put('/w5/good').value('y').exec();
      await until('both seen', () => seen.length === 2);
      expect(problems).toEqual(['a handler of the watch on /w5/ threw']);
      expect(w.state).toBe('watching');
    } finally {
      await w.stop();
    }
  });

  it('resync() re-lists a live watch without going offline; after stop() no handler runs', async () => {
    const c = copyOf(viaProxy, { prefix: '/w6/' });
    await c.watch.start();
    await until('live', () => c.watch.live);
    c.watch.resync();
    await until('re-listed', () => c.log.replaces === 2 && c.watch.state === 'watching');
    expect(c.log.live).toEqual([true]);
    await c.watch.stop();
    const events = c.log.events.length;
    await direct.put('/w6/late').value('1').exec();
    // a later write on a watched prefix of another watch proves events flowed meanwhile
    const other = copyOf(viaProxy, { prefix: '/w6/' });
    await other.watch.start();
    await other.watch.stop();
    expect(other.items.get('/w6/late')).toBe('1');
    expect(c.log.events.length).toBe(events);
  });
});
