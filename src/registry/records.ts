/**
 * The JSON records stored in etcd. Field names are part of the on-disk
 * format: add fields, never rename them.
 */

/** fleet's three target states. */
export type TargetState = 'inactive' | 'loaded' | 'launched';
export const TARGET_STATES: readonly TargetState[] = ['inactive', 'loaded', 'launched'];

/** A submitted unit (fleet's "job"). Template instances carry their template's body hash. */
export interface UnitRecord {
  name: string;
  /** content hash of the normalized unit body, key of {p}/body/{hash} */
  hash: string;
  targetState: TargetState;
  /** for instances started from a template, the template's name (app@.service) */
  template?: string;
  /** who submitted it and when (ISO time), for `status` and audit */
  submittedBy?: string;
  updatedAt?: string;
}

/** One unit that one machine must run, written by the engine leader. */
export interface ScheduleRecord {
  name: string;
  hash: string;
  targetState: TargetState;
  /**
   * A body a rollout is about to restart the unit onto: the agent pulls its
   * image now (src/agent/prepull.ts), while the unit still runs `hash`.
   * Written by the rollout controller; gone once the unit is stopped.
   */
  next?: string;
}

/** A machine's presence, written by its agent under a lease. */
export interface MachineRecord {
  id: string;
  ip: string;
  hostname?: string;
  metadata: Record<string, string>;
  version: string;
  startedAt: string;
}

/** What systemd says about a unit on a machine, written by that machine's agent under its lease. */
export interface UnitStateRecord {
  name: string;
  machine: string;
  hash: string;
  loadState: string;
  activeState: string;
  subState: string;
  mainPid?: number;
  updatedAt: string;
  /** the pull of the image of the schedule's `next` body, while one is asked for */
  pull?: PullReport;
}

/** How the agent's pull of a next body's image went (src/agent/prepull.ts). */
export interface PullReport {
  /** the body whose image it is */
  hash: string;
  /** none: that body has no pull step (src/unit/pull.ts), nothing to wait for */
  state: 'pulling' | 'pulled' | 'failed' | 'none';
  image?: string;
  /** the runtime's last error lines, when failed */
  message?: string;
  startedAt: string;
  finishedAt?: string;
}

/** Why a unit is not placed, written by the engine leader. */
export interface UnschedulableRecord {
  name: string;
  reason: string;
  /** per-machine rejection reasons: machine id -> reason */
  machines: Record<string, string>;
  updatedAt: string;
}
