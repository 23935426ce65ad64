/**
 * ViewCache: the leader's view kept from its watches and its own writes.
 * Checked against a model etcd on generated sequences of external writes
 * (the CLI: units, machines, deletes of schedule keys), the engine's own
 * transactions (whose answer may come after their watch events), watch deliveries (each prefix in order, prefixes in any
 * interleaving, the events of one transaction one by one) and re-lists:
 * - once every event is delivered, the cache is what a full read returns,
 *   and so is the plan made from it (planPass on both views);
 * - at every step, a key the engine wrote never shows a value older than
 *   that write (a pass always sees its own placements).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyspace } from '../../src/registry/keys.js';
import { planPass } from '../../src/engine/plan.js';
import { decodeView, type RawView } from '../../src/engine/view.js';
import { ViewCache, VIEW_PARTS, type OwnWrite, type ViewPart } from '../../src/engine/view-cache.js';
import { schedule } from '../../src/scheduler/schedule.js';
import type { XFleetOptions } from '../../src/unit/types.js';

const keys = keyspace('/t');
const PREFIXES: Record<ViewPart, string> = { units: keys.units(), machines: keys.machines(), machineMetas: keys.machineMetas(), schedules: keys.schedules(), unschedulable: keys.unschedulables() };
const UNITS = ['a.service', 'b.service', 'c.service'];
const MACHINES = ['m1', 'm2'];

type Action =
  | { t: 'ext'; part: 'units' | 'machines' | 'schedules'; i: number; del: boolean; v: number }
  | { t: 'own'; late: boolean; writes: Array<{ part: 'schedules' | 'unschedulable'; i: number; del: boolean; v: number }> }
  | { t: 'ack' }
  | { t: 'deliver'; part: ViewPart; n: number }
  | { t: 'relist'; part: ViewPart };

const keyOf = (part: ViewPart, i: number): string => {
  const u = UNITS[i % UNITS.length]!;
  const m = MACHINES[Math.floor(i / UNITS.length) % MACHINES.length]!;
  switch (part) {
    case 'units': return keys.unit(u);
    case 'machines': return keys.machine(m);
    case 'machineMetas': return keys.machineMeta(m);
    case 'schedules': return keys.schedule(m, u);
    case 'unschedulable': return keys.unschedulable(u);
  }
};
const valueOf = (part: ViewPart, i: number, v: number): string => {
  const u = UNITS[i % UNITS.length]!;
  if (part === 'units' || part === 'schedules') return JSON.stringify({ name: u, hash: `h${v % 2}`, targetState: v % 3 === 0 ? 'loaded' : 'launched' });
  if (part === 'unschedulable') return JSON.stringify({ name: u, reason: `r${v}`, machines: {}, updatedAt: 't' });
  return JSON.stringify({ metadata: { n: String(v % 2) } });
};

const arbAction: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ t: fc.constant('ext' as const), part: fc.constantFrom('units' as const, 'machines' as const, 'schedules' as const), i: fc.nat(5), del: fc.boolean(), v: fc.nat(5) }),
  fc.constant({ t: 'ack' as const }),
  fc.record({ t: fc.constant('own' as const), late: fc.boolean(), writes: fc.array(fc.record({ part: fc.constantFrom('schedules' as const, 'unschedulable' as const), i: fc.nat(5), del: fc.boolean(), v: fc.nat(5) }), { minLength: 1, maxLength: 4 }) }),
  fc.record({ t: fc.constant('deliver' as const), part: fc.constantFrom(...VIEW_PARTS), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ t: fc.constant('deliver' as const), part: fc.constantFrom(...VIEW_PARTS), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ t: fc.constant('relist' as const), part: fc.constantFrom(...VIEW_PARTS) }),
);

interface Change { rev: number; key: string; value: string | undefined }

/** etcd, as far as the cache can tell: keys, revisions, each prefix's watch queue. */
class ModelEtcd {
  rev = 1;
  readonly kv = new Map<string, { value: string; mod: number }>();
  readonly history = new Map<string, Change[]>();
  readonly queues = new Map<ViewPart, Change[]>(VIEW_PARTS.map((p) => [p, []]));

  commit(writes: Array<{ part: ViewPart; key: string; value: string | undefined }>): number {
    this.rev++;
    const seen = new Set<string>();
    for (const w of writes) {
      if (seen.has(w.key)) continue; // etcd refuses a key twice in one transaction; keep the first
      seen.add(w.key);
      if (w.value === undefined) {
        if (!this.kv.has(w.key)) continue; // deleting nothing makes no event
        this.kv.delete(w.key);
      } else this.kv.set(w.key, { value: w.value, mod: this.rev });
      const c = { rev: this.rev, key: w.key, value: w.value };
      this.queues.get(w.part)!.push(c);
      this.history.set(w.key, [...(this.history.get(w.key) ?? []), c]);
    }
    return this.rev;
  }

  list(part: ViewPart): Array<{ key: string; value: string; modRevision: string }> {
    const prefix = PREFIXES[part];
    return [...this.kv].filter(([k]) => k.startsWith(prefix)).map(([key, e]) => ({ key, value: e.value, modRevision: String(e.mod) }));
  }

