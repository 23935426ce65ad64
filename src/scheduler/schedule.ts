/**
 * The scheduler: a pure function from (units, live machines, current
 * assignments) to named buckets. Two phases, both in processing order (see
 * order.ts):
 *   1. keep: every current assignment that still passes the filters stays
 *      (stability: nothing moves just to balance load); the rest are
 *      unscheduled with a reason.
 *   2. place: every wanted unit without a machine (every machine, for a
 *      global unit) is placed on the best machine the filters accept.
 * A placement that displaces a unit it replaces puts the displaced units
 * back in the queue, and with them every unit still waiting, so no unit is
 * left out because of a machine that has since been freed. That last rule
 * is what makes the result a fixed point: scheduling the applied result
 * again changes nothing.
 */
import { FleetxError, invalidError } from '../errors/errors.js';
import { Board } from './board.js';
import { checkMachine, formatRejection, type FilterContext } from './filters.js';
import { processingOrder, type UnitOrder } from './order.js';
import { summarizeUnschedulable } from './summary.js';
import type { Assignment, Decision, Rejection, ScheduleInput, ScheduleResult, SchedMachine, SchedUnit, Trace } from './types.js';

export interface Reconciliation {
  result: ScheduleResult;
  board: Board;
  trace: Trace;
  order: UnitOrder;
  active: ReadonlyMap<string, SchedUnit>;
  machines: SchedMachine[];
}

export function schedule(input: ScheduleInput): ScheduleResult {
  return reconcile(input).result;
}

const key = (unit: string, machine: string) => `${unit}\u0000${machine}`;
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byUnitMachine = (a: Assignment, b: Assignment) => cmp(a.unit, b.unit) || cmp(a.machine, b.machine);

/** The whole run, with the working state `explain` needs. Throws `invalid` on duplicate unit names or machine ids. */
export function reconcile(input: ScheduleInput): Reconciliation {
  const units = [...input.units].sort((a, b) => cmp(a.name, b.name));
  const machines = [...input.machines].sort((a, b) => cmp(a.id, b.id));
  assertUnique(units.map((u) => u.name), 'unit');
  assertUnique(machines.map((m) => m.id), 'machine');

  const all = new Map(units.map((u) => [u.name, u]));
  const active = new Map(units.filter((u) => u.targetState !== 'inactive').map((u) => [u.name, u]));
  const byId = new Map(machines.map((m) => [m.id, m]));
  const live = new Set(byId.keys());
  const order = processingOrder(units);
  const board = new Board(live);
  const trace: Trace = new Map();
  const unschedule: Decision[] = [];
  const placed = new Map<string, Decision>();
  const ctx = (unit: SchedUnit, machine: SchedMachine, mode: 'keep' | 'place'): FilterContext => ({
    unit, machine, board, active, order, mode,
  });

  // Phase 1: keep what is still valid.
  const wanted = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const a of [...input.current].sort(byUnitMachine)) {
    if (seen.has(key(a.unit, a.machine))) continue;
    seen.add(key(a.unit, a.machine));
    const u = all.get(a.unit);
    if (u === undefined) unschedule.push({ ...a, reason: 'unit destroyed' });
    else if (!live.has(a.machine)) unschedule.push({ ...a, reason: `machine ${a.machine} is gone` });
    else if (u.targetState === 'inactive') unschedule.push({ ...a, reason: 'target state inactive' });
    else wanted.set(a.unit, [...(wanted.get(a.unit) ?? []), a.machine]);
  }
  for (const name of order.names) {
    const u = active.get(name);
    if (u === undefined) continue;
    for (const m of wanted.get(name) ?? []) {
      const first = board.machinesOf(name)[0];
      if (!u.xfleet.global && first !== undefined) {
        unschedule.push({ unit: name, machine: m, reason: `duplicate assignment, kept on ${first}` });
        continue;
      }
      const v = checkMachine(ctx(u, byId.get(m)!, 'keep'));
      if (v.ok) board.add(name, m, 'kept');
      else unschedule.push({ unit: name, machine: m, reason: `violates ${formatRejection(v.rejection)}` });
    }
  }

  // Phase 2: place, in order; a displacement re-queues everything still waiting.
  const evict = (victim: string, m: string, by: SchedUnit, evicts: string[]) => {
    const origin = board.origin(victim, m);
    board.remove(victim, m);
    if (origin === 'placed') {
      placed.delete(key(victim, m));
      return;
    }
    const target = active.get(victim)!.xfleet.machineOf.find((t) => evicts.includes(t));
    const reason = by.xfleet.replaces.includes(victim)
      ? `replaced by ${by.name}`
      : `must run with ${target}, which ${by.name} replaces here`;
    unschedule.push({ unit: victim, machine: m, reason });
  };

  const consider = (u: SchedUnit): boolean => {
    if (!u.xfleet.global && board.isPlaced(u.name)) return false;
    const verdicts = new Map<string, Rejection | undefined>();
    const fits: { m: SchedMachine; evicts: string[] }[] = [];
    for (const m of machines) {
      if (board.origin(u.name, m.id) !== undefined) {
        verdicts.set(m.id, undefined);
        continue;
      }
      const v = checkMachine(ctx(u, m, 'place'));
      verdicts.set(m.id, v.ok ? undefined : v.rejection);
      if (v.ok) fits.push({ m, evicts: v.evicts });
    }
    trace.set(u.name, verdicts);
    // A global unit goes to every machine that fits, one by one: an earlier
    // placement on another machine cannot change this machine's verdict.
    const chosen = u.xfleet.global ? fits : fits.sort((a, b) => rank(a) - rank(b) || cmp(a.m.id, b.m.id)).slice(0, 1);
    let displaced = false;
    for (const { m, evicts } of chosen) {
      for (const v of evicts) evict(v, m.id, u, evicts);
      displaced ||= evicts.length > 0;
      placed.set(key(u.name, m.id), { unit: u.name, machine: m.id, reason: placeReason(u, m, fits.length, board.load(m.id), evicts) });
      board.add(u.name, m.id, 'placed');
    }
    return displaced;
  };
  // Displacing is the last resort; otherwise the least loaded machine wins, ties by id.
  const rank = (f: { m: SchedMachine; evicts: string[] }) => (f.evicts.length > 0 ? 1e9 : 0) + board.load(f.m.id);

  const queue = order.names.map((n) => active.has(n));
  const limit = 4 * (active.size + 1) * (machines.length + 1) + 1000;
  let steps = 0;
  for (let i = 0; i < queue.length; ) {
    if (!queue[i]) {
      i++;
      continue;
    }
    queue[i] = false;
    if (++steps > limit) throw new FleetxError('internal', 'scheduler did not settle; this is a bug, please report the input');
    if (consider(active.get(order.names[i]!)!)) {
      order.names.forEach((n, j) => {
        const u = active.get(n);
        if (u !== undefined && (u.xfleet.global || !board.isPlaced(n))) queue[j] = true;
      });
      i = 0;
    }
  }

  return { result: finish(board, unschedule, placed, active, trace), board, trace, order, active, machines };
}

