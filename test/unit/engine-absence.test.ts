/** MachineAbsence and planPass with held machines (fleet #1289): pure, the clock is an argument. */
import { describe, expect, it } from 'vitest';
import { MachineAbsence } from '../../src/engine/absence.js';
import { planPass, type EngineOp } from '../../src/engine/plan.js';
import type { ClusterView } from '../../src/engine/view.js';
import { schedule } from '../../src/scheduler/schedule.js';
import type { XFleetOptions } from '../../src/unit/types.js';

const x = (o: Partial<XFleetOptions> = {}): XFleetOptions => ({ conflicts: [], machineOf: [], machineMetadata: {}, global: false, replaces: [], ...o });
const placed = (machine: string, name: string, hash = 'h1') => ({ machine, record: { name, hash, targetState: 'launched' as const } });
const brief = (ops: EngineOp[]) => ops.map((o) => (o.type === 'put-schedule' ? `put ${o.machine}/${o.record.name} ${o.record.hash}` : o.type === 'delete-schedule' ? `del ${o.machine}/${o.name}` : `${o.type} ${'name' in o ? o.name : o.record.name}`));

const G = { graceMs: 10_000, disruptionGraceMs: 0 };

describe('MachineAbsence', () => {
  it('holds a missing machine for graceMs, counted from when this term first saw it missing', () => {
    const a = new MachineAbsence(G);
    expect(a.observe(new Set(['m1', 'm2']), ['m1', 'm2'], 0)).toEqual({ held: new Set(), nextExpiryMs: undefined });
    expect(a.observe(new Set(['m2']), ['m1', 'm2'], 1000)).toEqual({ held: new Set(['m1']), nextExpiryMs: 10_000 });
    expect(a.observe(new Set(['m2']), ['m1', 'm2'], 6000)).toEqual({ held: new Set(['m1']), nextExpiryMs: 5000 });
    expect(a.observe(new Set(['m2']), ['m1', 'm2'], 11_000).held).toEqual(new Set());
  });

  it('a machine that comes back starts a fresh grace the next time it goes missing', () => {
    const a = new MachineAbsence(G);
    a.observe(new Set(), ['m1'], 0);
    a.observe(new Set(['m1']), ['m1'], 5000);
    expect(a.observe(new Set(), ['m1'], 20_000)).toEqual({ held: new Set(['m1']), nextExpiryMs: 10_000 });
  });

  it('forgets a machine whose schedule keys are gone', () => {
    const a = new MachineAbsence(G);
    a.observe(new Set(), ['m1'], 0);
    a.observe(new Set(), [], 1000);
    expect(a.observe(new Set(), ['m1'], 50_000).held).toEqual(new Set(['m1']));
  });

  it.each<[string, number | undefined, number, boolean]>([
    ['the engine was never cut off: a dead host is failed over at once', undefined, 5000, false],
    ['the engine was cut off a moment ago (an etcd outage): held', 4000, 5000, true],
    ['the engine recovered longer than disruptionGraceMs ago: not held', 0, 25_000, false],
  ])('default graceMs 0: %s', (_what, troubleAt, now, held) => {
    const a = new MachineAbsence({ graceMs: 0, disruptionGraceMs: 20_000 });
    expect(a.observe(new Set(['m2']), ['m1', 'm2'], now, troubleAt).held.has('m1')).toBe(held);
  });

  it('a hold that ends on the disruption clock says when', () => {
    const a = new MachineAbsence({ graceMs: 0, disruptionGraceMs: 20_000 });
    expect(a.observe(new Set(), ['m1'], 5000, 4000).nextExpiryMs).toBe(19_000);
  });
});

describe('planPass with held machines', () => {
  const view = (p: Partial<ClusterView>): ClusterView => ({ revision: '1', units: [], machines: [], schedules: [], unschedulable: [], ...p });
  const u = (name: string, hash = 'h1') => ({ name, hash, targetState: 'launched' as const });
  const plan = (v: ClusterView, xf: Map<string, XFleetOptions>, held: string[]) => brief(planPass({ view: v, xfleet: xf, now: '', held: new Set(held) }, schedule));

  it.each<[string, ClusterView, Map<string, XFleetOptions>, string[], string[]]>([
    ['a held machine keeps its unit: nothing moves, nothing placed twice',
      view({ units: [u('a.service')], machines: [{ id: 'm2', metadata: {} }], schedules: [placed('m1', 'a.service')] }), new Map([['a.service', x()]]), ['m1'], []],
    ['once not held any more, the unit moves (delete first, then put)',
      view({ units: [u('a.service')], machines: [{ id: 'm2', metadata: {} }], schedules: [placed('m1', 'a.service')] }), new Map([['a.service', x()]]), [], ['del m1/a.service', 'put m2/a.service h1']],
    ['a destroyed unit is unscheduled from a held machine all the same',
      view({ machines: [{ id: 'm2', metadata: {} }], schedules: [placed('m1', 'a.service')] }), new Map(), ['m1'], ['del m1/a.service']],
    ['a held placement follows a new body',
      view({ units: [u('a.service', 'h2')], machines: [], schedules: [placed('m1', 'a.service')] }), new Map([['a.service', x()]]), ['m1'], ['put m1/a.service h2']],
    ['a global unit still goes to every live machine',
      view({ units: [u('g.service')], machines: [{ id: 'm2', metadata: {} }], schedules: [placed('m1', 'g.service')] }), new Map([['g.service', x({ global: true })]]), ['m1'], ['put m2/g.service h1']],
  ])('%s', (_what, v, xf, held, want) => {
    expect(plan(v, xf, held)).toEqual(want);
  });
});
