/** Builders and the shared expectation helper for scheduler tests. */
import { expect } from 'vitest';
import type { TargetState } from '../../src/registry/records.js';
import { schedule } from '../../src/scheduler/schedule.js';
import type { Assignment, ScheduleInput, ScheduleResult, SchedMachine, SchedUnit } from '../../src/scheduler/types.js';
import type { XFleetOptions } from '../../src/unit/types.js';

export const xf = (o: Partial<XFleetOptions> = {}): XFleetOptions => ({
  conflicts: [], machineOf: [], machineMetadata: {}, global: false, replaces: [], ...o,
});
export const unit = (name: string, o: Partial<XFleetOptions> = {}, targetState: TargetState = 'launched'): SchedUnit => ({
  name, targetState, xfleet: xf(o),
});
export const machine = (id: string, metadata: Record<string, string> = {}): SchedMachine => ({ id, metadata });
export const machines = (...ids: string[]) => ids.map((id) => machine(id));
/** 'a.service on m1' -> assignment */
export const at = (s: string): Assignment => {
  const [u, m] = s.split(' on ');
  return { unit: u!, machine: m! };
};
const show = (a: Assignment) => `${a.unit} on ${a.machine}`;

/** Apply a result to the current assignments: what the leader would write. */
export function apply(current: Assignment[], r: ScheduleResult): Assignment[] {
  const drop = new Set(r.unschedule.map(show));
  const out = new Map(current.filter((a) => !drop.has(show(a))).map((a) => [show(a), a]));
  for (const d of r.place) out.set(show(d), { unit: d.unit, machine: d.machine });
  return [...out.values()];
}

export interface Expected {
  place?: string[];
  unschedule?: string[];
  keep?: string[];
  /** unit names */
  unschedulable?: string[];
  /** 'unit on machine' (a place or unschedule decision) or a unit name (unschedulable) -> reason */
  reasons?: Record<string, string | RegExp>;
  /** unschedulable unit -> machine -> per-machine reason */
  rejected?: Record<string, Record<string, string | RegExp>>;
}

const matches = (actual: string | undefined, want: string | RegExp) =>
  typeof want === 'string' ? expect(actual).toBe(want) : expect(actual).toMatch(want);

/** Check the buckets named in `want` exactly, then that the result is a fixed point. */
export function expectSchedule(input: ScheduleInput, want: Expected): ScheduleResult {
  const r = schedule(input);
  if (want.place) expect(r.place.map(show)).toEqual([...want.place].sort());
  if (want.unschedule) expect(r.unschedule.map(show)).toEqual([...want.unschedule].sort());
  if (want.keep) expect(r.keep.map(show)).toEqual([...want.keep].sort());
  if (want.unschedulable) expect(r.unschedulable.map((u) => u.unit)).toEqual([...want.unschedulable].sort());
  for (const [k, reason] of Object.entries(want.reasons ?? {})) {
    const d = [...r.place, ...r.unschedule].find((x) => show(x) === k) ?? r.unschedulable.find((u) => u.unit === k);
    expect(d, `no decision for ${k}`).toBeDefined();
    matches(d!.reason, reason);
  }
  for (const [u, perMachine] of Object.entries(want.rejected ?? {})) {
    const got = r.unschedulable.find((x) => x.unit === u);
    expect(got, `${u} should be unschedulable`).toBeDefined();
    expect(Object.keys(got!.machines).sort()).toEqual(Object.keys(perMachine).sort());
    for (const [m, reason] of Object.entries(perMachine)) matches(got!.machines[m], reason);
  }
  expectFixedPoint(input, r);
  return r;
}

/** Scheduling the applied result again keeps everything and changes nothing. */
export function expectFixedPoint(input: ScheduleInput, r: ScheduleResult): void {
  const next = apply(input.current, r);
  const again = schedule({ ...input, current: next });
  expect(again.place).toEqual([]);
  expect(again.unschedule).toEqual([]);
  expect(again.keep.map(show)).toEqual(next.map(show).sort());
  expect(again.unschedulable.map((u) => u.unit)).toEqual(r.unschedulable.map((u) => u.unit));
}
