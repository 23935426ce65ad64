/**
 * Which pending instances may leave 'pending' now. At most
 * policy.maxUnavailable instances are unavailable at once, counting those in
 * flight and those already down outside the rollout's hands. An instance
 * that is down already costs no availability, so it is taken first and only
 * needs a free flight slot; a healthy one needs the whole budget free.
 */
import { isStarted, isUnhealthy, seenSince } from './conditions.js';
import { IN_FLIGHT } from './phases.js';
import type { InstanceProgress, InstanceView, RolloutRecord } from './types.js';

export interface Budget {
  /** instances in flight, surge instances not counted */
  inFlight: number;
  /** down already (not healthy or not active) and not in flight; surge instances not counted */
  downIdle: number;
  maxUnavailable: number;
  /** surge instances serving (phase 'serving', healthy, active, not held, and with presence in the balancer) */
  surge: number;
}

/**
 * An instance that turned unhealthy after it joined (InstanceProgress.relapses)
 * counts as down until the controller has seen it healthy for the deadline
 * again: a flapping check looks up half the time, and taking the next
 * instance in such a moment left none serving (the fault matrix's flapping
 * cell: 503s while a revert restarted two instances and the third flapped).
 */
export function isShaky(r: RolloutRecord, p: InstanceProgress, v: InstanceView | undefined, now: number | undefined): boolean {
  if ((p.relapses ?? 0) === 0 || now === undefined || v === undefined) return false;
  if (v.health?.status !== 'healthy') return true;
  return now - seenSince(v, p) < r.policy.deadlineMs;
}

/** The budget now; `now` (ms) lets a recently relapsed instance count as down (isShaky). */
export function budget(r: RolloutRecord, views: ReadonlyMap<string, InstanceView>, now?: number): Budget {
  let inFlight = 0;
  let downIdle = 0;
  let surge = 0;
  for (const p of Object.values(r.instances)) {
    if (p.surge) {
      if (surgeServes(r, p, views.get(p.unit))) surge++;
    } else if (IN_FLIGHT.has(p.phase)) inFlight++;
    else if (isUnhealthy(views.get(p.unit)) || isShaky(r, p, views.get(p.unit), now)) downIdle++;
  }
  // A policy of 0 would never make progress; one instance at a time is the least a rollout can do.
  return { inFlight, downIdle, maxUnavailable: Math.max(1, Math.floor(r.policy.maxUnavailable)), surge };
}

/** A surge instance that adds capacity now: serving, up, not held and (with presence) in the balancer. */
export function surgeServes(r: RolloutRecord, p: InstanceProgress, v: InstanceView | undefined): boolean {
  return p.surge === true && p.phase === 'serving' && isUp(v) && !v!.held && (!r.presence || v!.presence?.state === 'in');
}

/** Has a unit record, healthy and active somewhere. */
export function isUp(v: InstanceView | undefined): boolean {
  return v?.record !== undefined && !isUnhealthy(v);
}

/**
 * Pending instances to take now, in the order they are taken (down first,
 * then by name). Each serving surge instance widens the budget by one.
 */
export function pickToStart(r: RolloutRecord, views: ReadonlyMap<string, InstanceView>, now?: number): string[] {
  const b = budget(r, views, now);
  const limit = b.maxUnavailable + b.surge;
  const pending = Object.values(r.instances)
    .filter((p) => p.phase === 'pending' && !p.surge)
    .map((p) => ({ unit: p.unit, down: isUnhealthy(views.get(p.unit)) }))
    .sort((a, c) => (a.down === c.down ? cmp(a.unit, c.unit) : a.down ? -1 : 1));
  const taken: string[] = [];
  let { inFlight, downIdle } = b;
  for (const c of pending) {
    if (inFlight >= limit) break;
    if (!c.down && inFlight + downIdle >= limit) break; // the rest are healthy too
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
