/**
 * Turning a failed rollout around (auto-revert) and standing instances down
 * when no new work may start (abort, failure without revert).
 */
import { isUnhealthy } from './conditions.js';
import { enter, type PhaseContext } from './phases.js';
import type { InstanceProgress, InstanceView, RolloutRecord } from './types.js';

/**
 * Retargets every instance not on revertTo.hash and switches the rollout to
 * 'reverting'. Instances that were started on the failed body (starting,
 * checking, failed) are held already and go straight back to 'stopping';
 * the ones not yet stopped keep their phase with the new target; instances
 * back in the balancer (joining, done) queue again as 'pending'.
 */
export function startRevert(r: RolloutRecord, views: ReadonlyMap<string, InstanceView>, ctx: PhaseContext): RolloutRecord {
  const revertTo = r.revertTo;
  if (revertTo === undefined) return r;
  const target = revertTo.hash;
  const instances: Record<string, InstanceProgress> = {};
  for (const [name, p] of Object.entries(r.instances)) {
    instances[name] = retarget(p, views.get(name), target, ctx);
  }
  const failed = Object.values(r.instances).filter((p) => p.phase === 'failed').map((p) => p.unit);
  return {
    ...r,
    state: 'reverting',
    instances,
    message: `reverting to revision ${revertTo.revision}: ${failed.map((u) => `${u} ${r.instances[u]?.error ?? 'failed'}`).join('; ')}`,
  };
}

function retarget(p: InstanceProgress, v: InstanceView | undefined, target: string, ctx: PhaseContext): InstanceProgress {
  // Surge instances keep their body: they are retired at the end, never rolled back.
  if (p.surge) return p;
  const onTarget = v?.record?.hash === target;
  const gone = v?.record === undefined;
  switch (p.phase) {
    case 'pending':
      // Down on the revert body (e.g. down before the rollout): restart it like any pending one, or it would hold the budget forever.
      if (onTarget && !isUnhealthy(v)) return enter(p, 'done', ctx, { targetHash: target, note: 'already on the revert target' });
      return { ...p, targetHash: target };
    case 'done':
      if (gone || (onTarget && p.targetHash === target)) return p;
      return enter(p, 'pending', ctx, { targetHash: target });
    case 'pulling':
    case 'leaving':
    case 'draining':
      // Not stopped yet: an instance still on the revert body needs nothing but its release.
      if (onTarget) return enter(p, 'done', ctx, { targetHash: target, note: 'still on the revert target, released' });
      return { ...p, targetHash: target };
    case 'stopping':
      return { ...p, targetHash: target };
    case 'failed':
      // Failed before it was touched (its image pull): still serving the revert body.
      if (onTarget && v?.held === false && p.error !== undefined && !p.startedAt) {
        return enter(p, 'done', ctx, { targetHash: target, note: 'failed before it was stopped; still on the revert target' });
      }
      // Failed before it was touched (stuck leaving) or after it was back: still up on the revert body, nothing to restart.
      if (onTarget && !isUnhealthy(v)) return enter(p, 'done', ctx, { targetHash: target, note: 'failed, but up on the revert target: released' });
      return enter(p, 'stopping', ctx, { targetHash: target });
    case 'starting':
    case 'checking':
      return enter(p, 'stopping', ctx, { targetHash: target });
    case 'joining':
      return enter(p, 'pending', ctx, { targetHash: target });
    case 'serving':
    case 'retiring':
    case 'removing':
      return p; // surge phases only
  }
}

/**
 * Instances held but not yet stopped go back to 'pending' (ensure() then
 * releases them); the ones already stopped or restarting carry on to a safe
 * point, since their old process is gone.
 */
export function standDown(r: RolloutRecord, why: string, ctx: PhaseContext): RolloutRecord {
  let changed = false;
  const instances: Record<string, InstanceProgress> = {};
  for (const [name, p] of Object.entries(r.instances)) {
    if (p.phase === 'pulling' || p.phase === 'leaving' || p.phase === 'draining') {
      instances[name] = enter(p, 'pending', ctx, { note: `released untouched: ${why}` });
      changed = true;
    } else {
      instances[name] = p;
    }
  }
  return changed ? { ...r, instances } : r;
}
