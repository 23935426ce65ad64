/**
 * planPass, the pure decide step of the engine leader, with the real (pure)
 * scheduler: named scenarios, then properties over random clusters.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planPass, type EngineOp, type XFleetLookup } from '../../src/engine/plan.js';
import type { ClusterView } from '../../src/engine/view.js';
import type { TargetState, UnitRecord } from '../../src/registry/records.js';
import { schedule } from '../../src/scheduler/schedule.js';
import { unitsConflict } from '../../src/unit/constraints.js';
import type { XFleetOptions } from '../../src/unit/types.js';

const NOW = '2026-01-01T00:00:00.000Z';
const x = (o: Partial<XFleetOptions> = {}): XFleetOptions => ({ conflicts: [], machineOf: [], machineMetadata: {}, global: false, replaces: [], ...o });
const unit = (name: string, targetState: TargetState = 'launched', hash = 'h1'): UnitRecord => ({ name, hash, targetState });

function view(p: Partial<ClusterView>): ClusterView {
  return { revision: '1', units: [], machines: [], schedules: [], unschedulable: [], ...p };
}
const machines = (...ids: string[]) => ids.map((id) => ({ id, metadata: {} }));
const placed = (machine: string, name: string, targetState: TargetState = 'launched', hash = 'h1') => ({ machine, record: { name, hash, targetState } });
const plan = (v: ClusterView, xf: XFleetLookup) => planPass({ view: v, xfleet: xf, now: NOW }, schedule);
const brief = (ops: EngineOp[]) =>
  ops.map((o) =>
    o.type === 'put-schedule' ? `put ${o.machine}/${o.record.name} ${o.record.targetState} ${o.record.hash}`
    : o.type === 'delete-schedule' ? `del ${o.machine}/${o.name}`
    : o.type === 'put-unschedulable' ? `unsched ${o.record.name}`
    : `del-unsched ${o.name}`,
  );

describe('planPass scenarios', () => {
  it.each<[string, ClusterView, XFleetLookup, string[]]>([
    ['places a new launched unit', view({ units: [unit('a.service')], machines: machines('m1') }), new Map([['a.service', x()]]), ['put m1/a.service launched h1']],
    ['writes nothing for a settled cluster', view({ units: [unit('a.service')], machines: machines('m1'), schedules: [placed('m1', 'a.service')] }), new Map([['a.service', x()]]), []],
    ['unschedules a destroyed unit', view({ machines: machines('m1'), schedules: [placed('m1', 'a.service')] }), new Map(), ['del m1/a.service']],
    ['unschedules an inactive unit', view({ units: [unit('a.service', 'inactive')], machines: machines('m1'), schedules: [placed('m1', 'a.service')] }), new Map([['a.service', x()]]), ['del m1/a.service']],
    ['moves a unit off a gone machine: delete first, then put',
      view({ units: [unit('a.service')], machines: machines('m2'), schedules: [placed('m1', 'a.service')] }), new Map([['a.service', x()]]),
      ['del m1/a.service', 'put m2/a.service launched h1']],
    ['propagates launched -> loaded', view({ units: [unit('a.service', 'loaded')], machines: machines('m1'), schedules: [placed('m1', 'a.service')] }), new Map([['a.service', x()]]), ['put m1/a.service loaded h1']],
    ['propagates a new body hash in place', view({ units: [unit('a.service', 'launched', 'h2')], machines: machines('m1'), schedules: [placed('m1', 'a.service')] }), new Map([['a.service', x()]]), ['put m1/a.service launched h2']],
    ['records a unit whose body is missing', view({ units: [unit('a.service')], machines: machines('m1') }), new Map(), ['unsched a.service']],
    ['records a unit whose X-Fleet is invalid', view({ units: [unit('a.service')], machines: machines('m1') }), new Map([['a.service', { error: 'bad' }]]), ['unsched a.service']],
    ['leaves a placed unit with an unreadable body where it is', view({ units: [unit('a.service')], machines: machines('m1'), schedules: [placed('m1', 'a.service')] }), new Map([['a.service', { error: 'bad' }]]), []],
    ['records the conflicting unit that fits nowhere',
      view({ units: [unit('w@1.service'), unit('w@2.service')], machines: machines('m1') }),
      new Map([['w@1.service', x({ conflicts: ['w@*'] })], ['w@2.service', x({ conflicts: ['w@*'] })]]),
      ['put m1/w@1.service launched h1', 'unsched w@2.service']],
    ['deletes the record of a unit that got placed',
      view({ units: [unit('a.service')], machines: machines('m1'), unschedulable: [{ name: 'a.service', reason: 'r', machines: {}, updatedAt: '' }] }),
      new Map([['a.service', x()]]), ['put m1/a.service launched h1', 'del-unsched a.service']],
    ['deletes the record of a destroyed unit', view({ machines: machines('m1'), unschedulable: [{ name: 'a.service', reason: 'r', machines: {}, updatedAt: '' }] }), new Map(), ['del-unsched a.service']],
    ['places a global unit on every machine', view({ units: [unit('g.service')], machines: machines('m1', 'm2') }), new Map([['g.service', x({ global: true })]]),
      ['put m1/g.service launched h1', 'put m2/g.service launched h1']],
    ['does not schedule inactive units at all', view({ units: [unit('a.service', 'inactive')], machines: machines('m1') }), new Map([['a.service', x()]]), []],
  ])('%s', (_name, v, xf, expected) => {
    expect(brief(plan(v, xf))).toEqual(expected);
  });

  it('does not rewrite an unchanged unschedulable record (only its time would differ)', () => {
    const v = view({ units: [unit('a.service')], machines: machines('m1') });
    const first = plan(v, new Map());
    const rec = first.find((o) => o.type === 'put-unschedulable')!;
    expect(rec.type === 'put-unschedulable' && rec.record.updatedAt).toBe(NOW);
    const again = planPass({ view: { ...v, unschedulable: [rec.type === 'put-unschedulable' ? rec.record : never()] }, xfleet: new Map(), now: '2027-01-01T00:00:00.000Z' }, schedule);
    expect(again).toEqual([]);
  });
});

function never(): never {
  throw new Error('unreachable');
}

/** What etcd would hold after applying ops to the view. */
function applied(v: ClusterView, ops: EngineOp[]): ClusterView {
  const sched = new Map(v.schedules.map((p) => [`${p.machine}/${p.record.name}`, p]));
  const unsched = new Map(v.unschedulable.map((r) => [r.name, r]));
  for (const o of ops) {
    if (o.type === 'put-schedule') sched.set(`${o.machine}/${o.record.name}`, { machine: o.machine, record: o.record });
    else if (o.type === 'delete-schedule') sched.delete(`${o.machine}/${o.name}`);
    else if (o.type === 'put-unschedulable') unsched.set(o.record.name, o.record);
    else unsched.delete(o.name);
  }
  return { ...v, schedules: [...sched.values()], unschedulable: [...unsched.values()] };
}

