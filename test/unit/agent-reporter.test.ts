import { describe, expect, it } from 'vitest';
import { StateReporter, type StateSink } from '../../src/agent/reporter.js';
import { unavailableError } from '../../src/errors/errors.js';
import { keyspace } from '../../src/registry/keys.js';
import type { UnitStatus } from '../../src/systemd/types.js';

/** An in-memory StateSink (the reporter's own port, not etcd) that records calls. */
function memorySink() {
  const store = new Map<string, string>();
  const calls: string[] = [];
  /** one entry per write (one etcd transaction): how many changes it carried */
  const writes: number[] = [];
  let failing = false;
  const sink: StateSink = {
    async write(changes) {
      for (const c of changes) calls.push(`${c.value === undefined ? 'delete' : 'put'} ${c.key}`);
      writes.push(changes.length);
      if (failing) throw unavailableError('etcd down');
      for (const c of changes) {
        if (c.value === undefined) store.delete(c.key);
        else store.set(c.key, c.value);
      }
    },
  };
  return { sink, store, calls, writes, fail: (f: boolean) => (failing = f) };
}

const keys = keyspace('/p');
const active = (name: string, mainPid?: number): UnitStatus => ({ name, loadState: 'loaded', activeState: 'active', subState: 'running', mainPid });
const reporter = (sink: StateSink) =>
  new StateReporter({ machineId: 'm1', keys, sink, now: () => new Date('2026-01-01T00:00:00Z'), coalesceMs: 5, retryMs: 20 });
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('StateReporter', () => {
  it('coalesces a burst into one write per unit, for managed units only', async () => {
    const m = memorySink();
    const r = reporter(m.sink);
    r.setManaged(new Map([['a.service', 'h1']]));
    for (let pid = 1; pid <= 20; pid++) r.observe(active('a.service', pid));
    r.observe(active('foreign.service'));
    await r.flush();
    expect(m.calls).toEqual(['put /p/state/m1/a.service']);
    expect(JSON.parse(m.store.get('/p/state/m1/a.service')!)).toEqual({
      name: 'a.service', machine: 'm1', hash: 'h1', loadState: 'loaded', activeState: 'active', subState: 'running', mainPid: 20, updatedAt: '2026-01-01T00:00:00.000Z',
    });
    r.close();
  });

  it('does not rewrite an unchanged record, rewrites everything after rewriteAll (new lease)', async () => {
    const m = memorySink();
    const r = reporter(m.sink);
    r.manage('a.service', 'h1');
    r.observe(active('a.service', 7));
    await r.flush();
    r.observe(active('a.service', 7));
    await r.flush();
    expect(m.calls).toHaveLength(1);
    r.rewriteAll();
    await r.flush();
    expect(m.calls).toHaveLength(2);
    r.close();
  });

  it('writes a new hash, deletes a unit that is no longer managed', async () => {
    const m = memorySink();
    const r = reporter(m.sink);
    r.setManaged(new Map([['a.service', 'h1'], ['b.service', 'h1']]));
    r.observe(active('a.service'));
    r.observe(active('b.service'));
    await r.flush();
    r.setManaged(new Map([['a.service', 'h2']]));
    await r.flush();
    expect(JSON.parse(m.store.get('/p/state/m1/a.service')!).hash).toBe('h2');
    expect(m.store.has('/p/state/m1/b.service')).toBe(false);
    r.unmanage('a.service');
    await r.flush();
    expect(m.store.size).toBe(0);
    r.close();
  });

  it('writes a burst of many units in transactions of up to 100 records', async () => {
    const m = memorySink();
    const r = reporter(m.sink);
    const names = Array.from({ length: 250 }, (_, i) => `u${String(i).padStart(3, '0')}.service`);
    r.setManaged(new Map(names.map((n) => [n, 'h1'])));
    for (const n of names) r.observe(active(n));
    await r.flush();
    expect(m.writes).toEqual([100, 100, 50]);
    expect(m.store.size).toBe(250);
    r.setManaged(new Map());
    await r.flush();
    expect(m.writes.slice(3)).toEqual([100, 100, 50]);
    expect(m.store.size).toBe(0);
    r.close();
  });

  it('keeps failed writes pending and retries them by itself', async () => {
    const m = memorySink();
    const r = reporter(m.sink);
    m.fail(true);
    r.manage('a.service', 'h1');
    r.observe(active('a.service', 3));
    await r.flush();
    expect(m.store.size).toBe(0);
    m.fail(false);
    await wait(100);
    expect(JSON.parse(m.store.get('/p/state/m1/a.service')!).mainPid).toBe(3);
    r.close();
  });
});
