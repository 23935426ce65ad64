import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reconcile, schedule } from '../../src/scheduler/schedule.js';
import type { Assignment, ScheduleInput, SchedUnit } from '../../src/scheduler/types.js';
import { metadataMatches, unitsConflict } from '../../src/unit/constraints.js';
import { apply, expectFixedPoint } from '../helpers/scheduler.js';

const NAMES = ['a.service', 'b.service', 'db.service', 'app@1.service', 'app@2.service', 'app@3.service', 'g.service', 'web.service'];
const MACHINES = ['m1', 'm2', 'm3', 'm4', 'm5'];
const GLOBS = ['app@*.service', 'a.service', 'db.service', '*.service', 'web*'];

const metadataArb = fc.record(
  { region: fc.constantFrom('us', 'eu'), disk: fc.constantFrom('ssd', 'hdd') },
  { requiredKeys: [] },
) as fc.Arbitrary<Record<string, string>>;

const some = <T>(arb: fc.Arbitrary<T>, none: T, weight = 3) =>
  fc.oneof({ weight, arbitrary: fc.constant(none) }, { weight: 1, arbitrary: arb });

const unitArb = (name: string, replaceWeight = 2): fc.Arbitrary<SchedUnit> =>
  fc
    .record({
      targetState: fc.constantFrom('inactive', 'loaded', 'launched', 'launched'),
      conflicts: some(fc.subarray(GLOBS, { minLength: 1, maxLength: 2 }), [] as string[]),
      machineOf: some(fc.subarray([...NAMES, 'missing.service'], { minLength: 1, maxLength: 2 }), [] as string[]),
      machineId: some(fc.constantFrom<string | undefined>(...MACHINES, 'm9'), undefined, 5),
      machineMetadata: some(
        fc.record({ region: fc.subarray(['us', 'eu']), disk: fc.subarray(['ssd', 'hdd'], { minLength: 1 }) }, { requiredKeys: [] }),
        {},
      ),
      global: fc.constantFrom(false, false, false, true),
      replaces: some(fc.subarray(NAMES, { minLength: 1, maxLength: 2 }), [] as string[], replaceWeight),
    })
    .map(({ targetState, ...x }) => ({
      name,
      targetState,
      xfleet: { ...x, machineMetadata: x.machineMetadata as Record<string, string[]> },
    }));

const noiseArb = fc.array(fc.record({ unit: fc.constantFrom(...NAMES, 'gone.service'), machine: fc.constantFrom(...MACHINES) }), {
  maxLength: 8,
});

/** `crowded`: two machines at most and Replaces everywhere, so units displace each other often. */
const freshArb = (crowded: boolean): fc.Arbitrary<ScheduleInput> => fc
  .record({ names: fc.subarray(NAMES), machineIds: fc.subarray(crowded ? MACHINES.slice(0, 2) : MACHINES), current: noiseArb })
  .chain(({ names, machineIds, current }) =>
    fc.record({
      units: fc.tuple(...names.map((n) => unitArb(n, crowded ? 1 : 2))),
      machines: fc.tuple(...machineIds.map((id) => metadataArb.map((metadata) => ({ id, metadata })))),
      current: fc.constant(current),
    }),
  );

/**
 * Realistic inputs: a cluster that had settled (the applied result of an
 * earlier run), then changed: machines come and go or change metadata, units
 * change target state or constraints, plus some stray schedule keys.
 */
const inputArb: fc.Arbitrary<ScheduleInput> = fc
  .boolean()
  .chain((crowded) => fc.record({ before: freshArb(crowded), after: freshArb(crowded), noise: noiseArb, mix: fc.integer({ min: 0, max: 3 }) }))
  .map(({ before, after, noise, mix }) => {
    const settled = apply(before.current, schedule(before));
    const units = mix & 1 ? after.units : before.units;
    const machines = mix & 2 ? after.machines : before.machines;
    return { units, machines, current: [...settled, ...noise.slice(0, mix)] };
  });

/** The assignment the leader ends up with after applying the result. */
function outcome(input: ScheduleInput): Assignment[] {
  return apply(input.current, schedule(input));
}

