/** Load-balancer presence records (see docs/ROLLOUT.md, "Presence"). */

/** A rollout holds an instance out of the balancer while it restarts it. */
export interface PresenceHold {
  service: string;
  unit: string;
  rollout: string;
  since: string;
}

/**
 * What the presence syncer did with an instance: 'in' = receiving traffic,
 * 'draining' = no new traffic, `sessions` still open, 'out' = none.
 */
export interface PresenceStatusRecord {
  service: string;
  unit: string;
  state: 'in' | 'draining' | 'out';
  sessions?: number;
  address?: string;
  updatedAt: string;
}
