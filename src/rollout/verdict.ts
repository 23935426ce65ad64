/**
 * How a rollout ended, in the words a pipeline branches on (each has its
 * own exit code, docs/CLI.md). Derived from the finished record alone: a
 * revert that completed leaves no regular instance failed; a failure
 * without revert (auto-revert off, nothing healthy to go back to, or the
 * revert itself failed) leaves the failed instances in place.
 */
import { regular } from './surge.js';
import type { RolloutRecord } from './types.js';

export type RolloutVerdict = 'running' | 'succeeded' | 'reverted' | 'failed' | 'aborted';

export function verdictOf(r: RolloutRecord): RolloutVerdict {
  switch (r.state) {
    case 'succeeded':
    case 'aborted':
      return r.state;
    case 'failed':
      return regular(r).some((p) => p.phase === 'failed') ? 'failed' : 'reverted';
    default:
      return 'running';
  }
}
