/**
 * Rollout phase durations from two versions of a rollout record: an
 * instance whose phase changed spent (new `since` - old `since`) in its old
 * phase. Pure. Phases an instance passes within one controller step
 * (e.g. pending → stopping without presence) last 0 s and are not seen:
 * only the recorded phase is.
 */
import type { InstancePhase, RolloutRecord } from '../rollout/types.js';

export interface PhaseSpent {
  unit: string;
  phase: InstancePhase;
  seconds: number;
}

export function phasesLeft(before: Pick<RolloutRecord, 'instances'>, after: Pick<RolloutRecord, 'instances'>): PhaseSpent[] {
  const out: PhaseSpent[] = [];
  for (const [unit, now] of Object.entries(after.instances)) {
    const was = before.instances[unit];
    if (!was || was.phase === now.phase) continue;
    const ms = Date.parse(now.since) - Date.parse(was.since);
    if (!Number.isFinite(ms) || ms < 0) continue; // a clock step or a bad stamp: no figure beats a wrong one
    out.push({ unit, phase: was.phase, seconds: ms / 1000 });
  }
  return out.sort((a, b) => a.unit.localeCompare(b.unit));
}
