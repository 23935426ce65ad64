/**
 * Which health record counts for an instance: the one rule the rollout
 * controller (controller/view.ts) and the presence syncer (presence/decide.ts)
 * both follow, so the load balancer and the rollout never act on different
 * records of one instance.
 *
 * Two records of one unit exist while it moves between machines, and for up
 * to a lease TTL after an agent died (its machine record, state and health
 * records live on under its lease, saying whatever they said last). In order:
 *
 *  1. a record from a registered machine (when the caller knows the
 *     machines): a gone machine's last records may outlive it by a watch
 *     event, never by more;
 *  2. the newest record (`checkedAt`, the time of the last thing its agent
 *     had to say about the instance): a live agent keeps writing what
 *     changes, a dead one does not, so the newest is the instance that runs
 *     now;
 *  3. the machine id, so the choice is the same in every process.
 *
 * What a record says never ranks it. The rules this replaces did: the
 * controller preferred a machine whose state record said `active`, the
 * presence syncer a `healthy` record; a dead agent's records say `active`
 * and `healthy` until its lease lapses, so the syncer kept an instance in
 * the load balancer on a stale record while the rollout saw the fresh
 * failure on the machine the instance moved to.
 *
 * Limit: `checkedAt` is the writing agent's clock; skew between machines
 * shifts which record is newest during the (short) time two exist.
 */
import type { HealthRecord } from './types.js';

export function healthThatCounts(records: readonly HealthRecord[], liveMachines?: ReadonlySet<string>): HealthRecord | undefined {
  if (records.length <= 1) return records[0];
  const gone = (h: HealthRecord): number => (liveMachines === undefined || liveMachines.has(h.machine) ? 0 : 1);
  return [...records].sort((a, b) => gone(a) - gone(b) || cmp(b.checkedAt, a.checkedAt) || cmp(a.machine, b.machine))[0];
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
