/**
 * The scheduler: a pure function from (units, live machines, current
 * assignments) to named buckets, in the style of Nomad's reconciler. No I/O,
 * no clock, no randomness: the same input, in any order, gives the same
 * result. The engine leader writes the result to etcd; see README.md for the
 * vocabulary and reconciler.ts for the two phases.
 */
import { invalidError } from '../errors/errors.js';
import { processingOrder, type UnitOrder } from './order.js';
import { pairKey, Reconciler } from './reconciler.js';
import { summarizeUnschedulable } from './summary.js';
import type { Assignment, Decision, ScheduleInput, ScheduleResult, SchedMachine, SchedUnit, Trace } from './types.js';
import type { Board } from './board.js';

export interface Reconciliation {
  result: ScheduleResult;
  board: Board;
  trace: Trace;
  order: UnitOrder;
  active: ReadonlyMap<string, SchedUnit>;
  machines: readonly SchedMachine[];
}

/** Throws `invalid` on duplicate unit names or machine ids. */
export function schedule(input: ScheduleInput): ScheduleResult {
  return reconcile(input, { traceFastPath: false }).result;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byUnitMachine = (a: Assignment, b: Assignment) => cmp(a.unit, b.unit) || cmp(a.machine, b.machine);

/**
 * The whole pass, with the working state `explain` reads. `traceFastPath:
 * false` leaves out the verdicts of units placed on the fast path
 * (reconciler.ts firstFit): only `fleetx why` reads them; the result is
 * the same (an unschedulable unit's reasons come from a full scan).
 */
export function reconcile(input: ScheduleInput, opts: { traceFastPath?: boolean } = {}): Reconciliation {
  const units = [...input.units].sort((a, b) => cmp(a.name, b.name));
  const machines = [...input.machines].sort((a, b) => cmp(a.id, b.id));
  assertUnique(units.map((u) => u.name), 'unit');
  assertUnique(machines.map((m) => m.id), 'machine');

  const all = new Map(units.map((u) => [u.name, u]));
  const active = new Map(units.filter((u) => u.targetState !== 'inactive').map((u) => [u.name, u]));
  const live = new Set(machines.map((m) => m.id));
  const order = processingOrder(units);
  const r = new Reconciler(machines, active, order, opts.traceFastPath ?? true);

  // Assignments that cannot stay whatever the filters say; the rest go to phase 1.
  const wanted = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const a of [...input.current].sort(byUnitMachine)) {
    if (seen.has(pairKey(a.unit, a.machine))) continue;
    seen.add(pairKey(a.unit, a.machine));
    const u = all.get(a.unit);
    const drop = (reason: string) => r.unschedule.push({ unit: a.unit, machine: a.machine, reason });
    if (u === undefined) drop('unit destroyed');
    else if (!live.has(a.machine)) drop(`machine ${a.machine} is gone`);
    else if (u.targetState === 'inactive') drop('target state inactive');
    else wanted.set(a.unit, [...(wanted.get(a.unit) ?? []), a.machine]);
  }
  r.keep(wanted);
  r.place();

  const result = finish(r.kept(), r.unschedule, r.placed, summarizeUnschedulable(r.board, active, order, r.trace));
  return { result, board: r.board, trace: r.trace, order, active, machines };
}

/** Sort the buckets; an unschedule and a place of the same pair cancel out into a keep. */
function finish(kept: Assignment[], unschedule: Decision[], placed: Map<string, Decision>, unschedulable: ScheduleResult['unschedulable']): ScheduleResult {
  const undo = new Set(unschedule.map((d) => pairKey(d.unit, d.machine)));
  const keep = [...kept];
  const place: Decision[] = [];
  for (const d of placed.values()) {
    if (undo.has(pairKey(d.unit, d.machine))) keep.push({ unit: d.unit, machine: d.machine });
    else place.push(d);
  }
  return {
    place: place.sort(byUnitMachine),
    unschedule: unschedule.filter((d) => !placed.has(pairKey(d.unit, d.machine))).sort(byUnitMachine),
    keep: keep.sort(byUnitMachine),
    unschedulable,
  };
}

function assertUnique(ids: string[], what: string): void {
  for (let i = 1; i < ids.length; i++) {
    if (ids[i] === ids[i - 1]) throw invalidError(`duplicate ${what} ${ids[i]} in scheduler input`);
  }
}
