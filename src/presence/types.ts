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

/** What the LB does with an instance, as far as a driver can tell. */
export type PresenceState = PresenceStatusRecord['state'];

/** What the syncer wants a driver to do with one instance (see decide.ts). */
export interface Desired {
  unit: string;
  /** the instance's machine IP; absent when its machine is unknown (then want is 'out') */
  address?: string;
  port: number;
  want: 'in' | 'out';
  /** one line, for logs: why in or out */
  reason: string;
}

/**
 * What a driver saw after applying. 'unknown' means the driver cannot tell
 * (e.g. its first call failed): the syncer then removes the status record,
 * so a rollout waits rather than trusts a guess.
 */
export interface Observed {
  unit: string;
  state: PresenceState | 'unknown';
  /** open sessions (HAProxy's scur); absent when the driver cannot count them */
  sessions?: number;
  address?: string;
  /** set when the last attempt to change this instance failed; retried on the next tick */
  error?: string;
}

/**
 * One load balancer behind a narrow interface. apply() makes the LB match
 * `desired` as far as it can in one step (draining takes several calls) and
 * returns what it sees for every desired unit, plus units the LB still has
 * in that were not asked about (so the next decision takes them out).
 * Per-instance failures come back as Observed.error, not as throws.
 *
 * Errors: apply() throws FleetxError 'unavailable' when the LB cannot be
 * reached at all (retried by the syncer), 'usage' when its configuration is
 * unusable (missing socket/backend/url/command, unreadable token file).
 * close() never throws.
 */
export interface PresenceDriver {
  readonly kind: string;
  apply(desired: readonly Desired[]): Promise<Observed[]>;
  close(): Promise<void>;
}
