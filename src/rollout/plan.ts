/**
 * nextSteps: the pure decide step of the rollout controller. Given the
 * rollout record and what is reported about each instance, it returns the
 * record as it must be stored and the actions to apply, in order. See
 * README.md for the rules it follows.
 */
import { alreadyOnTarget, budget, cmp, pickToStart } from './batch.js';
import { DEFAULT_DRAIN_TIMEOUT_MS, isStopped, ms, observeHealth, seenSince } from './conditions.js';
import { advance, ensure, enter, firstPhase, IN_FLIGHT, waitingFor, wakeAt, type PhaseContext } from './phases.js';
import { standDown, startRevert } from './revert.js';
import { isSurge, regular, retireSurge, settled } from './surge.js';
import type {
  InstanceProgress, InstanceView, RolloutAction, RolloutControl, RolloutRecord, RolloutState, RolloutStep, RolloutView,
} from './types.js';

const TERMINAL: ReadonlySet<RolloutState> = new Set(['succeeded', 'failed', 'aborted']);

export function nextSteps(view: RolloutView): RolloutStep {
  const before = view.rollout;
  if (TERMINAL.has(before.state)) return { rollout: before, actions: finishAgain(before), changed: false };

  const ctx: PhaseContext = {
    now: view.now,
    nowIso: new Date(view.now).toISOString(),
    presence: before.presence,
    policy: before.policy,
    drainTimeoutMs: before.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    ...(view.deadlineFloor !== undefined ? { deadlineFloor: view.deadlineFloor } : {}),
  };
  const views = new Map(view.instances.map((v) => [v.unit, v]));
  let r: RolloutRecord = applyControl({ ...before, instances: { ...before.instances } }, view.control);
  const aborting = r.control?.command === 'abort';

  r = moveOnFully(r, views, ctx);
  if (hasFailed(r) && (r.state === 'running' || r.state === 'paused') && r.autoRevert && r.revertTo !== undefined && !aborting) {
    r = moveOn(startRevert(r, views, ctx), views, ctx);
  }

  // Released instances already on their target are done now, not at the next call (idempotency).
  if (aborting) r = moveOnFully(standDown(r, 'rollout aborted', ctx), views, ctx);
  else if (hasFailed(r)) r = moveOnFully(standDown(r, 'rollout failed', ctx), views, ctx);
  else if (r.state === 'running' || r.state === 'reverting') {
    const take = new Set(pickToStart(r, views, ctx.now));
    const first = firstPhase(r.presence, r.prePull === true);
    r = mapInstances(r, (p) => {
      const v = views.get(p.unit);
      return take.has(p.unit) && v !== undefined ? advance(enter(p, first, ctx, { note: undefined }), v, ctx) : p;
    });
  }
  const stalledSince = revertStalledSince(r, ctx);
  const stalled = stalledSince !== undefined && ctx.now > stalledSince + ctx.policy.deadlineMs;
  // Surge instances go once the regular ones are settled (whatever the outcome).
  if (settled(r, aborting || stalled)) r = retireSurge(r, views, ctx, aborting || stalled || hasFailed(r));

  const perInstance: RolloutAction[] = [];
  for (const p of sortedInstances(r)) perInstance.push(...ensure(p, views.get(p.unit), ctx));
  // Releases first: the budget that let another instance be taken down in
  // this step may count on them, so capacity comes back before more leaves
  // (a controller that applies actions one by one never dips below it).
  const actions: RolloutAction[] = [
    ...perInstance.filter((a) => a.type === 'release'),
    ...perInstance.filter((a) => a.type !== 'release'),
  ];
  r = finishIfSettled(r, aborting, stalled, views, ctx, actions);

  const changed = canonical({ ...r, updatedAt: '' }) !== canonical({ ...before, updatedAt: '' });
  const stall = revertStalledSince(r, ctx);
  const wake = TERMINAL.has(r.state) ? undefined : earliest([
    ...sortedInstances(r).map((p) => wakeAt(p, views.get(p.unit), ctx)),
    stall !== undefined ? stall + ctx.policy.deadlineMs + 1 : undefined,
  ]);
  return { rollout: changed ? { ...r, updatedAt: ctx.nowIso } : before, actions, changed, ...(wake !== undefined ? { wakeAt: wake } : {}) };
}

