/**
 * Why a unit ended up nowhere: one line for the unit, one per machine. The
 * per-machine lines come from the last time the scheduler considered the
 * unit, so they describe the decision that was actually taken.
 */
import type { Board } from './board.js';
import { formatRejection } from './filters.js';
import type { SchedUnit, Trace, Unschedulable } from './types.js';

export function summarizeUnschedulable(board: Board, active: ReadonlyMap<string, SchedUnit>, trace: Trace): Unschedulable[] {
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
    out.push({ unit: u.name, reason: unitReason(u, board, active, counts), machines });
  }
  return out;
}

function unitReason(u: SchedUnit, board: Board, active: ReadonlyMap<string, SchedUnit>, counts: Map<string, number>): string {
  const waiting = [...new Set(u.xfleet.machineOf)].sort().find((t) => t !== u.name && (!active.has(t) || !board.isPlaced(t)));
  if (waiting !== undefined) return `waits for ${waiting}, which is not placed`;
  if (counts.size === 0) return 'no live machines';
  const parts = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([f, n]) => `${f} on ${n}`);
  return `no machine passes its constraints (rejected by ${parts.join(', ')})`;
}