function placeReason(u: SchedUnit, m: SchedMachine, eligible: number, load: number, evicts: string[]): string {
  const x = u.xfleet;
  let why: string;
  if (x.global) why = 'global unit, machine passes its constraints';
  else if (x.machineOf.length > 0) why = `runs with ${[...new Set(x.machineOf)].sort().join(', ')} (MachineOf)`;
  else if (x.machineId !== undefined) why = `MachineID=${m.id}`;
  else why = `least loaded of ${eligible} eligible machine${eligible === 1 ? '' : 's'} (${load} unit${load === 1 ? '' : 's'})`;
  const direct = evicts.filter((v) => x.replaces.includes(v));
  return direct.length > 0 ? `${why}; replaces ${direct.join(', ')}` : why;
}

/** Build the sorted buckets; an unschedule and a place of the same pair cancel out into a keep. */
function finish(
  board: Board,
  unschedule: Decision[],
  placed: Map<string, Decision>,
  active: ReadonlyMap<string, SchedUnit>,
  trace: Trace,
): ScheduleResult {
  const keep: Assignment[] = [];
  for (const [unit, machine, origin] of board.entries()) if (origin === 'kept') keep.push({ unit, machine });
  const undo = new Set(unschedule.map((d) => key(d.unit, d.machine)));
  const place: Decision[] = [];
  for (const d of placed.values()) {
    if (undo.has(key(d.unit, d.machine))) keep.push({ unit: d.unit, machine: d.machine });
    else place.push(d);
  }
  const redone = new Set(placed.keys());
  const out = unschedule.filter((d) => !redone.has(key(d.unit, d.machine)));
  return {
    place: place.sort(byUnitMachine),
    unschedule: out.sort(byUnitMachine),
    keep: keep.sort(byUnitMachine),
    unschedulable: summarizeUnschedulable(board, active, trace),
  };
}

function assertUnique(ids: string[], what: string): void {
  for (let i = 1; i < ids.length; i++) {
    if (ids[i] === ids[i - 1]) throw invalidError(`duplicate ${what} ${ids[i]} in scheduler input`);
  }
}
