/**
 * One instance's phase machine: advance() moves it as far as the reports
 * allow (possibly several phases in one call), ensure() lists what must be
 * true of the cluster in the phase it ended in. Actions are derived from the
 * phase, not from the transition, so a repeated call with a view in which
 * they were applied emits nothing, and a lost action is emitted again.
 */
import {
  failedReport, hasDrained, hasJoined, hasLeft, hasStopped, isFresh, isHealthyEnough, isStarted, ms, observeHealth, pullOutcome, seenSince, silentStopAt,
} from './conditions.js';
import type { InstancePhase, InstanceProgress, InstanceView, RolloutAction } from './types.js';
import type { RolloutPolicy } from '../service/types.js';

export interface PhaseContext {
  now: number;
  nowIso: string;
  presence: boolean;
  policy: RolloutPolicy;
  drainTimeoutMs: number;
  /** ms since the epoch: deadlines count from no earlier than this (see RolloutView.deadlineFloor) */
  deadlineFloor?: number;
}

/**
 * Phases in which the rollout has taken the instance and must bring it
 * back. 'pulling' still serves, but counts against the budget like the
 * rest: the instance goes on to leave the balancer as soon as its image is in.
 */
export const IN_FLIGHT: ReadonlySet<InstancePhase> = new Set(['pulling', 'leaving', 'draining', 'stopping', 'starting', 'checking', 'joining']);

/** Where an instance taken from 'pending' goes first. */
export function firstPhase(presence: boolean, prePull = false): InstancePhase {
  return prePull ? 'pulling' : presence ? 'leaving' : 'stopping';
}

export function enter(p: InstanceProgress, phase: InstancePhase, ctx: PhaseContext, extra: Partial<InstanceProgress> = {}): InstanceProgress {
  const next: InstanceProgress = { ...p, phase, since: ctx.nowIso, ...extra };
  if (phase === 'starting') next.startedAt = ctx.nowIso;
  return next;
}

/** Advances while conditions already hold; stops at the first phase still waiting. */
export function advance(p: InstanceProgress, v: InstanceView, ctx: PhaseContext): InstanceProgress {
  let cur = p;
  // Each phase is entered at most once per call: the chain is acyclic.
  for (let i = 0; i < 8; i++) {
    const next = step(cur, v, ctx);
    if (next === cur) break;
    cur = next;
  }
  return cur;
}

function step(p: InstanceProgress, v: InstanceView, ctx: PhaseContext): InstanceProgress {
  switch (p.phase) {
    case 'pulling': {
      const pulled = pullOutcome(v, p.targetHash);
      if (pulled === 'ready') return enter(p, firstPhase(ctx.presence), ctx);
      if (pulled !== undefined) return enter(p, 'failed', ctx, { error: pulled.error });
      if (ctx.now - ms(p.since) > ctx.policy.deadlineMs) {
        const reports = v.states.map((s) => `${s.machine}: ${s.pull?.hash === p.targetHash ? s.pull.state : 'no report'}`).join(', ');
        return enter(p, 'failed', ctx, { error: `image not pulled ${ctx.policy.deadlineMs} ms after it was asked for (${reports || 'no machine'})` });
      }
      return p;
    }
    case 'leaving':
      if (!ctx.presence) return enter(p, 'stopping', ctx);
      return hasLeft(v) ? enter(p, 'draining', ctx) : failIfStuck(p, v, ctx);
    case 'draining':
      if (!ctx.presence || hasDrained(v, ms(p.since), ctx.now, ctx.drainTimeoutMs)) return enter(p, 'stopping', ctx);
      return p;
    case 'stopping':
      return hasStopped(v, ms(p.since), ctx.now, ctx.deadlineFloor)
        ? enter(p, 'starting', ctx, { healthAtStart: v.health?.since ?? '' })
        : failIfStuck(p, v, ctx);
    case 'starting':
      if (isStarted(v, p.targetHash)) return enter(p, 'checking', ctx);
      return failIfDue(p, v, ctx);
    case 'checking': {
      const seen = observeHealth(p, v, ctx.nowIso);
      if (isHealthyEnough(v, seen, startedAt(seen), ctx.now, ctx.policy.minHealthyMs)) {
        return enter(seen, ctx.presence ? 'joining' : p.surge ? 'serving' : 'done', ctx);
      }
      return failIfDue(seen, v, ctx);
    }
    case 'joining':
      return !ctx.presence || hasJoined(v) ? enter(p, p.surge ? 'serving' : 'done', ctx) : failIfStuck(p, v, ctx);
    case 'retiring':
      return isRetired(v, ms(p.since), ctx) ? enter(p, 'removing', ctx) : p;
    default:
      // serving: the planner decides when to retire it; removing: done once the unit record is gone (plan.ts)
      return p;
  }
}