const clusterArb = fc
  .record({
    units: fc.uniqueArray(
      fc.record({
        name: fc.constantFrom('a', 'b', 'c', 'd', 'w@1', 'w@2', 'w@3', 'w@4').map((n) => `${n}.service`),
        state: fc.constantFrom<TargetState>('inactive', 'loaded', 'launched'),
        hash: fc.constantFrom('h1', 'h2'),
        conflicts: fc.boolean(),
        global: fc.boolean(),
      }),
      { selector: (u) => u.name, maxLength: 8 },
    ),
    machines: fc.uniqueArray(fc.constantFrom('m1', 'm2', 'm3', 'm4'), { maxLength: 4 }),
    stale: fc.array(fc.record({ machine: fc.constantFrom('m1', 'm2', 'm3', 'm5'), name: fc.constantFrom('a.service', 'w@1.service', 'gone.service') }), { maxLength: 4 }),
  })
  .map(({ units, machines: ms, stale }) => {
    const xf = new Map<string, XFleetOptions>();
    for (const u of units) xf.set(u.name, x(u.global ? { global: true } : u.conflicts ? { conflicts: ['w@*'] } : {}));
    const schedules = [...new Map(stale.map((s) => [`${s.machine}/${s.name}`, placed(s.machine, s.name, 'loaded', 'h0')])).values()];
    return { v: view({ units: units.map((u) => unit(u.name, u.state, u.hash)), machines: machines(...ms), schedules }), xf };
  });

describe('planPass properties', () => {
  it('reaches a fixed point in one pass: planning the applied result changes nothing', () => {
    fc.assert(
      fc.property(clusterArb, ({ v, xf }) => {
        const after = applied(v, plan(v, xf));
        expect(plan(after, xf)).toEqual([]);
      }),
    );
  });

  it('leaves no schedule key for a gone machine, a destroyed or an inactive unit, and matches unit records', () => {
    fc.assert(
      fc.property(clusterArb, ({ v, xf }) => {
        const after = applied(v, plan(v, xf));
        const live = new Set(v.machines.map((m) => m.id));
        const units = new Map(v.units.map((u) => [u.name, u]));
        for (const p of after.schedules) {
          const u = units.get(p.record.name);
          expect(live.has(p.machine)).toBe(true);
          expect(u?.targetState).not.toBe('inactive');
          expect(p.record).toEqual({ name: u!.name, hash: u!.hash, targetState: u!.targetState });
        }
      }),
    );
  });

  it('never puts two conflicting units on one machine, and every active unit is placed or explained', () => {
    fc.assert(
      fc.property(clusterArb, ({ v, xf }) => {
        const after = applied(v, plan(v, xf));
        const byMachine = new Map<string, string[]>();
        for (const p of after.schedules) byMachine.set(p.machine, [...(byMachine.get(p.machine) ?? []), p.record.name]);
        for (const names of byMachine.values()) {
          for (const a of names) for (const b of names) expect(unitsConflict({ name: a, xfleet: xf.get(a)! }, { name: b, xfleet: xf.get(b)! })).toBe(false);
        }
        const placedNames = new Set(after.schedules.map((p) => p.record.name));
        const explained = new Set(after.unschedulable.map((r) => r.name));
        for (const u of v.units) {
          if (u.targetState === 'inactive') continue;
          if (!xf.get(u.name)!.global) expect(placedNames.has(u.name) || explained.has(u.name)).toBe(true);
        }
      }),
    );
  });
});
