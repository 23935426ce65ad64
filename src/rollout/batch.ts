/**
 * Which pending instances may leave 'pending' now. At most
 * policy.maxUnavailable instances are unavailable at once, counting those in
 * flight and those already down outside the rollout's hands. An instance
 * that is down already costs no availability, so it is taken first and only
 * needs a free flight slot; a healthy one needs the whole budget free.
 */
import { isStarted, isUnhealthy } from './conditions.js';
import { IN_FLIGHT } from './phases.js';
import type { InstanceView, RolloutRecord } from './types.js';

export interface Budget {
  inFlight: number;
  /** down already (not healthy or not active) and not in flight */
  downIdle: number;
  maxUnavailable: number;
}

export function budget(r: RolloutRecord, views: ReadonlyMap<string, InstanceView>): Budget {
  let inFlight = 0;
  let downIdle = 0;
  for (const p of Object.values(r.instances)) {
    if (IN_FLIGHT.has(p.phase)) inFlight++;
    else if (isUnhealthy(views.get(p.unit))) downIdle++;
  }
  // A policy of 0 would never make progress; one instance at a time is the least a rollout can do.
  return { inFlight, downIdle, maxUnavailable: Math.max(1, Math.floor(r.policy.maxUnavailable)) };
}

/** Pending instances to take now, in the order they are taken (down first, then by name). */
export function pickToStart(r: RolloutRecord, views: ReadonlyMap<string, InstanceView>): string[] {
  const b = budget(r, views);
  const pending = Object.values(r.instances)
    .filter((p) => p.phase === 'pending')
    .map((p) => ({ unit: p.unit, down: isUnhealthy(views.get(p.unit)) }))
    .sort((a, c) => (a.down === c.down ? cmp(a.unit, c.unit) : a.down ? -1 : 1));
  const taken: string[] = [];
  let { inFlight, downIdle } = b;
  for (const c of pending) {
    if (inFlight >= b.maxUnavailable) break;
    if (!c.down && inFlight + downIdle >= b.maxUnavailable) break; // the rest are healthy too
    taken.push(c.unit);
    inFlight++;
    if (c.down) downIdle--;
  }
  return taken;
}

/**
 * Already where a deploy would bring it: running the target body, healthy.
 * A restart restarts every instance, so nothing is ever "already there" for it.
 */
export function alreadyOnTarget(r: RolloutRecord, v: InstanceView | undefined, targetHash: string): boolean {
  if (v === undefined || r.kind === 'restart' && r.state !== 'reverting') return false;
  return v.record?.hash === targetHash && v.record.targetState === 'launched'
    && isStarted(v, targetHash) && v.health?.status === 'healthy' && v.health.hash === targetHash;
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