/**
 * When the instance, in its phase, moves on with no new report, only
 * because time passed: the drain timeout, the minimum healthy time of a
 * healthy record, the deadline (the same limits step() compares). undefined
 * when only a report can move it. The controller wakes then instead of
 * polling.
 */
export function wakeAt(p: InstanceProgress, v: InstanceView | undefined, ctx: PhaseContext): number | undefined {
  switch (p.phase) {
    case 'pulling':
      return ms(p.since) + ctx.policy.deadlineMs + 1;
    case 'draining':
    case 'retiring':
      return ctx.presence ? ms(p.since) + ctx.drainTimeoutMs : undefined;
    case 'stopping': {
      const limit = ms(p.since) + phaseLimit(p, ctx) + 1;
      const silent = v === undefined ? undefined : silentStopAt(v, ms(p.since), ctx.deadlineFloor);
      return silent === undefined ? limit : Math.min(limit, silent);
    }
    case 'leaving':
    case 'joining':
      return ms(p.since) + phaseLimit(p, ctx) + 1;
    case 'done': {
      // unhealthy on its target: the deadline after which it fails the rollout (plan.ts, wentBad)
      const h = v?.health;
      if (h === undefined || p.surge) return undefined;
      // unhealthy: when it fails the rollout; healthy after a relapse: when it stops counting as down (batch.ts, isShaky)
      if (h.status === 'unhealthy' && h.hash === p.targetHash) return seenSince(v!, p) + ctx.policy.deadlineMs + 1;
      return h.status === 'healthy' && (p.relapses ?? 0) > 0 ? seenSince(v!, p) + ctx.policy.deadlineMs : undefined;
    }
    case 'starting':
      return deadlineFrom(p, ctx) + ctx.policy.deadlineMs + 1;
    case 'checking': {
      const deadline = deadlineFrom(p, ctx) + ctx.policy.deadlineMs + 1;
      const h = v?.health;
      const healthy = h !== undefined && h.status === 'healthy' && h.hash === p.targetHash && isFresh(v!, p, startedAt(p));
      return healthy ? Math.min(deadline, seenSince(v!, p) + ctx.policy.minHealthyMs) : deadline;
    }
    default:
      return undefined;
  }
}

/**
 * A retiring surge instance may be destroyed: no balancer; or no presence
 * status (the syncer never put it in); or status `out`; or status
 * `draining` with no session left or the drain timeout (counted from
 * entering 'retiring') passed. Status `in` waits for the syncer to act on
 * the hold, like 'leaving'.
 */
function isRetired(v: InstanceView, since: number, ctx: PhaseContext): boolean {
  const s = v.presence;
  if (!ctx.presence || s === undefined || s.state === 'out') return true;
  return s.state === 'draining' && (s.sessions === 0 || ctx.now - since >= ctx.drainTimeoutMs);
}

function startedAt(p: InstanceProgress): number {
  return ms(p.startedAt ?? p.since);
}

/** Where an instance's deadline counts from: its start, or later when the controller was blind to etcd since. */
function deadlineFrom(p: InstanceProgress, ctx: PhaseContext): number {
  return Math.max(startedAt(p), ctx.deadlineFloor ?? 0);
}

function failIfDue(p: InstanceProgress, v: InstanceView, ctx: PhaseContext): InstanceProgress {
  const started = startedAt(p);
  const crashed = failedReport(v, p.targetHash, started);
  // A surge instance that fails or cannot be placed gives no capacity but never fails the rollout.
  if (crashed !== undefined && p.surge) return enter(p, 'retiring', ctx, { note: `surge instance given up: ${crashed}` });
  if (crashed !== undefined) return enter(p, 'failed', ctx, { error: crashed });
  if (ctx.now - deadlineFrom(p, ctx) > ctx.policy.deadlineMs) {
    const h = v.health;
    const health = h === undefined ? 'no health record'
      : `health ${h.status} on ${h.hash === p.targetHash ? 'the target body' : `body ${h.hash}`}${h.message ? `: ${h.message}` : ''}`;
    const what = p.phase === 'starting' ? 'not active' : 'not healthy long enough';
    const error = `${what} ${ctx.policy.deadlineMs} ms after start (${health})`;
    if (p.surge) return enter(p, 'retiring', ctx, { note: `surge instance given up: ${error}` });
    return enter(p, 'failed', ctx, { error });
  }
  return p;
}

/**
 * Every phase has a deadline: one that waits on someone else (the presence
 * syncer to take it out or put it back, the agent to stop it) fails after
 * policy.deadlineMs in that phase, with what it waited for, instead of
 * waiting forever with no word (a rollout sat in 'leaving' with the
 * syncer dead). A surge instance is given up instead (retired).
 */