function earliest(times: Array<number | undefined>): number | undefined {
  const known = times.filter((t): t is number => t !== undefined && Number.isFinite(t));
  return known.length > 0 ? Math.min(...known) : undefined;
}

/** pause/resume/abort from {p}/rollout-control; a command older than the rollout is a leftover and ignored. */
function applyControl(r: RolloutRecord, c: RolloutControl | undefined): RolloutRecord {
  if (c === undefined || ms(c.at) < ms(r.createdAt)) return r;
  if (r.control?.command === 'abort') return r; // final: a later resume does not undo it
  const next = { ...r, control: c };
  if (c.command === 'pause' && r.state === 'running') next.state = 'paused';
  if (c.command === 'resume' && r.state === 'paused') next.state = 'running';
  return next;
}

/**
 * moveOn until nothing changes (a few rounds at most): one instance's move
 * can make a rule about another hold (the last one in flight lands, and the
 * rollout is now stuck on its budget), and a repeat call with the same
 * reports must find nothing left to do.
 */
function moveOnFully(r: RolloutRecord, views: ReadonlyMap<string, InstanceView>, ctx: PhaseContext): RolloutRecord {
  let cur = r;
  for (let i = 0; i < 4; i++) {
    const next = moveOn(cur, views, ctx);
    if (canonical(next) === canonical(cur)) return next;
    cur = next;
  }
  return cur;
}

/** Every instance as far as the reports allow; destroyed ones and ones already on their target are done. */
function moveOn(r: RolloutRecord, views: ReadonlyMap<string, InstanceView>, ctx: PhaseContext): RolloutRecord {
  // waiting on the budget: regular instances pending, none in flight
  const regulars = Object.values(r.instances).filter((p) => !p.surge);
  const stuck = !regulars.some((p) => IN_FLIGHT.has(p.phase)) && regulars.some((p) => p.phase === 'pending');
  return mapInstances(r, (p) => {
    const v = views.get(p.unit);
    if (v?.record === undefined) return gone(p, v, ctx);
    if (p.phase === 'pending' && alreadyOnTarget(r, v, p.targetHash)) {
      return enter(p, 'done', ctx, { note: 'already running the target body, healthy' });
    }
    if (p.phase === 'done' && onTarget(r, p)) {
      const q = relapsed(p, v, ctx);
      const why = v.health?.message ? ` (${v.health.message})` : '';
      if ((q.relapses ?? 0) >= FLAP_LIMIT) {
        return enter(q, 'failed', ctx, { error: `turned unhealthy ${q.relapses} times after it joined: a flapping health check${why}` });
      }
      if (stuck && wentBad(q, v, ctx)) {
        return enter(q, 'failed', ctx, { error: `unhealthy on the target body for over ${ctx.policy.deadlineMs} ms after it joined${why}` });
      }
      return q;
    }
    return IN_FLIGHT.has(p.phase) || p.phase === 'retiring' ? advance(p, v, ctx) : p;
  });
}

/**
 * An instance whose unit was destroyed meanwhile: nothing left to roll. One
 * the rollout holds stays held (and in its phase) until no machine runs it
 * and no health record calls it healthy: the agent stops it after the
 * record is gone, and its health record outlives the record until then, so
 * a hold released at once let the presence syncer put the dying instance
 * back into the balancer, and requests met it while it stopped (HAProxy had
 * to redispatch them; found by the zero-downtime e2e's retry counters).
 */
function gone(p: InstanceProgress, v: InstanceView | undefined, ctx: PhaseContext): InstanceProgress {
  if (p.phase === 'done' || p.phase === 'failed') return p;
  if (v !== undefined && v.held && (!isStopped(v) || v.health?.status === 'healthy')) return p;
  if (isSurge(p) && p.phase === 'removing') return enter(p, 'done', ctx, { note: 'surge instance destroyed' });
  return enter(p, 'done', ctx, { note: `unit destroyed during the rollout (was ${p.phase})` });
}

/**
 * Times a done instance may turn unhealthy on the new body while the
 * rollout runs before the rollout fails: a check that flaps (healthy long
 * enough to join, then down, then up again) never stays unhealthy for the
 * deadline, yet a version that keeps dropping out is not one to finish on.
 */
export const FLAP_LIMIT = 3;

