/**
 * `fleetx why UNIT`: where a unit is and, machine by machine, why it is not
 * elsewhere. Runs the same pure scheduler and reads its trace, so the
 * explanation cannot drift from the decision.
 */
import { notFoundError } from '../errors/errors.js';
import { checkMachine } from './filters.js';
import { reconcile } from './schedule.js';
import type { Explanation, MachineVerdict, ScheduleInput, UnitStatus } from './types.js';

/** Throws `not-found` when no unit has that name. */
export function explain(input: ScheduleInput, unitName: string): Explanation {
  const unit = input.units.find((u) => u.name === unitName);
  if (unit === undefined) throw notFoundError(`unit ${unitName} not found`, 'list units with `fleetx list-units`');
  const run = reconcile(input);
  const { result, board, trace, active, order, machines } = run;
  if (!active.has(unitName)) {
    return { unit: unitName, status: 'inactive', summary: 'target state inactive: not scheduled', machines: [] };
  }

  const mine = <T extends { unit: string }>(xs: T[]) => xs.filter((x) => x.unit === unitName);
  const placed = mine(result.place);
  const kept = mine(result.keep);
  const gone = mine(result.unschedule);
  const blocked = mine(result.unschedulable)[0];
  const decided = trace.get(unitName);

  const verdicts: MachineVerdict[] = machines.map((m) => {
    if (board.origin(unitName, m.id) !== undefined) {
      const p = placed.find((d) => d.machine === m.id);
      return { machine: m.id, outcome: 'assigned', reason: p ? `placed: ${p.reason}` : 'kept: still passes its constraints' };
    }
    // Prefer the verdict from decision time; a unit kept where it was was never weighed elsewhere.
    if (decided?.has(m.id)) {
      const r = decided.get(m.id);
      if (r !== undefined) return { machine: m.id, outcome: 'rejected', filter: r.filter, reason: r.reason };
      return { machine: m.id, outcome: 'eligible', reason: 'passes every filter' };
    }
    const v = checkMachine({ unit, machine: m, board, active, order, mode: 'place' });
    if (!v.ok) return { machine: m.id, outcome: 'rejected', filter: v.rejection.filter, reason: v.rejection.reason };
    const displacing = v.evicts.length > 0 ? `, displacing ${v.evicts.join(', ')}` : '';
    return { machine: m.id, outcome: 'eligible', reason: `passes every filter${displacing}` };
  });

  let status: UnitStatus;
  let summary: string;
  if (blocked !== undefined) {
    status = 'unschedulable';
    summary = blocked.reason;
  } else if (!unit.xfleet.global && placed.length > 0 && gone.length > 0) {
    status = 'moved';
    summary = `moved from ${gone.map((d) => `${d.machine} (${d.reason})`).join(', ')} to ${placed.map((d) => d.machine).join(', ')}`;
  } else if (placed.length > 0) {
    status = 'placed';
    summary = placed.length === 1 ? `placed on ${placed[0]!.machine}: ${placed[0]!.reason}` : `placed on ${placed.length} machines`;
  } else {
    status = 'kept';
    summary = kept.length === 1 ? `kept on ${kept[0]!.machine}` : `kept on ${kept.length} machines`;
  }
  return { unit: unitName, status, summary, machines: verdicts };
}