function failIfStuck(p: InstanceProgress, v: InstanceView, ctx: PhaseContext): InstanceProgress {
  const limit = phaseLimit(p, ctx);
  if (ctx.now - ms(p.since) <= limit) return p;
  const error = `${waitingFor(p, v)}: still waiting ${limit} ms after it entered ${p.phase}`;
  if (p.surge) return enter(p, 'retiring', ctx, { note: `surge instance given up: ${error}` });
  return enter(p, 'failed', ctx, { error });
}

/**
 * How long leaving, stopping and joining may wait. Stopping gets three
 * deadlines: systemd's own stop timeout (TimeoutStopSec, up to minutes for
 * a service that drains) ends it first; this only backs it up (an agent
 * that is gone loses its lease, and its reports vanish, which counts as
 * stopped). The others wait on the presence syncer, which acts in a second.
 */
function phaseLimit(p: InstanceProgress, ctx: PhaseContext): number {
  return p.phase === 'stopping' ? 3 * ctx.policy.deadlineMs : ctx.policy.deadlineMs;
}

/** What an instance in flight waits for, in words (the rollout's message and a stuck phase's error). */
export function waitingFor(p: InstanceProgress, v: InstanceView | undefined): string {
  const lb = `presence status ${v?.presence?.state ?? 'none'}`;
  switch (p.phase) {
    case 'leaving':
      return `waiting for the load balancer to take it out (${lb}; is the presence syncer running?)`;
    case 'draining':
      return `waiting for its sessions to end (${v?.presence?.sessions ?? '?'} open)`;
    case 'stopping': {
      const up = v?.states.filter((s) => s.activeState !== 'inactive' && s.activeState !== 'failed') ?? [];
      return `waiting for it to stop (${up.map((s) => `${s.activeState} on ${s.machine}`).join(', ') || 'no report'})`;
    }
    case 'starting':
      return 'waiting for it to be active on the target body';
    case 'checking':
      return `waiting for it to be healthy (health ${v?.health?.status ?? 'none'})`;
    case 'joining':
      return `waiting for the load balancer to put it back (${lb}; is the presence syncer running?)`;
    default:
      return p.phase;
  }
}

/** What must hold in the cluster for an instance in its (final) phase, given what the view shows. */
export function ensure(p: InstanceProgress, v: InstanceView | undefined, ctx: PhaseContext): RolloutAction[] {
  const unit = p.unit;
  if (v === undefined) return [];
  const out: RolloutAction[] = [];
  const hold = (why: string) => {
    if (ctx.presence && !v.held) out.push({ type: 'hold', unit, reason: `${p.phase}: ${why}` });
  };
  const release = (why: string) => {
    if (v.held) out.push({ type: 'release', unit, reason: `${p.phase}: ${why}` });
  };
  const rec = v.record;
  switch (p.phase) {
    case 'pending':
    case 'done':
      release('not in flight, so the rollout holds it out of the balancer no longer');
      break;
    case 'serving':
      release('surge instance healthy on the target body, serving as extra capacity');
      break;
    case 'pulling':
      release('still serving while its host pulls the image');
      if (rec !== undefined && v.pullAsked !== p.targetHash) {
        out.push({ type: 'pull', unit, hash: p.targetHash, reason: 'pulling: its host pulls the target body\'s image before it leaves the balancer' });
      }
      break;
    case 'retiring':
      hold('surge instance held out of the balancer before it is destroyed');
      break;
    case 'removing':
      hold('surge instance kept out of the balancer while it is destroyed');
      if (rec !== undefined) out.push({ type: 'destroy-unit', unit, reason: 'removing: surge instance no longer needed' });
      break;
    case 'leaving':
    case 'draining':
      hold('held out of the balancer before it is stopped');
      break;
    case 'stopping':
      hold('kept out of the balancer while it restarts');
      if (rec !== undefined && rec.targetState === 'launched') {
        out.push({ type: 'set-unit', unit, targetState: 'loaded', hash: rec.hash, reason: 'stopping: stop it before starting the target body' });
      }
      break;
    case 'starting':
    case 'checking':
      hold('kept out of the balancer until it is healthy');
      if (rec !== undefined && (rec.targetState !== 'launched' || rec.hash !== p.targetHash)) {
        out.push({ type: 'set-unit', unit, targetState: 'launched', hash: p.targetHash, reason: `${p.phase}: start it on the target body` });
      }
      break;
    case 'joining':
      release('healthy on the target body, back into the balancer');
      break;
    case 'failed':
      // Released: its health keeps it out of the balancer while it is down
      // (the presence syncer puts in only healthy instances). Held, it stayed
      // in maintenance after the rollout ended even once healthy (a failed
      // revert, or one that failed untouched waiting in 'leaving').
      release('failed: its health, not the rollout, decides whether the balancer uses it');
      break;
  }
  return out;
}
