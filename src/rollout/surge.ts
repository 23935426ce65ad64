/**
 * Surge instances (policy.surge): extra instances the CLI creates with the
 * rollout, in phase 'starting' with `surge: true`. While one serves it
 * widens the maxUnavailable budget by one (batch.ts); when the other
 * instances are settled it is retired: held out of the balancer, drained,
 * its unit record deleted ('destroy-unit'), done once the record is gone.
 */
import { budget, cmp, isUp, surgeServes } from './batch.js';
import { advance, enter, IN_FLIGHT, type PhaseContext } from './phases.js';
import type { InstancePhase, InstanceProgress, InstanceView, RolloutRecord } from './types.js';

/** Phases a surge instance is retired from (it is not retiring or gone yet). */
const LIVE: ReadonlySet<InstancePhase> = new Set(['starting', 'checking', 'joining', 'serving']);

export function isSurge(p: InstanceProgress): boolean {
  return p.surge === true;
}

/** The instances the rollout is about: every one but the surge ones. */
export function regular(r: RolloutRecord): InstanceProgress[] {
  return Object.values(r.instances).filter((p) => !isSurge(p)).sort((a, b) => cmp(a.unit, b.unit));
}

/** Nothing regular in flight, and nothing more will start (none pending, or a failure or an abort stops them). */
export function settled(r: RolloutRecord, aborting: boolean): boolean {
  const all = regular(r);
  if (all.some((p) => IN_FLIGHT.has(p.phase))) return false;
  return aborting || all.every((p) => p.phase !== 'pending') || all.some((p) => p.phase === 'failed');
}

/**
 * Starts retiring the live surge instances, in name order. One that serves
 * traffic (up and not held) is taken down only within the budget, like a
 * healthy pending instance: regular instances unavailable < maxUnavailable +
 * surge instances still serving. `forced` (an instance failed, or an abort)
 * skips that check: failed or untouched-down instances will not come back,
 * and the rollout must end.
 */
export function retireSurge(r: RolloutRecord, views: ReadonlyMap<string, InstanceView>, ctx: PhaseContext, forced: boolean): RolloutRecord {
  const live = Object.values(r.instances).filter((p) => isSurge(p) && LIVE.has(p.phase)).sort((a, b) => cmp(a.unit, b.unit));
  if (live.length === 0) return r;
  const b = budget(r, views);
  const unavailable = b.inFlight + b.downIdle;
  let credit = b.surge;
  const instances = { ...r.instances };
  for (const p of live) {
    const v = views.get(p.unit);
    const costs = isUp(v) && v?.held !== true;
    if (costs && !forced && unavailable >= b.maxUnavailable + credit) continue;
    if (surgeServes(r, p, v)) credit--;
    const next = enter(p, 'retiring', ctx, { note: 'surge instance retired: the rollout no longer needs it' });
    instances[p.unit] = v === undefined ? next : advance(next, v, ctx);
  }
  return { ...r, instances };
}