/** A done instance of the running rollout's own body (not a surge one). */
function onTarget(r: RolloutRecord, p: InstanceProgress): boolean {
  return !p.surge && (r.state === 'running' || r.state === 'paused') && p.targetHash === r.toHash;
}

/** Records the instance's health as seen now; a turn to unhealthy on the target body counts as a relapse. */
function relapsed(p: InstanceProgress, v: InstanceView, ctx: PhaseContext): InstanceProgress {
  const q = observeHealth(p, v, ctx.nowIso);
  if (q === p) return p;
  const h = q.health!;
  const turned = h.status === 'unhealthy' && h.hash === p.targetHash && v.record?.hash === p.targetHash && p.health?.status !== 'unhealthy';
  return turned ? { ...q, relapses: (p.relapses ?? 0) + 1 } : q;
}

/**
 * A done instance unhealthy on the new body for longer than the deadline
 * (as the controller saw it) while nothing is in flight and instances wait
 * pending: the body went bad after it joined, and the unhealthy instances
 * use up the budget, so nothing else could ever start. It fails the
 * rollout (and triggers the revert) instead of waiting forever with the
 * service down to the bad body. A short blip does not count.
 */
function wentBad(p: InstanceProgress, v: InstanceView, ctx: PhaseContext): boolean {
  const h = v.health;
  return v.record?.hash === p.targetHash && h !== undefined && h.hash === p.targetHash && h.status === 'unhealthy'
    && ctx.now - seenSince(v, p) > ctx.policy.deadlineMs;
}

/**
 * A revert that cannot move: nothing in flight, instances pending, and the
 * budget used up by instances down outside its hands (one whose new image
 * never pulled and stayed down on the old body, one already down before
 * the rollout): the time its last instance moved (or the controller
 * regained etcd), else undefined. Past the deadline the revert ends failed
 * and leaves the pending instances as they are, instead of never ending.
 */
function revertStalledSince(r: RolloutRecord, ctx: PhaseContext): number | undefined {
  if (r.state !== 'reverting' || r.control?.command === 'abort') return undefined;
  const all = regular(r);
  if (all.some((p) => IN_FLIGHT.has(p.phase)) || !all.some((p) => p.phase === 'pending')) return undefined;
  return Math.max(ctx.deadlineFloor ?? 0, ...all.map((p) => ms(p.since)));
}

function finishIfSettled(
  r: RolloutRecord, aborting: boolean, stalled: boolean, views: ReadonlyMap<string, InstanceView>, ctx: PhaseContext, actions: RolloutAction[],
): RolloutRecord {
  const all = regular(r);
  const inFlight = all.filter((p) => IN_FLIGHT.has(p.phase));
  const failed = all.filter((p) => p.phase === 'failed');
  const pending = all.filter((p) => p.phase === 'pending');
  const done = all.filter((p) => p.phase === 'done');
  if (inFlight.length > 0 || (pending.length > 0 && failed.length === 0 && !aborting && !stalled)) {
    return { ...r, message: progress(r, done.length, inFlight, pending.length, aborting, views, ctx.now) };
  }
  // The rollout ends only once its surge instances are gone.
  const surging = sortedInstances(r).filter((p) => isSurge(p) && p.phase !== 'done');
  if (surging.length > 0) {
    return { ...r, message: `${done.length}/${all.length} done; retiring surge instance(s): ${surging.map((p) => `${p.unit} ${p.phase}`).join(', ')}` };
  }
  const finish = (state: 'succeeded' | 'failed' | 'aborted', message: string): RolloutRecord => {
    actions.push({ type: 'finish', state, reason: message });
    return { ...r, state, message, finishedAt: ctx.nowIso };
  };
  const errors = (ps: InstanceProgress[]) => ps.map((p) => `${p.unit}: ${p.error ?? 'failed'}`).join('; ');
  if (failed.length > 0) {
    const what = r.state === 'reverting' ? `revert to revision ${r.revertTo?.revision} failed` : 'rollout failed';
    const why = !r.autoRevert ? ' (auto-revert is off)' : r.revertTo === undefined && r.state !== 'reverting' ? ' (no healthy revision to revert to)' : '';
    return finish('failed', `${what}${why}: ${errors(failed)}; failed instances are kept out of the balancer by their health`);
  }
  if (pending.length > 0 && stalled) {
    const b = budget(r, views, ctx.now);
    return finish('failed', `revert to revision ${r.revertTo?.revision} stalled: ${pending.map((p) => p.unit).join(', ')} left as they were; `
      + `${b.downIdle} instance(s) down outside the rollout used the maxUnavailable budget of ${b.maxUnavailable} for over ${ctx.policy.deadlineMs} ms`);
  }
  if (pending.length > 0) return finish('aborted', `aborted by ${r.control?.by ?? 'a user'}: ${done.length} of ${all.length} done, ${pending.length} left as they were`);
  if (r.state === 'reverting') {
    const cause = errors(all.filter((p) => p.error !== undefined));
    return finish('failed', `reverted to revision ${r.revertTo?.revision} after: ${cause || 'a failure'}`);
  }
  // Only a revision some instance actually ran healthy is marked (not one whose instances were all destroyed).
  const verified = done.filter((p) => views.get(p.unit)?.record?.hash === p.targetHash);
  if (r.toRevision !== undefined && verified.length > 0) {
    actions.push({ type: 'mark-healthy', revision: r.toRevision, reason: `every instance ran revision ${r.toRevision} healthy` });
  }
  const on = r.toRevision !== undefined ? `revision ${r.toRevision}` : r.toHash;
  const gone = all.length - verified.length;
  return finish('succeeded', `${verified.length} instance(s) on ${on}${gone > 0 ? `, ${gone} destroyed meanwhile` : ''}`);
}

