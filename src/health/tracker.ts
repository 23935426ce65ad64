/**
 * One instance's health as a pure state machine. Inputs are what systemd
 * says about the unit (`unit`), the result of one check (`result`) and a
 * change of the service's check (`configure`), each with its time passed in
 * (ms). Each step returns the new state and the HealthRecord to publish, or
 * none when what the record says did not change.
 *
 * Rules (see README.md):
 *  - tracking starts 'unknown', since = that moment;
 *  - a (re)start resets to 'unknown' with a new since: the unit going from
 *    down to activating/active, a new main PID, or a new hash;
 *  - a new hash while the old process still runs: 'unknown' and no checks
 *    until that process is replaced (the agent restarts it next), so the
 *    old code can never make the new hash look healthy;
 *  - not running (inactive, failed, deactivating, not-found…) → 'unhealthy'
 *    at once; activating → 'unknown';
 *  - running: `threshold` consecutive ok results → 'healthy';
 *    `failureThreshold` consecutive failures → 'unhealthy';
 *  - type 'none': healthy as soon as systemd says active;
 *  - no check known yet (services not listed): 'unknown' while running;
 *  - a record left by a previous agent process is taken over when it is for
 *    the same hash and main PID of a running unit (the instance did not
 *    restart): status and since carry on, so an agent restart moves nothing.
 * `since` never goes backwards, even if the clock passed in does.
 */
import type { HealthCheck } from '../service/types.js';
import type { HealthRecord, HealthStatus } from './types.js';

/** How the unit's systemd state counts for health. */
export type Liveness = 'running' | 'starting' | 'down';

export function livenessOf(activeState: string): Liveness {
  if (activeState === 'active' || activeState === 'reloading') return 'running';
  if (activeState === 'activating') return 'starting';
  return 'down';
}

export interface UnitObservation {
  hash: string;
  activeState: string;
  mainPid?: number;
}

export type HealthInput =
  | ({ type: 'unit'; at: number } & UnitObservation)
  | { type: 'result'; at: number; ok: boolean; message: string; /** epoch the check was started in */ epoch: number }
  | { type: 'configure'; at: number; check: HealthCheck | undefined };

export interface TrackerState {
  readonly unit: string;
  readonly machine: string;
  /** undefined: the service's check is not known yet */
  readonly check: HealthCheck | undefined;
  readonly hash: string;
  readonly activeState: string;
  readonly mainPid?: number;
  readonly status: HealthStatus;
  readonly since: number;
  readonly checkedAt: number;
  /** consecutive ok / failed results since the last reset */
  readonly oks: number;
  readonly fails: number;
  readonly message: string;
  /** bumped on every (re)start: results of checks begun before it are dropped */
  readonly epoch: number;
  /** the hash changed while the old process kept running: wait for its restart */
  readonly awaitingRestart?: boolean;
  /** signature of the last record returned, to publish only changes */
  readonly published?: string;
}

export interface Step {
  state: TrackerState;
  /** the record to write, when it says something new */
  record?: HealthRecord;
}

export interface TrackerStart extends UnitObservation {
  unit: string;
  machine: string;
  check: HealthCheck | undefined;
  at: number;
  /** the record found in etcd for this unit and machine, if any */
  previous?: HealthRecord;
}

/** Starts tracking an instance: 'unknown' since `at`, then what its current state implies. */
export function startTracking(s: TrackerStart): Step {
  const adopted = adopt(s);
  if (adopted) return publish(adopted);
  const base: TrackerState = {
    unit: s.unit,
    machine: s.machine,
    check: s.check,
    hash: s.hash,
    activeState: 'activating',
    status: 'unknown',
    since: s.at,
    checkedAt: s.at,
    oks: 0,
    fails: 0,
    message: 'starting',
    epoch: 0,
  };
  const obs: UnitObservation = { hash: s.hash, activeState: s.activeState };
  if (s.mainPid !== undefined) obs.mainPid = s.mainPid;
  return publish(applyUnit(base, obs, s.at, true));
}

/** One input; returns the next state and the record to publish if it changed. */
export function step(state: TrackerState, input: HealthInput): Step {
  switch (input.type) {
    case 'unit':
      return publish(applyUnit(state, input, input.at, false));
    case 'result':
      return publish(applyResult(state, input));
    case 'configure':
      return publish(applyConfigure(state, input.check, input.at));
  }
}

/** The record the state stands for. */
export function recordOf(s: TrackerState): HealthRecord {
  const consecutive = s.status === 'healthy' ? s.oks : s.status === 'unhealthy' ? Math.max(s.fails, 1) : 0;
  return {
    unit: s.unit,
    machine: s.machine,
    hash: s.hash,
    status: s.status,
    since: new Date(s.since).toISOString(),
    checkedAt: new Date(s.checkedAt).toISOString(),
    consecutive,
    message: s.message,
    ...(s.mainPid !== undefined ? { mainPid: s.mainPid } : {}),
  };
}

/** Whether a check should be running now (a probe type and the unit running). */
export function wantsChecks(s: TrackerState): boolean {
  return !s.awaitingRestart && s.check !== undefined && s.check.type !== 'none' && livenessOf(s.activeState) === 'running';
}

/** What a record says, without the fields that change on every check. */
export function signature(r: HealthRecord): string {
  return JSON.stringify([r.unit, r.machine, r.hash, r.status, r.since, r.message ?? '', r.mainPid ?? 0]);
}

