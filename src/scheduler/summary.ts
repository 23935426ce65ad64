/**
 * Why a unit ended up nowhere: one line for the unit, one per machine. The
 * per-machine lines come from the last time the scheduler considered the
 * unit, so they describe the decision that was actually taken.
 */
import type { Board } from './board.js';
import type { UnitOrder } from './order.js';
import { formatRejection } from './filters.js';
import type { SchedUnit, Trace, Unschedulable } from './types.js';

export function summarizeUnschedulable(
  board: Board,
  active: ReadonlyMap<string, SchedUnit>,
  order: UnitOrder,
  trace: Trace,
): Unschedulable[] {
  const out: Unschedulable[] = [];
  for (const u of [...active.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (board.isPlaced(u.name)) continue;
    const machines: Record<string, string> = {};
    const counts = new Map<string, number>();
    for (const [m, r] of trace.get(u.name) ?? []) {
      if (r === undefined) continue;
      machines[m] = formatRejection(r);
      counts.set(r.filter, (counts.get(r.filter) ?? 0) + 1);
    }
    out.push({ unit: u.name, reason: unitReason(u, board, active, order, counts), machines });
  }
  return out;
}

function unitReason(
  u: SchedUnit,
  board: Board,
  active: ReadonlyMap<string, SchedUnit>,
  order: UnitOrder,
  counts: Map<string, number>,
): string {
  const self = order.index.get(u.name)!;
  for (const t of [...new Set(u.xfleet.machineOf)].sort()) {
    if (t === u.name) continue;
    if (active.has(t) && order.index.get(t)! > self) return `MachineOf cycle with ${t}`;
    if (!active.has(t) || !board.isPlaced(t)) return `waits for ${t}, which is not placed`;
  }
  if (counts.size === 0) return 'no live machines';
  const parts = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([f, n]) => `${f} on ${n}`);
  return `no machine passes its constraints (rejected by ${parts.join(', ')})`;
}