function progress(
  r: RolloutRecord, done: number, inFlight: InstanceProgress[], pending: number, aborting: boolean, views: ReadonlyMap<string, InstanceView>, now: number,
): string {
  const total = regular(r).length;
  const parts = [`${done}/${total} done`];
  // what the first few wait for, in words (the record is rewritten when it changes: keep it short)
  const say = (p: InstanceProgress, i: number) => `${p.unit} ${p.phase}${i < 3 ? ` (${waitingFor(p, views.get(p.unit))})` : ''}`;
  if (inFlight.length > 0) parts.push(`in flight: ${inFlight.map(say).join(', ')}`);
  if (pending > 0) parts.push(`${pending} pending`);
  if (aborting) parts.push('aborting: waiting for instances in flight');
  else if (r.state === 'paused') parts.push('paused');
  else if (r.state === 'reverting') parts.push(`reverting to revision ${r.revertTo?.revision}`);
  if (inFlight.length === 0 && pending > 0 && !aborting && r.state !== 'paused') {
    const b = budget(r, views, now);
    parts.push(`waiting: ${b.downIdle} instance(s) down outside the rollout use the maxUnavailable budget of ${b.maxUnavailable}`);
  }
  const surge = Object.values(r.instances).filter((p) => isSurge(p) && p.phase !== 'done');
  if (surge.length > 0) parts.push(`surge: ${surge.map((p) => `${p.unit} ${p.phase}`).sort().join(', ')}`);
  return parts.join('; ');
}

/** A repeat call for a finished record: archive it (again); the controller's move is idempotent. */
function finishAgain(r: RolloutRecord): RolloutAction[] {
  const state = r.state as 'succeeded' | 'failed' | 'aborted';
  const out: RolloutAction[] = [];
  if (state === 'succeeded' && r.toRevision !== undefined) {
    out.push({ type: 'mark-healthy', revision: r.toRevision, reason: `every instance ran revision ${r.toRevision} healthy` });
  }
  out.push({ type: 'finish', state, reason: r.message ?? `rollout ${state}` });
  return out;
}

function mapInstances(r: RolloutRecord, f: (p: InstanceProgress) => InstanceProgress): RolloutRecord {
  const instances: Record<string, InstanceProgress> = {};
  for (const [key, p] of Object.entries(r.instances)) instances[key] = f(p);
  return { ...r, instances };
}

function sortedInstances(r: RolloutRecord): InstanceProgress[] {
  return Object.values(r.instances).sort((a, b) => cmp(a.unit, b.unit));
}

function hasFailed(r: RolloutRecord): boolean {
  return Object.values(r.instances).some((p) => p.phase === 'failed');
}

/** JSON with sorted keys and without undefined fields, so key order never counts as a change. */
function canonical(x: unknown): string {
  return JSON.stringify(x, (_k, val: unknown) => {
    if (val === null || typeof val !== 'object' || Array.isArray(val)) return val;
    const o = val as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
  });
}
