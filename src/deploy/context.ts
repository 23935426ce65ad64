/**
 * The impure inputs of a deploy, undo or rolling restart, gathered once at
 * the edge so that planning (deploy/plan.ts) stays pure: the clock, a fresh
 * rollout id and the lock holder.
 */
import { randomBytes } from 'node:crypto';
import { describeHolder, holderFrom } from './holder.js';
import { rolloutId, type ApplyContext } from './plan.js';

export function applyContext(env: NodeJS.ProcessEnv, autoRevert?: boolean, now = new Date()): ApplyContext {
  const holder = holderFrom(env);
  return {
    id: rolloutId(now, randomBytes(3).toString('hex')),
    now: now.toISOString(),
    holder,
    user: describeHolder(holder),
    ...(autoRevert !== undefined ? { autoRevert } : {}),
  };
}