  full(): RawView {
    const out = { revision: String(this.rev) } as RawView;
    for (const p of VIEW_PARTS) out[p] = this.list(p);
    return out;
  }

  /** Values the key held from revision `from` on (undefined: absent). */
  valuesSince(key: string, from: number): Array<string | undefined> {
    const h = this.history.get(key) ?? [];
    let at: string | undefined;
    const later: Array<string | undefined> = [];
    for (const c of h) {
      if (c.rev <= from) at = c.value;
      else later.push(c.value);
    }
    return [at, ...later];
  }
}

const sortKv = (xs: RawView[ViewPart]) => [...xs].map(({ key, value }) => ({ key, value })).sort((a, b) => (a.key < b.key ? -1 : 1));
const plain: XFleetOptions = { global: false, machineOf: [], conflicts: [], replaces: [], machineMetadata: {} } as unknown as XFleetOptions;

function run(actions: Action[]): void {
  const etcd = new ModelEtcd();
  const cache = new ViewCache();
  const lastOwn = new Map<string, number>();
  // the answers of own transactions not yet heard: their watch events may come first
  const acks: Array<() => void> = [];
  for (const p of VIEW_PARTS) cache.replace(p, etcd.list(p), String(etcd.rev));
  const deliver = (part: ViewPart, n: number) => {
    const q = etcd.queues.get(part)!;
    for (const c of q.splice(0, n)) {
      if (c.value === undefined) cache.delete(part, c.key, String(c.rev));
      else cache.put(part, c.key, c.value, String(c.rev));
    }
  };
  for (const a of actions) {
    if (a.t === 'ext') etcd.commit([{ part: a.part, key: keyOf(a.part, a.i), value: a.del ? undefined : valueOf(a.part, a.i, a.v) }]);
    else if (a.t === 'own') {
      const writes: OwnWrite[] = [];
      const seen = new Set<string>();
      for (const w of a.writes) {
        const key = keyOf(w.part, w.i);
        if (seen.has(key)) continue;
        seen.add(key);
        writes.push({ part: w.part, key, value: w.del ? undefined : valueOf(w.part, w.i, w.v) });
      }
      const rev = etcd.commit(writes);
      acks.push(() => {
        cache.wrote(writes, String(rev));
        for (const w of writes) lastOwn.set(w.key, rev);
      });
      if (!a.late) acks.shift()!();
    } else if (a.t === 'ack') acks.shift()?.();
    else if (a.t === 'deliver') deliver(a.part, a.n);
    else {
      etcd.queues.get(a.part)!.length = 0;
      cache.replace(a.part, etcd.list(a.part), String(etcd.rev));
    }
    // a key the engine wrote shows that write or something newer, never older
    const raw = cache.raw();
    const now = new Map<string, string>();
    for (const p of VIEW_PARTS) for (const kv of raw[p]) now.set(kv.key, kv.value);
    for (const [key, rev] of lastOwn) expect(etcd.valuesSince(key, rev)).toContain(now.get(key));
  }
  for (const ack of acks) ack();
  for (const p of VIEW_PARTS) deliver(p, Infinity);
  const raw = cache.raw();
  const full = etcd.full();
  for (const p of VIEW_PARTS) expect(sortKv(raw[p])).toEqual(sortKv(full[p]));
  // the same records, and so the same plan, as a full read
  const a = decodeView(keys, raw);
  const b = decodeView(keys, full);
  expect({ ...a.view, revision: '' }).toEqual({ ...b.view, revision: '' });
  const xfleet = new Map(UNITS.map((u) => [u, plain]));
  expect(planPass({ view: a.view, xfleet, now: 't' }, schedule)).toEqual(planPass({ view: b.view, xfleet, now: 't' }, schedule));
}

describe('ViewCache', () => {
  it('is what a full read returns once every event is delivered, and never hides an own write', () => {
    fc.assert(fc.property(fc.array(arbAction, { maxLength: 60 }), (actions) => run(actions)), { numRuns: 500 });
  });

  it('shows an own write before its echo, and drops it once the watch covered it', () => {
    const cache = new ViewCache();
    for (const p of VIEW_PARTS) cache.replace(p, [], '10');
    expect(cache.ready).toBe(true);
    const k1 = keys.schedule('m1', 'a.service');
    const k2 = keys.schedule('m1', 'b.service');
    cache.wrote([{ part: 'schedules', key: k1, value: 'A' }, { part: 'schedules', key: k2, value: 'B' }], '12');
    expect(cache.raw().schedules.map((kv) => kv.value).sort()).toEqual(['A', 'B']);
    cache.put('schedules', k1, 'A', '12'); // the echo of the first key only
    expect(cache.raw().schedules.map((kv) => kv.value).sort()).toEqual(['A', 'B']);
    cache.delete('schedules', k1, '13'); // a later revision: every event of 12 was delivered
    expect(cache.raw().schedules).toEqual([]);
    expect(cache.modRevision('units', keys.unit('a.service'))).toBe('0');
  });

  it('is not ready until every prefix was listed', () => {
    const cache = new ViewCache();
    for (const p of VIEW_PARTS.slice(1)) cache.replace(p, [], '3');
    expect(cache.ready).toBe(false);
    cache.replace('units', [], '4');
    expect(cache.ready).toBe(true);
  });
});
