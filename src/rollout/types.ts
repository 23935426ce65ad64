/**
 * Rollouts: a service's instances restarted a batch at a time, onto one
 * revision. The record lives in etcd ({p}/rollout/{svc}); the engine leader
 * moves it forward with nextSteps(), a pure function (see README.md).
 */
import type { HealthRecord, HealthStatus } from '../health/types.js';
import type { PresenceStatusRecord } from '../presence/types.js';
import type { UnitRecord, UnitStateRecord } from '../registry/records.js';
import type { PipelineIdentity, RolloutPolicy } from '../service/types.js';

export type RolloutKind = 'deploy' | 'restart' | 'undo';
export type RolloutState = 'running' | 'paused' | 'reverting' | 'succeeded' | 'failed' | 'aborted';

/**
 * An instance's way through a rollout:
 * pending -> pulling (its host pulls the target body's image; only when
 * the record says prePull) -> leaving (held out of the LB) -> draining (sessions end) ->
 * stopping -> starting -> checking (healthy for minHealthyMs) ->
 * joining (back in the LB) -> done. 'failed' ends the rollout.
 * A surge instance (created extra by the CLI, `surge: true`) goes
 * starting -> checking -> joining -> serving (extra capacity) ->
 * retiring (held out, drained) -> removing (unit record deleted) -> done.
 */
export type InstancePhase =
  | 'pending' | 'pulling' | 'leaving' | 'draining' | 'stopping' | 'starting' | 'checking' | 'joining' | 'done' | 'failed'
  | 'serving' | 'retiring' | 'removing';

export interface InstanceProgress {
  unit: string;
  phase: InstancePhase;
  /** when the instance entered this phase (ISO) */
  since: string;
  /** body hash this instance must end on */
  targetHash: string;
  error?: string;
  /** when the instance last entered 'starting' (ISO): deadline and fresh health count from here */
  startedAt?: string;
  /** why the planner did something unusual with it (destroyed meanwhile, released on abort, …) */
  note?: string;
  /** an extra instance created for the rollout (policy.surge); retired and destroyed before it finishes */
  surge?: boolean;
  /**
   * The instance's health record as the controller saw it, and when it first
   * saw it by its own clock: minimum healthy time and how long it has been
   * unhealthy count from `seenAt`, never from the agent's `since`, because a
   * machine's clock may be minutes off (the fault matrix's clock jump). The
   * agent's `since` only tells one record from the next.
   */
  health?: SeenHealth;
  /** the agent's `since` of the health record when the instance (re)started ('' for none): a record with it predates the start */
  healthAtStart?: string;
  /** times the instance turned unhealthy on the target body after it was done (a flapping check fails the rollout at FLAP_LIMIT) */
  relapses?: number;
}

/** A health record as the rollout controller saw it (InstanceProgress.health). */
export interface SeenHealth {
  status: HealthStatus;
  /** the agent's `since`: an identity, not a time to compare with ours */
  since: string;
  hash: string;
  /** when the controller first saw this record (ISO, the controller's clock) */
  seenAt: string;
}

/** Who holds a rollout's lock: the pipeline's identity (deploy/holder.ts reads it). */
export type RolloutHolder = PipelineIdentity;

export interface RolloutRecord {
  id: string;
  service: string;
  /** template unit, e.g. app@.service; instances are its submitted instances */
  template: string;
  kind: RolloutKind;
  state: RolloutState;
  /** revision the service was on when the rollout began (for history) */
  fromRevision?: number;
  /** revision and body the rollout brings instances to */
  toRevision?: number;
  toHash: string;
  /** revision to go back to when auto-revert triggers */
  revertTo?: { revision: number; hash: string };
  autoRevert: boolean;
  /** whether instances go in and out of a load balancer */
  presence: boolean;
  policy: RolloutPolicy;
  holder: RolloutHolder;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  instances: Record<string, InstanceProgress>;
  message?: string;
  /** longest wait for open sessions after leaving the balancer (service presence drainTimeoutMs); 30 s if absent */
  drainTimeoutMs?: number;
  /**
   * The target body has an image pull step (src/unit/pull.ts): each instance
   * first has its host pull the image ('pulling'), while it still serves, so
   * the pull is not part of the time it is out of the load balancer.
   */
  prePull?: boolean;
  /** the last control command the planner applied; an abort stays in force once seen */
  control?: RolloutControl;
}

export type RolloutControl = { command: 'pause' | 'resume' | 'abort'; by: string; at: string };

/** Everything nextSteps needs to know about one instance, as reported. */
export interface InstanceView {
  unit: string;
  record?: UnitRecord;
  /** states reported by machines (one per machine the unit is on) */
  states: UnitStateRecord[];
  health?: HealthRecord;
  presence?: PresenceStatusRecord;
  held: boolean;
  /** the body its schedule record asks the machine to pull ahead (ScheduleRecord.next) */
  pullAsked?: string;
}

export interface RolloutView {
  rollout: RolloutRecord;
  instances: InstanceView[];
  control?: RolloutControl;
  /** milliseconds since the epoch; planners never read a clock */
  now: number;
  /**
   * ms since the epoch: when the controller last regained sight of etcd (its
   * term began, or a pass succeeded after failed ones). Phase deadlines count
   * from no earlier than this, so time etcd was unreachable (no health could
   * be reported, nothing could be read) never fails an instance.
   */
  deadlineFloor?: number;
}

/** What the controller must do; plain data, applied in order, each with a reason. */
export type RolloutAction =
  | { type: 'hold'; unit: string; reason: string }
  | { type: 'release'; unit: string; reason: string }
  | { type: 'set-unit'; unit: string; targetState: 'loaded' | 'launched'; hash: string; reason: string }
  | { type: 'destroy-unit'; unit: string; reason: string }
  | { type: 'pull'; unit: string; hash: string; reason: string }
  | { type: 'mark-healthy'; revision: number; reason: string }
  | { type: 'finish'; state: 'succeeded' | 'failed' | 'aborted'; reason: string };

export interface RolloutStep {
  /** the record as it must be stored after the actions */
  rollout: RolloutRecord;
  actions: RolloutAction[];
  /** false when the record is the same as the view's (the controller may skip writing it) */
  changed?: boolean;
  /** ms since the epoch: the earliest time an instance moves on without a new report (a limit passes); absent: only reports move it */
  wakeAt?: number;
}