const RUNS = { numRuns: 400 };

/**
 * Units the scheduler orders in a cycle (MachineOf target before follower,
 * replacer before replaced): its README makes MachineOf across such a cycle
 * unsatisfiable, so liveness does not speak of them.
 */
function inOrderingCycle(units: readonly SchedUnit[]): Set<string> {
  const names = new Set(units.map((u) => u.name));
  const after = new Map<string, string[]>(units.map((u) => [u.name, []]));
  for (const u of units) {
    for (const t of u.xfleet.machineOf) if (names.has(t)) after.get(t)!.push(u.name);
    for (const x of u.xfleet.replaces) if (names.has(x)) after.get(u.name)!.push(x);
  }
  const reaches = (from: string, to: string): boolean => {
    const seen = new Set<string>();
    const todo = [...after.get(from)!];
    while (todo.length > 0) {
      const n = todo.pop()!;
      if (n === to) return true;
      if (!seen.has(n)) seen.add(n), todo.push(...after.get(n)!);
    }
    return false;
  };
  return new Set(units.filter((u) => reaches(u.name, u.name)).map((u) => u.name));
}

/**
 * Could `u` run on machine `m` beside what `outcome` has there, without
 * moving anything: MachineID, MachineMetadata, MachineOf targets already
 * there, no conflict and no Replaces either way with a unit there.
 */
function fitsBeside(u: SchedUnit, m: ScheduleInput['machines'][number], there: readonly SchedUnit[]): boolean {
  if (u.xfleet.machineId !== undefined && u.xfleet.machineId !== m.id) return false;
  if (!metadataMatches(u.xfleet.machineMetadata, m.metadata)) return false;
  const names = new Set(there.map((v) => v.name));
  if (u.xfleet.machineOf.some((t) => !names.has(t))) return false;
  return there.every((v) => !unitsConflict(u, v) && !u.xfleet.replaces.includes(v.name) && !v.xfleet.replaces.includes(u.name));
}