/** The state a previous agent process left, when it still describes this incarnation of the unit. */
function adopt(s: TrackerStart): TrackerState | undefined {
  const p = s.previous;
  if (!p || p.unit !== s.unit || p.machine !== s.machine || p.hash !== s.hash) return undefined;
  if (p.mainPid === undefined || p.mainPid <= 0 || p.mainPid !== s.mainPid || livenessOf(s.activeState) !== 'running') return undefined;
  const since = Date.parse(p.since);
  if (!Number.isFinite(since) || since > s.at) return undefined;
  // only a status the current check could have produced (type none is healthy while active)
  if (s.check === undefined || (s.check.type === 'none' && p.status !== 'healthy')) return undefined;
  const n = Math.max(0, Math.floor(p.consecutive));
  return {
    unit: s.unit,
    machine: s.machine,
    check: s.check,
    hash: s.hash,
    activeState: s.activeState,
    mainPid: p.mainPid,
    status: p.status,
    since,
    checkedAt: s.at,
    oks: p.status === 'healthy' ? n : 0,
    fails: p.status === 'unhealthy' ? n : 0,
    message: p.message ?? '',
    epoch: 0,
  };
}

function publish(s: TrackerState): Step {
  const rec = recordOf(s);
  const sig = signature(rec);
  if (sig === s.published) return { state: s };
  return { state: { ...s, published: sig }, record: rec };
}

function applyUnit(s: TrackerState, o: UnitObservation, at: number, first: boolean): TrackerState {
  const before = livenessOf(s.activeState);
  const now = livenessOf(o.activeState);
  const pid = o.mainPid !== undefined && o.mainPid > 0 ? o.mainPid : undefined;
  const newPid = pid !== undefined && s.mainPid !== undefined && pid !== s.mainPid;
  const started = before === 'down' && now !== 'down';
  let next: TrackerState = { ...s, activeState: o.activeState, checkedAt: Math.max(s.checkedAt, at) };
  if (pid !== undefined) next = { ...next, mainPid: pid };
  else if (now === 'down') next = { ...next, mainPid: undefined };
  if (!first && (o.hash !== s.hash || started || newPid)) {
    const stale = o.hash !== s.hash && !started && !newPid && before !== 'down' && now !== 'down';
    next = reset({ ...next, hash: o.hash, awaitingRestart: stale || undefined }, at, o.hash !== s.hash ? 'new hash' : 'restarted');
  } else if (next.awaitingRestart && now === 'down') {
    next = { ...next, awaitingRestart: undefined }; // the old process is gone; the next start runs the new hash
  }
  return settle(next, at);
}

/** Status that follows from the unit's state alone (results keep their say while running). */
function settle(s: TrackerState, at: number): TrackerState {
  const l = livenessOf(s.activeState);
  if (l === 'down') return setStatus({ ...s, oks: 0, fails: 0 }, 'unhealthy', at, `unit is ${s.activeState}`);
  if (l === 'starting') return setStatus(s, 'unknown', at, 'unit is activating');
  if (s.awaitingRestart) return setStatus(s, 'unknown', at, 'new hash; waiting for the unit to restart');
  if (s.check?.type === 'none') return setStatus(s, 'healthy', at, 'unit is active');
  if (s.check === undefined) return setStatus(s, 'unknown', at, 'health check not known yet');
  // a probe type: only results move it, except a unit that came back from down
  if (s.status === 'unhealthy' && s.fails === 0) return setStatus(s, 'unknown', at, 'waiting for checks');
  return s;
}

function reset(s: TrackerState, at: number, why: string): TrackerState {
  return { ...s, status: 'unknown', since: Math.max(s.since, at), oks: 0, fails: 0, message: why, epoch: s.epoch + 1 };
}

function setStatus(s: TrackerState, status: HealthStatus, at: number, message: string): TrackerState {
  if (s.status === status) return s.message === message ? s : { ...s, message };
  return { ...s, status, since: Math.max(s.since, at), message };
}

function applyResult(s: TrackerState, r: { at: number; ok: boolean; message: string; epoch: number }): TrackerState {
  // a check begun before a restart, or one that ended after the unit stopped, says nothing now
  if (r.epoch !== s.epoch || !wantsChecks(s)) return s;
  const t = s.check!;
  const next: TrackerState = {
    ...s,
    checkedAt: Math.max(s.checkedAt, r.at),
    oks: r.ok ? s.oks + 1 : 0,
    fails: r.ok ? 0 : s.fails + 1,
  };
  if (r.ok && next.oks >= Math.max(1, t.threshold)) return setStatus(next, 'healthy', r.at, r.message);
  if (!r.ok && next.fails >= Math.max(1, t.failureThreshold)) return setStatus(next, 'unhealthy', r.at, r.message);
  // not enough in a row to change status: the record keeps saying what it said
  return next;
}

function applyConfigure(s: TrackerState, check: HealthCheck | undefined, at: number): TrackerState {
  if (JSON.stringify(check) === JSON.stringify(s.check)) return s;
  const typeChanged = check?.type !== s.check?.type;
  let next: TrackerState = { ...s, check, oks: 0, fails: typeChanged ? 0 : s.fails };
  // leaving 'none' or an unknown check: a probe must now earn 'healthy'
  if (typeChanged && next.status !== 'unhealthy' && livenessOf(s.activeState) === 'running' && check?.type !== 'none') {
    next = setStatus(next, 'unknown', at, 'waiting for checks');
  }
  return settle(next, at);
}
