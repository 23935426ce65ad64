/**
 * Who holds a service's deploy lock, and who paused, resumed or aborted a
 * rollout: read once from the environment at the edge (CLI), stored in the
 * rollout record and control record, shown by `rollout status` and in lock
 * errors. The one home for a holder's identity and its one-line form.
 */
import { hostname, userInfo } from 'node:os';
import type { RolloutHolder } from '../rollout/types.js';

/** FLEETX_USER (or the login name), this host, and Jenkins' BUILD_TAG when set. */
export function holderFrom(env: NodeJS.ProcessEnv): RolloutHolder {
  let user = env.FLEETX_USER;
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return { user, host: hostname(), ...(env.BUILD_TAG ? { build: env.BUILD_TAG } : {}) };
}

/** `user@host` with the build in parentheses when there is one. */
export function describeHolder(holder: RolloutHolder): string {
  return `${holder.user}@${holder.host}${holder.build ? ` (${holder.build})` : ''}`;
}