describe('schedule: properties', () => {
  it('never puts two conflicting units, or a unit and one it replaces, on one machine', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const byName = new Map(input.units.map((u) => [u.name, u]));
        const on = new Map<string, SchedUnit[]>();
        for (const a of outcome(input)) on.set(a.machine, [...(on.get(a.machine) ?? []), byName.get(a.unit)!]);
        for (const us of on.values()) {
          for (const a of us) {
            for (const b of us) {
              if (a === b) continue;
              expect(unitsConflict(a, b), `${a.name} and ${b.name}`).toBe(false);
              expect(a.xfleet.replaces.includes(b.name), `${a.name} replaces ${b.name}`).toBe(false);
            }
          }
        }
      }),
      RUNS,
    );
  });

  it('every assigned unit exists, is wanted and satisfies MachineID, MachineMetadata and MachineOf', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const byName = new Map(input.units.map((u) => [u.name, u]));
        const machines = new Map(input.machines.map((m) => [m.id, m]));
        const assigned = outcome(input);
        const has = new Set(assigned.map((a) => `${a.unit} ${a.machine}`));
        for (const a of assigned) {
          const u = byName.get(a.unit);
          expect(u, `${a.unit} exists`).toBeDefined();
          expect(u!.targetState).not.toBe('inactive');
          const m = machines.get(a.machine);
          expect(m, `${a.machine} is live`).toBeDefined();
          if (u!.xfleet.machineId !== undefined) expect(a.machine).toBe(u!.xfleet.machineId);
          expect(metadataMatches(u!.xfleet.machineMetadata, m!.metadata)).toBe(true);
          for (const t of u!.xfleet.machineOf) if (t !== u!.name) expect(has.has(`${t} ${a.machine}`), `${a.unit} with ${t}`).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('non-global units are placed at most once, and only on machines in the input', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const r = schedule(input);
        const live = new Set(input.machines.map((m) => m.id));
        for (const d of r.place) expect(live.has(d.machine)).toBe(true);
        for (const a of r.keep) expect(live.has(a.machine)).toBe(true);
        const count = new Map<string, number>();
        for (const a of apply(input.current, r)) count.set(a.unit, (count.get(a.unit) ?? 0) + 1);
        for (const u of input.units) if (!u.xfleet.global) expect(count.get(u.name) ?? 0).toBeLessThanOrEqual(1);
      }),
      RUNS,
    );
  });

  it('buckets are consistent: keep and unschedule split current, place is new, unschedulable means nowhere', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const r = schedule(input);
        const k = (a: Assignment) => `${a.unit} ${a.machine}`;
        const current = new Set(input.current.map(k));
        expect(new Set([...r.keep.map(k), ...r.unschedule.map(k)])).toEqual(current);
        expect(r.keep.length + r.unschedule.length).toBe(current.size);
        for (const d of r.place) expect(current.has(k(d))).toBe(false);
        const assigned = new Set(apply(input.current, r).map((a) => a.unit));
        const wanted = input.units.filter((u) => u.targetState !== 'inactive').map((u) => u.name);
        expect(r.unschedulable.map((u) => u.unit)).toEqual(wanted.filter((n) => !assigned.has(n)).sort());
        for (const d of [...r.place, ...r.unschedule, ...r.unschedulable]) expect(d.reason).not.toBe('');
      }),
      RUNS,
    );
  });

  it('is live: every wanted unit that some machine can take is placed (a global one on every such machine)', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const byName = new Map(input.units.map((u) => [u.name, u]));
        const out = outcome(input);
        const cyclic = inOrderingCycle(input.units);
        for (const u of input.units) {
          if (u.targetState === 'inactive' || cyclic.has(u.name)) continue;
          const mine = new Set(out.filter((a) => a.unit === u.name).map((a) => a.machine));
          if (!u.xfleet.global && mine.size > 0) continue;
          for (const m of input.machines) {
            if (mine.has(m.id)) continue;
            const there = out.filter((a) => a.machine === m.id).map((a) => byName.get(a.unit)!);
            expect(fitsBeside(u, m, there), `${u.name} left off ${m.id}, which can take it beside ${there.map((v) => v.name).join(', ') || 'nothing'}`).toBe(false);
          }
        }
      }),
      RUNS,
    );
  });

  it('is a fixed point: scheduling the applied result changes nothing', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        expectFixedPoint(input, schedule(input));
      }),
      RUNS,
    );
  });

  it('is deterministic: the order of the input does not matter', () => {
    const permuted = inputArb.chain((input) =>
      fc.record({
        input: fc.constant(input),
        other: fc.record({
          units: fc.shuffledSubarray(input.units, { minLength: input.units.length }),
          machines: fc.shuffledSubarray(input.machines, { minLength: input.machines.length }),
          current: fc.shuffledSubarray(input.current, { minLength: input.current.length }),
        }),
      }),
    );
    fc.assert(
      fc.property(permuted, ({ input, other }) => {
        expect(schedule(other)).toEqual(schedule(input));
      }),
      RUNS,
    );
  });

  it('decides the same without the fast path trace (what schedule() leaves out) as with it (what fleetx why reads)', () => {
    fc.assert(
      fc.property(fc.oneof(inputArb, displacementArb), (input) => {
        expect(schedule(input)).toEqual(reconcile(input, { traceFastPath: true }).result);
      }),
      RUNS,
    );
  });
});

/** A cluster that has settled: the current assignment is the applied result of the last run. */
const settledArb = inputArb.map((input) => ({ ...input, current: apply(input.current, schedule(input)) }));

describe('schedule: stability', () => {
  it('a new machine only receives units: nothing running is unscheduled', () => {
    fc.assert(
      fc.property(settledArb, metadataArb, (input, metadata) => {
        const r = schedule({ ...input, machines: [...input.machines, { id: 'm0-new', metadata }] });
        expect(r.unschedule).toEqual([]);
      }),
      RUNS,
    );
  });

  it('a machine going away moves only its own units, and what they displace', () => {
    fc.assert(
      fc.property(settledArb, fc.nat(), (input, pick) => {
        fc.pre(input.machines.length > 0);
        const gone = input.machines[pick % input.machines.length]!.id;
        const r = schedule({ ...input, machines: input.machines.filter((m) => m.id !== gone) });
        const byName = new Map(input.units.map((u) => [u.name, u]));
        // Judged by placements: a unit leaves a surviving machine only when a
        // unit placed there now replaces it, or it must run with one that left.
        const left = r.unschedule.filter((d) => d.machine !== gone);
        const displaced = new Set<string>();
        for (let grew = true; grew; ) {
          grew = false;
          for (const d of left) {
            const k = `${d.unit} ${d.machine}`;
            if (displaced.has(k)) continue;
            const replaced = r.place.some((p) => p.machine === d.machine && byName.get(p.unit)!.xfleet.replaces.includes(d.unit));
            const follows = byName.get(d.unit)?.xfleet.machineOf.some((t) => displaced.has(`${t} ${d.machine}`));
            if (replaced || follows) displaced.add(k), (grew = true);
          }
        }
        expect(left.map((d) => `${d.unit} ${d.machine}`).filter((k) => !displaced.has(k))).toEqual([]);
        // and everything else stays where it was
        const kept = new Set(r.keep.map((a) => `${a.unit} ${a.machine}`));
        for (const a of input.current) if (a.machine !== gone && !displaced.has(`${a.unit} ${a.machine}`)) expect(kept.has(`${a.unit} ${a.machine}`)).toBe(true);
      }),
      RUNS,
    );
  });
});

/**
 * Displacement is rare in random clusters, so this one is built for it: a
 * settled set of old units, then new ones that replace them (and each other),
 * some pinned by MachineID, some global, some following others.
 */
const OLD = ['o1.service', 'o2.service', 'o3.service', 'o4.service'];
const NEW = ['n1.service', 'n2.service', 'n3.service'];
const oldArb = (name: string) =>
  fc
    .record({ machineOf: fc.subarray(OLD, { maxLength: 1 }), global: fc.constantFrom(false, false, false, true), conflicts: fc.subarray([...OLD, ...NEW], { maxLength: 1 }) })
    .map((x) => ({ name, targetState: 'launched' as const, xfleet: { ...x, machineMetadata: {}, replaces: [] } }));
const newArb = (name: string) =>
  fc
    .record({
      replaces: fc.subarray([...OLD, ...NEW], { minLength: 1, maxLength: 2 }),
      machineId: fc.constantFrom(undefined, 'm1', 'm2', 'm3'),
      machineOf: fc.subarray([...OLD, ...NEW], { maxLength: 1 }),
      global: fc.constantFrom(false, false, true),
    })
    .map((x) => ({ name, targetState: 'launched' as const, xfleet: { ...x, conflicts: [], machineMetadata: {} } }));
const displacementArb: fc.Arbitrary<ScheduleInput> = fc
  .record({ n: fc.integer({ min: 1, max: 3 }), olds: fc.tuple(...OLD.map(oldArb)), news: fc.tuple(...NEW.map(newArb)) })
  .map(({ n, olds, news }) => {
    const machines = MACHINES.slice(0, n).map((id) => ({ id, metadata: {} }));
    const settled = apply([], schedule({ units: olds, machines, current: [] }));
    return { units: [...olds, ...news], machines, current: settled };
  });

describe('schedule: properties under displacement (Replaces)', () => {
  it('stays conflict-free, replacement-free and a fixed point', () => {
    fc.assert(
      fc.property(displacementArb, (input) => {
        const r = schedule(input);
        expectFixedPoint(input, r);
        const byName = new Map(input.units.map((u) => [u.name, u]));
        const out = apply(input.current, r);
        for (const a of out) {
          for (const b of out) {
            if (a.machine !== b.machine || a.unit === b.unit) continue;
            expect(unitsConflict(byName.get(a.unit)!, byName.get(b.unit)!)).toBe(false);
            expect(byName.get(a.unit)!.xfleet.replaces.includes(b.unit)).toBe(false);
          }
        }
      }),
      RUNS,
    );
  });
});
