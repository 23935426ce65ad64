/**
 * nextSteps, one call at a time: named scenarios as tables. Each row builds
 * a view from a compact description and compares the phases, the rollout
 * state and the actions (in order) with what the design asks for.
 */
import { describe, expect, it } from 'vitest';
import { nextSteps } from '../../src/rollout/plan.js';
import type {
  InstancePhase, InstanceView, RolloutControl, RolloutKind, RolloutRecord, RolloutState, RolloutStep,
} from '../../src/rollout/types.js';
import type { TargetState } from '../../src/registry/records.js';

const OLD = 'h-old';
const NEW = 'h-new';
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
/** seconds after T0 as ISO */
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

interface Inst {
  phase?: InstancePhase;
  /** seconds */
  since?: number;
  startedAt?: number;
  target?: string;
  record?: { hash: string; targetState: TargetState } | null;
  /** [activeState, hash, updatedAt seconds] per machine */
  states?: [string, string, number?][];
  /** [status, hash, since seconds]; null for none */
  health?: [string, string, number] | null;
  /** seconds, the controller's clock: when the rollout record says the controller first saw that health record (default: its since, clocks agreeing); null: not seen yet */
  seen?: number | null;
  /** the agent's since (seconds) of the health record when it (re)started; null: none then */
  healthAtStart?: number | null;
  relapses?: number;
  /** [state, sessions]; null for none */
  lb?: ['in' | 'draining' | 'out', number?] | null;
  held?: boolean;
  inRecord?: boolean;
  inView?: boolean;
  error?: string;
  /** a surge instance (policy.surge) */
  surge?: boolean;
  /** the pull report on every state: [state, hash, message?] */
  pull?: ['pulling' | 'pulled' | 'failed' | 'none', string, string?];
  /** the body its schedule record asks to pull (ScheduleRecord.next) */
  pullAsked?: string;
}

interface Setup {
  insts: Record<string, Inst>;
  presence?: boolean;
  max?: number;
  state?: RolloutState;
  kind?: RolloutKind;
  autoRevert?: boolean;
  revertTo?: boolean;
  control?: RolloutControl;
  applied?: RolloutControl;
  /** seconds */
  now?: number;
  drainTimeoutMs?: number;
  surge?: number;
  /** the target body pulls an image: instances go through 'pulling' */
  prePull?: boolean;
}

const POLICY = { surge: 0, minHealthyMs: 2000, deadlineMs: 60_000, autoRevert: true };

function build(s: Setup): { rollout: RolloutRecord; instances: InstanceView[]; now: number; control?: RolloutControl } {
  const names = Object.keys(s.insts).sort();
  const instances: RolloutRecord['instances'] = {};
  const views: InstanceView[] = [];
  for (const name of names) {
    const i = s.insts[name]!;
    const unit = `${name}.service`;
    if (i.inRecord !== false) {
      instances[unit] = {
        unit, phase: i.phase ?? 'pending', since: at(i.since ?? 0), targetHash: i.target ?? NEW,
        ...(i.startedAt !== undefined ? { startedAt: at(i.startedAt) } : {}), ...(i.error ? { error: i.error } : {}),
        ...(i.surge ? { surge: true } : {}),
        ...(i.health && i.seen !== null ? { health: { status: i.health[0] as 'healthy', hash: i.health[1], since: at(i.health[2]), seenAt: at(i.seen ?? i.health[2]) } } : {}),
        ...(i.healthAtStart !== undefined ? { healthAtStart: i.healthAtStart === null ? '' : at(i.healthAtStart) } : {}),
        ...(i.relapses !== undefined ? { relapses: i.relapses } : {}),
      };
    }
    if (i.inView === false) continue;
    const record = i.record === null ? undefined : { name: unit, hash: OLD, targetState: 'launched' as TargetState, ...i.record };
    views.push({
      unit, record, held: i.held ?? false,
      states: (i.states ?? [['active', OLD, -100]]).map(([activeState, hash, t]) => ({
        name: unit, machine: 'm1', hash, loadState: 'loaded', activeState, subState: activeState === 'active' ? 'running' : 'dead', updatedAt: at(t ?? -100),
        ...(i.pull ? { pull: { state: i.pull[0], hash: i.pull[1], ...(i.pull[2] ? { message: i.pull[2] } : {}), startedAt: at(1) } } : {}),
      })),
      ...(i.pullAsked ? { pullAsked: i.pullAsked } : {}),
      health: i.health === null ? undefined : (() => {
        const [status, hash, since] = i.health ?? ['healthy', OLD, -100];
        return { unit, machine: 'm1', hash, status: status as 'healthy', since: at(since), checkedAt: at(s.now ?? 10), consecutive: 3 };
      })(),
      presence: i.lb === null || s.presence === false ? undefined : (() => {
        const [state, sessions] = i.lb ?? ['in', 5];
        return { service: 'app', unit, state, sessions, updatedAt: at(0) };
      })(),
    });
  }
  const rollout: RolloutRecord = {
    id: 'r1', service: 'app', template: 'app@.service', kind: s.kind ?? 'deploy', state: s.state ?? 'running',
    toRevision: 2, toHash: NEW, ...(s.revertTo === false ? {} : { revertTo: { revision: 1, hash: OLD } }),
    autoRevert: s.autoRevert ?? true, presence: s.presence ?? true,
    policy: { ...POLICY, maxUnavailable: s.max ?? 1, surge: s.surge ?? 0 }, holder: { user: 'u', host: 'h' },
    createdAt: at(-10), updatedAt: at(-10), instances, drainTimeoutMs: s.drainTimeoutMs ?? 10_000,
    ...(s.applied ? { control: s.applied } : {}),
    ...(s.prePull ? { prePull: true } : {}),
  };
  return { rollout, instances: views, now: T0 + (s.now ?? 10) * 1000, control: s.control };
}

const short = (u: string) => u.replace(/\.service$/, '');
function brief(step: RolloutStep): { state: string; phases: string; actions: string[] } {
  return {
    state: step.rollout.state,
    phases: Object.values(step.rollout.instances).sort((a, b) => (a.unit < b.unit ? -1 : 1))
      .map((p) => `${short(p.unit)}:${p.phase}${p.targetHash === OLD ? '@old' : ''}`).join(' '),
    actions: step.actions.map((a) =>
      a.type === 'set-unit' ? `set ${short(a.unit)} ${a.targetState} ${a.hash === OLD ? 'old' : 'new'}`
      : a.type === 'hold' || a.type === 'release' ? `${a.type} ${short(a.unit)}`
      : a.type === 'mark-healthy' ? `mark-healthy ${a.revision}`
      : a.type === 'destroy-unit' ? `destroy ${short(a.unit)}`
      : a.type === 'pull' ? `pull ${short(a.unit)} ${a.hash === OLD ? 'old' : 'new'}`
      : `finish ${a.state}`),
  };
}
const run = (s: Setup) => brief(nextSteps(build(s)));

const onNew = (since = 0): Inst => ({ record: { hash: NEW, targetState: 'launched' }, states: [['active', NEW, since]], health: ['healthy', NEW, since] });
const pause: RolloutControl = { command: 'pause', by: 'ops', at: at(5) };
const resume: RolloutControl = { command: 'resume', by: 'ops', at: at(6) };
const abort: RolloutControl = { command: 'abort', by: 'ops', at: at(7) };

describe('nextSteps: one instance through its phases', () => {
  it.each<[string, Setup, string, string[]]>([
    ['pending with presence: hold it, wait for the balancer', { insts: { a: {} } }, 'a:leaving', ['hold a']],
    ['pending without presence: straight to stopping', { presence: false, insts: { a: {} } }, 'a:stopping', ['set a loaded old']],
    ['pending, not running, no presence: stopping is skipped', { presence: false, insts: { a: { states: [['inactive', OLD]] } } }, 'a:starting', ['set a launched new']],
    ['pending, already out of the balancer: hold and stop at once', { insts: { a: { lb: ['out'] } } }, 'a:stopping', ['hold a', 'set a loaded old']],
    // states live under the machine's lease: none may mean an etcd outage deleted them while the unit runs on
    ['pending, no reported state at all: the stop is asked all the same', { presence: false, insts: { a: { states: [] } } }, 'a:stopping', ['set a loaded old']],
    ['stopping, stop asked, nobody reports it: wait for a report', { now: 14, insts: { a: { phase: 'stopping', since: 5, held: true, lb: ['out'], record: { hash: OLD, targetState: 'loaded' }, states: [] } } }, 'a:stopping', []],
    ['stopping, stop asked, nobody reports it for 10 s: counts as stopped (its machine is gone)',
      { now: 15, insts: { a: { phase: 'stopping', since: 5, held: true, lb: ['out'], record: { hash: OLD, targetState: 'loaded' }, states: [] } } }, 'a:starting', ['set a launched new']],
    ['stopping, nobody reports it, the stop not asked yet: ask it, never count silence',
      { now: 100, insts: { a: { phase: 'stopping', since: 5, held: true, lb: ['out'], states: [] } } }, 'a:stopping', ['set a loaded old']],
    ['leaving, balancer still sends traffic: wait', { insts: { a: { phase: 'leaving', held: true } } }, 'a:leaving', []],
    ['leaving, hold lost: hold again', { insts: { a: { phase: 'leaving' } } }, 'a:leaving', ['hold a']],
    ['leaving, balancer draining: draining', { insts: { a: { phase: 'leaving', held: true, lb: ['draining', 3] } } }, 'a:draining', []],
    ['draining with sessions open: wait', { insts: { a: { phase: 'draining', since: 5, held: true, lb: ['draining', 3] } } }, 'a:draining', []],
    ['draining, sessions 0: stop it', { insts: { a: { phase: 'draining', since: 5, held: true, lb: ['draining', 0] } } }, 'a:stopping', ['set a loaded old']],
    ['draining past the drain timeout: stop it', { now: 20, insts: { a: { phase: 'draining', since: 5, held: true, lb: ['draining', 3] } } }, 'a:stopping', ['set a loaded old']],
    ['stopping, still active: wait without repeating an applied stop',
      { insts: { a: { phase: 'stopping', held: true, lb: ['out'], record: { hash: OLD, targetState: 'loaded' } } } }, 'a:stopping', []],
    ['stopping, stop lost: stop again with the current hash', { insts: { a: { phase: 'stopping', held: true, lb: ['out'] } } }, 'a:stopping', ['set a loaded old']],
    ['stopping, reported failed: counts as stopped',
      { insts: { a: { phase: 'stopping', held: true, lb: ['out'], record: { hash: OLD, targetState: 'loaded' }, states: [['failed', OLD]] } } }, 'a:starting', ['set a launched new']],
    ['starting, active on the old body only: wait',
      { insts: { a: { phase: 'starting', startedAt: 5, held: true, lb: ['out'], record: { hash: NEW, targetState: 'launched' }, states: [['active', OLD]] } } }, 'a:starting', []],
    ['starting, active on the target: checking',
      { insts: { a: { phase: 'starting', startedAt: 5, held: true, lb: ['out'], ...onNew(6), health: ['unknown', NEW, 6] } } }, 'a:checking', []],
    ['checking, healthy for less than minHealthy: wait',
      { now: 10, insts: { a: { phase: 'checking', startedAt: 5, held: true, lb: ['out'], ...onNew(9) } } }, 'a:checking', []],
    ['checking, healthy long enough: release it',
      { now: 10, insts: { a: { phase: 'checking', startedAt: 5, held: true, lb: ['out'], ...onNew(6) } } }, 'a:joining', ['release a']],
    ['checking, a healthy record from before the restart does not count',
      { now: 10, insts: { a: { phase: 'checking', startedAt: 5, held: true, lb: ['out'], ...onNew(6), health: ['healthy', NEW, 1] } } }, 'a:checking', []],
    // Health timing runs on the controller's clock (InstanceProgress.health.seenAt): a machine's clock may be minutes off.
    ['checking, the machine 5 min ahead: healthy long enough by when the controller saw it',
      { now: 10, insts: { a: { phase: 'checking', startedAt: 5, held: true, lb: ['out'], ...onNew(306), healthAtStart: null, seen: 6 } } }, 'a:joining', ['release a']],
    ['checking, the machine 5 min behind: not yet, the controller saw it healthy only 1 s ago',
      { now: 10, insts: { a: { phase: 'checking', startedAt: 5, held: true, lb: ['out'], ...onNew(-294), healthAtStart: null, seen: 9 } } }, 'a:checking', []],
    ['checking, the record it had when it started does not count, whatever its time says',
      { now: 10, insts: { a: { phase: 'checking', startedAt: 5, held: true, lb: ['out'], ...onNew(306), healthAtStart: 306, seen: 1 } } }, 'a:checking', []],
    ['checking, a healthy record seen for the first time now: the minimum healthy time starts now',
      { now: 10, insts: { a: { phase: 'checking', startedAt: 5, held: true, lb: ['out'], ...onNew(6), healthAtStart: null, seen: null } } }, 'a:checking', []],
    ['checking, healthy on another body does not count',
      { now: 10, insts: { a: { phase: 'checking', startedAt: 5, held: true, lb: ['out'], ...onNew(6), health: ['healthy', OLD, 6] } } }, 'a:checking', []],
    ['checking without presence: done at once, revision marked healthy',
      { presence: false, now: 10, insts: { a: { phase: 'checking', startedAt: 5, ...onNew(6) } } }, 'a:done', ['mark-healthy 2', 'finish succeeded']],
    ['joining, balancer not yet sending: wait', { insts: { a: { phase: 'joining', ...onNew(6), lb: ['out'] } } }, 'a:joining', []],
    ['joining, in the balancer: done and succeeded', { insts: { a: { phase: 'joining', ...onNew(6) } } }, 'a:done', ['mark-healthy 2', 'finish succeeded']],
    ['pending, already healthy on the target (deploy): done without a restart', { insts: { a: onNew(-50), b: { phase: 'done', ...onNew(0) } } }, 'a:done b:done', ['mark-healthy 2', 'finish succeeded']],
    ['pending, restart kind: restarted even though on the target',
      { kind: 'restart', insts: { a: { target: OLD } } }, 'a:leaving@old', ['hold a']],
    ['a failed report from before the start does not fail it',
      { insts: { a: { phase: 'starting', startedAt: 5, held: true, lb: ['out'], record: { hash: NEW, targetState: 'launched' }, states: [['failed', NEW, 4]] } } }, 'a:starting', []],
  ])('%s', (_d, setup, phases, actions) => {
    const out = run(setup);
    expect(out.phases).toBe(phases);
    expect(out.actions).toEqual(actions);
  });
});

describe('nextSteps: batches', () => {
  it.each<[string, Setup, string, string[]]>([
    ['one at a time, by name', { insts: { a: {}, b: {}, c: {} } }, 'a:leaving b:pending c:pending', ['hold a']],
    ['an unhealthy instance goes first',
      { insts: { a: {}, b: {}, c: { health: ['unhealthy', OLD, 0], lb: ['out'] } } }, 'a:pending b:pending c:stopping', ['hold c', 'set c loaded old']],
    ['an instance not active counts as down and goes first',
      { presence: false, insts: { a: {}, b: { states: [['failed', OLD]] } } }, 'a:pending b:starting', ['set b launched new']],
    ['maxUnavailable 2 with one down outside the rollout: only one more',
      { max: 2, insts: { a: {}, b: {}, c: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 5] } } }, 'a:leaving b:pending c:done', ['hold a']],
    ['maxUnavailable 1 with one down outside the rollout: nothing starts',
      { insts: { a: {}, b: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 5] } } }, 'a:pending b:done', []],
    ['down instances beyond the budget: still only maxUnavailable in flight, down ones first',
      { insts: { a: { health: ['unhealthy', OLD, 0], lb: ['out'] }, b: { health: ['unhealthy', OLD, 0], lb: ['out'] }, c: {} } }, 'a:stopping b:pending c:pending', ['hold a', 'set a loaded old']],
    ['one in flight with maxUnavailable 1: the next waits', { insts: { a: { phase: 'leaving', held: true }, b: {} } }, 'a:leaving b:pending', []],
    ['maxUnavailable at least N: all at once', { max: 3, insts: { a: {}, b: {}, c: {} } }, 'a:leaving b:leaving c:leaving', ['hold a', 'hold b', 'hold c']],
    ['a held pending instance is released', { insts: { a: { phase: 'leaving', held: true }, b: { held: true } } }, 'a:leaving b:pending', ['release b']],
  ])('%s', (_d, setup, phases, actions) => {
    const out = run(setup);
    expect(out.phases).toBe(phases);
    expect(out.actions).toEqual(actions);
  });
});

const checkingLate = (extra: Inst = {}): Inst => ({ phase: 'checking', startedAt: 0, held: true, lb: ['out'], ...onNew(1), health: ['unhealthy', NEW, 1], ...extra });

describe('nextSteps: deadlines and etcd outages', () => {
  it('a deadline never counts time the controller could not see etcd (deadlineFloor), then still fails', () => {
    const s: Setup = { autoRevert: false, now: 61, insts: { b: checkingLate() } };
    expect(brief(nextSteps(build(s))).state).toBe('failed');
    // etcd was back (a pass succeeded after failed ones) at 40 s: the deadline counts from there
    const floored = { ...build(s), deadlineFloor: T0 + 40_000 };
    const step = nextSteps(floored);
    expect(brief(step)).toMatchObject({ state: 'running', phases: 'b:checking' });
    expect(step.wakeAt).toBe(T0 + 100_001);
    expect(brief(nextSteps({ ...floored, now: T0 + 100_001 })).state).toBe('failed');
  });
});

describe('nextSteps: a stop nobody reports (states gone with a lapsed lease)', () => {
  const silent = (now: number): Setup => ({ now, insts: { a: { phase: 'stopping', since: 5, held: true, lb: ['out'], record: { hash: OLD, targetState: 'loaded' }, states: [] } } });

  it('wakes when the silence counts as stopped, not only at the deadline', () => {
    expect(nextSteps(build(silent(6))).wakeAt).toBe(T0 + 15_000);
  });

  it('the silence counts from when the controller could see etcd again (deadlineFloor)', () => {
    const floored = { ...build(silent(16)), deadlineFloor: T0 + 12_000 };
    const step = nextSteps(floored);
    expect(brief(step).phases).toBe('a:stopping');
    expect(step.wakeAt).toBe(T0 + 22_000);
    expect(brief(nextSteps({ ...floored, now: T0 + 22_000 })).phases).toBe('a:starting');
  });

  it('the agent reports again: its state decides', () => {
    const back: Setup = { now: 7, insts: { a: { phase: 'stopping', since: 5, held: true, lb: ['out'], record: { hash: OLD, targetState: 'loaded' }, states: [['active', OLD, 6]] } } };
    expect(run(back).phases).toBe('a:stopping');
    expect(run({ ...back, insts: { a: { ...back.insts.a, states: [['inactive', OLD, 7]] } } }).phases).toBe('a:starting');
  });
});

describe('nextSteps: failure, revert, control', () => {
  it.each<[string, Setup, string, string, string[]]>([
    ['deadline passed, auto-revert: reverting, the failed one stopped first with the old target',
      { now: 61, insts: { a: { phase: 'done', ...onNew(0) }, b: checkingLate(), c: {} } },
      'reverting', 'a:pending@old b:stopping@old c:done@old', ['set b loaded new']],
    ['unit failed on the target after start: fails without waiting for the deadline',
      { presence: false, now: 10, insts: { a: { phase: 'starting', startedAt: 5, record: { hash: NEW, targetState: 'launched' }, states: [['failed', NEW, 6]] } } },
      'reverting', 'a:starting@old', ['set a launched old']],
    ['no auto-revert: finish failed, the failed one and a leaving one are released (health keeps a down one out)',
      { autoRevert: false, now: 61, insts: { a: { phase: 'leaving', since: 30, held: true }, b: checkingLate() } },
      'failed', 'a:pending b:failed', ['release a', 'release b', 'finish failed']],
    ['leaving past the deadline with no presence status (no syncer), no revert: failed, released, finish failed',
      { autoRevert: false, now: 61, insts: { a: { phase: 'leaving', held: true, lb: null } } }, 'failed', 'a:failed', ['release a', 'finish failed']],
    ['leaving past the deadline, auto-revert: the untouched instances are done on the revert body and released',
      { now: 61, insts: { a: { phase: 'leaving', held: true, lb: null }, b: {} } }, 'failed', 'a:done@old b:done@old', ['release a', 'finish failed']],
    ['joining past the deadline (the syncer never puts it back): failed',
      { autoRevert: false, now: 61, insts: { a: { phase: 'joining', ...onNew(0), lb: ['out'] } } }, 'failed', 'a:failed', ['finish failed']],
    ['stopping past three deadlines, still active: failed',
      { autoRevert: false, now: 181, insts: { a: { phase: 'stopping', held: true, lb: ['out'], record: { hash: OLD, targetState: 'loaded' } } } }, 'failed', 'a:failed', ['release a', 'finish failed']],
    ['a done instance unhealthy on the new body past the deadline, nothing in flight: it fails, auto-revert restarts it on the old body',
      { now: 80, insts: { a: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 15] }, b: {} } }, 'reverting', 'a:stopping@old b:done@old', ['hold a', 'set a loaded new']],
    ['a done instance unhealthy past the deadline by its machine clock, seen unhealthy by the controller only 5 s ago: waited for',
      { now: 80, insts: { a: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 15], seen: 75 }, b: {} } }, 'running', 'a:done b:pending', []],
    ['a done instance turning unhealthy for the third time after it joined (a flapping check): it fails, auto-revert',
      { now: 20, insts: { a: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 19], seen: null, relapses: 2 }, b: {} } }, 'reverting', 'a:stopping@old b:done@old', ['hold a', 'set a loaded new']],
    ['a done instance turning unhealthy for the second time: counted, waited for',
      { now: 20, insts: { a: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 19], seen: null, relapses: 1 }, b: {} } }, 'running', 'a:done b:pending', []],
    ['a done instance healthy again after a relapse counts as down until healthy for the deadline: the next one waits',
      { now: 10, insts: { a: { phase: 'done', ...onNew(0), health: ['healthy', NEW, 5], relapses: 1 }, b: {} } }, 'running', 'a:done b:pending', []],
    ['… and once it has been healthy for the deadline, the next one is taken',
      { now: 70, insts: { a: { phase: 'done', ...onNew(0), health: ['healthy', NEW, 5], relapses: 1 }, b: {} } }, 'running', 'a:done b:leaving', ['hold b']],
    ['a done instance unhealthy on the new body within the deadline: waited for (a blip)',
      { now: 20, insts: { a: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 15] }, b: {} } }, 'running', 'a:done b:pending', []],
    ['a revert blocked by an instance down outside it (nothing in flight) for over the deadline: ends failed, the pending one left as it is',
      { state: 'reverting', now: 80, insts: { a: { target: OLD, ...onNew(0) }, b: { phase: 'done', target: OLD, health: ['unhealthy', OLD, 5] } } }, 'failed', 'a:pending@old b:done@old', ['finish failed']],
    ['a revert blocked the same way within the deadline: waits',
      { state: 'reverting', now: 30, insts: { a: { target: OLD, ...onNew(0) }, b: { phase: 'done', target: OLD, health: ['unhealthy', OLD, 5] } } }, 'reverting', 'a:pending@old b:done@old', []],
    ['a done instance unhealthy on the OLD body (a revert running) does not fail the revert',
      { state: 'reverting', insts: { a: { phase: 'done', target: OLD, health: ['unhealthy', OLD, 5] }, b: { phase: 'done', target: OLD } } }, 'failed', 'a:done@old b:done@old', ['finish failed']],
    ['no revision to revert to: finish failed', { revertTo: false, now: 61, insts: { b: checkingLate() } }, 'failed', 'b:failed', ['release b', 'finish failed']],
    ['failure with another one still restarting: it finishes before the rollout ends',
      { autoRevert: false, max: 2, now: 61, insts: { a: { phase: 'starting', startedAt: 60, held: true, lb: ['out'], record: { hash: NEW, targetState: 'launched' }, states: [['inactive', OLD]] }, b: checkingLate() } },
      'running', 'a:starting b:failed', ['release b']],
    ['revert: a leaving instance still on the old body is released and done',
      { max: 2, now: 61, insts: { a: { phase: 'leaving', held: true }, b: checkingLate() } },
      'reverting', 'a:done@old b:stopping@old', ['release a', 'set b loaded new']],
    ['revert: a pending instance DOWN on the revert body stays pending (restarted later), not done',
      { now: 61, insts: { a: checkingLate(), b: { health: ['unhealthy', OLD, 0], lb: ['out'] } } },
      'reverting', 'a:stopping@old b:pending@old', ['set a loaded new']],
    ['reverting: a pending instance healthy on the revert body needs nothing',
      { state: 'reverting', insts: { a: { phase: 'leaving', held: true, target: OLD, record: { hash: NEW, targetState: 'launched' } }, b: { target: OLD } } },
      'reverting', 'a:leaving@old b:done@old', []],
    ['the revert itself fails: finish failed, no revert of the revert',
      { state: 'reverting', now: 61, insts: { a: checkingLate({ target: OLD, ...{ states: [['active', OLD, 1]], health: ['unhealthy', OLD, 1] } }) } },
      'failed', 'a:failed@old', ['release a', 'finish failed']],
    ['reverting, everything done: finish failed, nothing marked healthy',
      { state: 'reverting', insts: { a: { phase: 'done', target: OLD, error: 'x' }, b: { phase: 'done', target: OLD } } },
      'failed', 'a:done@old b:done@old', ['finish failed']],
    ['pause: no new instance starts', { control: pause, insts: { a: {}, b: {} } }, 'paused', 'a:pending b:pending', []],
    ['paused: the instance in flight carries on',
      { state: 'paused', control: pause, applied: pause, insts: { a: { phase: 'leaving', held: true, lb: ['out'] }, b: {} } },
      'paused', 'a:stopping b:pending', ['set a loaded old']],
    ['resume: starts again', { state: 'paused', control: resume, applied: pause, insts: { a: {} } }, 'running', 'a:leaving', ['hold a']],
    ['abort: leaving ones released, in flight ones carry on',
      { max: 2, control: abort, insts: { a: { phase: 'leaving', held: true }, b: { phase: 'stopping', held: true, lb: ['out'], record: { hash: OLD, targetState: 'loaded' } }, c: {} } },
      'running', 'a:pending b:stopping c:pending', ['release a']],
    ['abort with nothing in flight: finish aborted', { control: abort, insts: { a: { phase: 'done', ...onNew(0) }, b: {} } }, 'aborted', 'a:done b:pending', ['finish aborted']],
    ['an abort stays in force after a resume', { control: resume, applied: abort, insts: { a: {} } }, 'aborted', 'a:pending', ['finish aborted']],
    ['a control older than the rollout is ignored', { control: { command: 'abort', by: 'ops', at: at(-60) }, insts: { a: {} } }, 'running', 'a:leaving', ['hold a']],
    ['abort during a failure with auto-revert: no revert, finish failed',
      { control: abort, now: 61, insts: { a: checkingLate() } }, 'failed', 'a:failed', ['release a', 'finish failed']],
    ['an instance destroyed meanwhile, stopped and no longer healthy, is done with a note, its hold released',
      { insts: { a: { phase: 'checking', held: true, record: null, states: [], health: null }, b: { phase: 'done', ...onNew(0) } } }, 'succeeded', 'a:done b:done', ['release a', 'mark-healthy 2', 'finish succeeded']],
    ['an instance destroyed meanwhile that still runs stays held until it stops (the balancer must not take it back)',
      { insts: { a: { phase: 'checking', held: true, ...onNew(0), record: null }, b: { phase: 'done', ...onNew(0) } } }, 'running', 'a:checking b:done', []],
    ['every instance destroyed: succeeded, but nothing proven, so nothing marked healthy',
      { insts: { a: { phase: 'stopping', record: null }, b: { inView: false } } }, 'succeeded', 'a:done b:done', ['finish succeeded']],
    ['a destroyed instance does not use the budget',
      { insts: { a: {}, b: { phase: 'done', record: null, health: ['unhealthy', NEW, 5] } } }, 'running', 'a:leaving b:done', ['hold a']],
    ['an instance missing from the view is done', { insts: { a: { phase: 'leaving', inView: false }, b: {} } }, 'running', 'a:done b:leaving', ['hold b']],
    ['an instance not in the record is left alone', { insts: { a: {}, z: { inRecord: false, health: ['unhealthy', OLD, 0] } } }, 'running', 'a:leaving', ['hold a']],
    ['a finished record: archive it again', { state: 'succeeded', insts: { a: { phase: 'done', ...onNew(0) } } }, 'succeeded', 'a:done', ['mark-healthy 2', 'finish succeeded']],
  ])('%s', (_d, setup, state, phases, actions) => {
    const out = run(setup);
    expect(out.state).toBe(state);
    expect(out.phases).toBe(phases);
    expect(out.actions).toEqual(actions);
  });
});

describe('nextSteps: pre-pull (the target body pulls an image)', () => {
  const failedPull: Inst = { phase: 'pulling', since: 5, pullAsked: NEW, pull: ['failed', NEW, 'podman pull x: exit 125: manifest unknown'] };
  it.each<[string, Setup, string, string, string[]]>([
    ['pending: pulling first, still in the balancer; its host is asked to pull the target body',
      { prePull: true, insts: { a: {}, b: {} } }, 'running', 'a:pulling b:pending', ['pull a new']],
    ['pulling, asked, no report yet: wait, nothing repeated', { prePull: true, insts: { a: { phase: 'pulling', pullAsked: NEW } } }, 'running', 'a:pulling', []],
    ['pulling, the ask lost (schedule rewritten): ask again', { prePull: true, insts: { a: { phase: 'pulling', pull: ['pulling', NEW] } } }, 'running', 'a:pulling', ['pull a new']],
    ['pulling, still pulling: wait', { prePull: true, insts: { a: { phase: 'pulling', pullAsked: NEW, pull: ['pulling', NEW] } } }, 'running', 'a:pulling', []],
    ['pulling, a report about another body does not count', { prePull: true, insts: { a: { phase: 'pulling', pullAsked: NEW, pull: ['pulled', OLD] } } }, 'running', 'a:pulling', []],
    ['pulled: only now it leaves the balancer', { prePull: true, insts: { a: { phase: 'pulling', pullAsked: NEW, pull: ['pulled', NEW] } } }, 'running', 'a:leaving', ['hold a']],
    ['nothing to pull in that body: leaves at once', { prePull: true, insts: { a: { phase: 'pulling', pullAsked: NEW, pull: ['none', NEW] } } }, 'running', 'a:leaving', ['hold a']],
    ['pulled, no presence: straight to stopping', { prePull: true, presence: false, insts: { a: { phase: 'pulling', pullAsked: NEW, pull: ['pulled', NEW] } } }, 'running', 'a:stopping', ['set a loaded old']],
    ['down (not active anywhere): nothing to pull ahead on, goes on',
      { prePull: true, presence: false, insts: { a: { states: [['inactive', OLD]] } } }, 'running', 'a:starting', ['set a launched new']],
    ['pulling counts against the budget: the next one waits', { prePull: true, insts: { a: { phase: 'pulling', pullAsked: NEW }, b: {} } }, 'running', 'a:pulling b:pending', []],
    ['pull failed: the instance fails with the runtime\'s message; reverted untouched (still serving), others go back',
      { prePull: true, insts: { a: failedPull, b: { phase: 'done', ...onNew(0) } } }, 'reverting', 'a:done@old b:pulling@old', ['pull b old']],
    ['pull failed, no auto-revert: finish failed with the message', { prePull: true, autoRevert: false, insts: { a: failedPull } }, 'failed', 'a:failed', ['finish failed']],
    ['no report by the deadline: failed', { prePull: true, now: 70, insts: { a: { phase: 'pulling', since: 5, pullAsked: NEW } } }, 'failed', 'a:done@old', ['finish failed']],
    ['abort while pulling: back to pending, untouched', { prePull: true, control: abort, insts: { a: { phase: 'pulling', pullAsked: NEW } } }, 'aborted', 'a:pending', ['finish aborted']],
    ['a held instance entering pulling is released (it serves while pulling)', { prePull: true, insts: { a: { held: true } } }, 'running', 'a:pulling', ['release a', 'pull a new']],
  ])('%s', (_d, setup, state, phases, actions) => {
    const out = run(setup);
    expect(out.state).toBe(state);
    expect(out.phases).toBe(phases);
    expect(out.actions).toEqual(actions);
  });

  it('a failed pull puts the registry\'s message into the error and the rollout message', () => {
    const step = nextSteps(build({ prePull: true, autoRevert: false, insts: { a: failedPull } }));
    expect(step.rollout.instances['a.service']!.error).toBe('image pull failed on machine m1: podman pull x: exit 125: manifest unknown');
    expect(step.rollout.message).toContain('manifest unknown');
  });

  it('wakes at the pull deadline', () => {
    const step = nextSteps(build({ prePull: true, insts: { a: { phase: 'pulling', since: 5, pullAsked: NEW } } }));
    expect(step.wakeAt).toBe(T0 + 5_000 + 60_000 + 1);
  });
});

/** A surge instance serving: healthy on the new body, released, in the balancer. */
const surgeServing = (extra: Inst = {}): Inst => ({ surge: true, phase: 'serving', ...onNew(0), ...extra });
/** A surge instance the scheduler could not place: no state, no health, no presence status. */
const unplaced = (extra: Inst = {}): Inst => ({
  surge: true, phase: 'starting', startedAt: 0, held: true, record: { hash: NEW, targetState: 'launched' }, states: [], health: null, lb: null, ...extra,
});

describe('nextSteps: surge instances', () => {
  it.each<[string, Setup, string, string, string[]]>([
    ['a serving surge instance lets a second old instance go',
      { surge: 1, insts: { a: { phase: 'leaving', held: true }, b: {}, s: surgeServing() } }, 'running', 'a:leaving b:leaving s:serving', ['hold b']],
    ['a surge instance still checking gives nothing yet',
      { surge: 1, insts: { a: { phase: 'leaving', held: true }, b: {}, s: { surge: true, phase: 'checking', startedAt: 5, held: true, lb: ['out'], ...onNew(9) } } },
      'running', 'a:leaving b:pending s:checking', []],
    ['a healthy surge instance not yet in the balancer gives nothing',
      { surge: 1, insts: { a: { phase: 'leaving', held: true }, b: {}, s: surgeServing({ lb: ['out'] }) } }, 'running', 'a:leaving b:pending s:serving', []],
    ['a serving surge instance that turned unhealthy gives nothing',
      { surge: 1, insts: { a: { phase: 'leaving', held: true }, b: {}, s: surgeServing({ health: ['unhealthy', NEW, 5] }) } }, 'running', 'a:leaving b:pending s:serving', []],
    ['surge checking healthy long enough: joining (released)',
      { surge: 1, insts: { a: {}, s: { surge: true, phase: 'checking', startedAt: 0, held: true, lb: ['out'], ...onNew(1) } } },
      'running', 'a:leaving s:joining', ['release s', 'hold a']],
    ['surge joined the balancer: serving, and the budget widens in the same step',
      { surge: 1, insts: { a: { phase: 'leaving', held: true }, b: {}, s: { surge: true, phase: 'joining', ...onNew(1) } } },
      'running', 'a:leaving b:leaving s:serving', ['hold b']],
    ['surge without presence: checking -> serving, not done',
      { surge: 1, presence: false, insts: { a: { phase: 'stopping', record: { hash: OLD, targetState: 'loaded' } }, b: {}, s: { surge: true, phase: 'checking', startedAt: 0, ...onNew(1) } } },
      'running', 'a:stopping b:stopping s:serving', ['set b loaded old']],
    ['an unplaceable surge instance past the deadline is given up, the rollout goes on',
      { surge: 1, now: 61, insts: { a: { phase: 'leaving', since: 30, held: true }, b: {}, s: unplaced() } }, 'running', 'a:leaving b:pending s:removing', ['destroy s']],
    ['an unplaceable surge instance before the deadline: waited for',
      { surge: 1, now: 30, insts: { a: { phase: 'leaving', held: true }, s: unplaced() } }, 'running', 'a:leaving s:starting', []],
    ['a surge instance failed on the target body: retired, nothing fails, no revert',
      { surge: 1, insts: { a: { phase: 'leaving', held: true }, s: unplaced({ states: [['failed', NEW, 6]], lb: ['out'] }) } },
      'running', 'a:leaving s:removing', ['destroy s']],
    ['every regular instance done: the surge instance is held out first',
      { surge: 1, insts: { a: { phase: 'done', ...onNew(0) }, s: surgeServing() } }, 'running', 'a:done s:retiring', ['hold s']],
    ['retiring, balancer still sending: wait', { surge: 1, insts: { a: { phase: 'done', ...onNew(0) }, s: surgeServing({ phase: 'retiring', held: true }) } }, 'running', 'a:done s:retiring', []],
    ['retiring, sessions open within the drain timeout: wait',
      { surge: 1, insts: { a: { phase: 'done', ...onNew(0) }, s: surgeServing({ phase: 'retiring', since: 5, held: true, lb: ['draining', 2] }) } }, 'running', 'a:done s:retiring', []],
    ['retiring, drained: destroy it',
      { surge: 1, insts: { a: { phase: 'done', ...onNew(0) }, s: surgeServing({ phase: 'retiring', since: 5, held: true, lb: ['draining', 0] }) } }, 'running', 'a:done s:removing', ['destroy s']],
    ['retiring past the drain timeout: destroy it',
      { surge: 1, now: 20, insts: { a: { phase: 'done', ...onNew(0) }, s: surgeServing({ phase: 'retiring', since: 5, held: true, lb: ['draining', 2] }) } }, 'running', 'a:done s:removing', ['destroy s']],
    ['removing, record still there: destroy again (lost action)',
      { surge: 1, insts: { a: { phase: 'done', ...onNew(0) }, s: surgeServing({ phase: 'removing', held: true, lb: ['out'] }) } }, 'running', 'a:done s:removing', ['destroy s']],
    ['removing, record gone but the instance still runs: held, waited for',
      { surge: 1, insts: { a: { phase: 'done', ...onNew(0) }, s: surgeServing({ phase: 'removing', held: true, record: null, lb: ['out'] }) } }, 'running', 'a:done s:removing', []],
    ['removing, record gone, stopped, health gone: done and released, the rollout succeeds',
      { surge: 1, insts: { a: { phase: 'done', ...onNew(0) }, s: { surge: true, phase: 'removing', held: true, record: null, states: [], health: null, lb: ['out'] } } },
      'succeeded', 'a:done s:done', ['release s', 'mark-healthy 2', 'finish succeeded']],
    ['removing, record gone: done, the rollout succeeds',
      { surge: 1, insts: { a: { phase: 'done', ...onNew(0) }, s: { surge: true, phase: 'removing', record: null, inView: false } } }, 'succeeded', 'a:done s:done', ['mark-healthy 2', 'finish succeeded']],
    ['without presence the surge instance is destroyed at once',
      { surge: 1, presence: false, insts: { a: { phase: 'done', ...onNew(0) }, s: surgeServing() } }, 'running', 'a:done s:removing', ['destroy s']],
    ['end: one regular instance down, the surge covers it: retired within the budget',
      { surge: 1, insts: { a: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 5] }, b: { phase: 'done', ...onNew(0) }, s: surgeServing() } },
      'running', 'a:done b:done s:retiring', ['hold s']],
    ['end: more regular instances down than the budget: the serving surge instance waits',
      { surge: 1, insts: { a: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 5] }, b: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 5] }, s: surgeServing() } },
      'running', 'a:done b:done s:serving', []],
    ['failure without revert: the surge instance is retired, the rollout waits for it',
      { surge: 1, autoRevert: false, now: 61, insts: { a: checkingLate(), s: surgeServing() } }, 'running', 'a:failed s:retiring', ['release a', 'hold s']],
    ['failure without revert, surge gone: finish failed',
      { surge: 1, autoRevert: false, now: 61, insts: { a: checkingLate(), s: { surge: true, phase: 'removing', record: null, inView: false } } }, 'failed', 'a:failed s:done', ['release a', 'finish failed']],
    ['abort: the surge instance is retired even with instances down left untouched',
      { surge: 1, control: abort, insts: { a: { health: ['unhealthy', OLD, 0], lb: ['out'] }, b: { health: ['unhealthy', OLD, 0], lb: ['out'] }, s: surgeServing() } },
      'running', 'a:pending b:pending s:retiring', ['hold s']],
    ['revert: the surge instance keeps serving (not rolled back) and widens the revert\'s budget too',
      { surge: 1, now: 61, insts: { a: checkingLate(), b: { phase: 'done', ...onNew(0) }, s: surgeServing() } }, 'reverting', 'a:stopping@old b:leaving@old s:serving', ['set a loaded new', 'hold b']],
    ['revert done: the surge instance is retired, then the rollout ends reverted',
      { surge: 1, state: 'reverting', insts: { a: { phase: 'done', target: OLD, error: 'x' }, s: surgeServing() } }, 'reverting', 'a:done@old s:retiring', ['hold s']],
    ['paused with instances pending: the surge instance keeps serving',
      { surge: 1, state: 'paused', control: pause, applied: pause, insts: { a: { phase: 'done', ...onNew(0) }, b: {}, s: surgeServing() } }, 'paused', 'a:done b:pending s:serving', []],
  ])('%s', (_d, setup, state, phases, actions) => {
    const out = run(setup);
    expect(out.state).toBe(state);
    expect(out.phases).toBe(phases);
    expect(out.actions).toEqual(actions);
  });

  it('a phase stuck past its deadline says what it waited for; while waiting, the message says it and the controller wakes at the deadline', () => {
    const stuck = nextSteps(build({ autoRevert: false, now: 61, insts: { a: { phase: 'leaving', held: true, lb: null } } }));
    expect(stuck.rollout.instances['a.service']?.error).toMatch(/waiting for the load balancer to take it out \(presence status none; is the presence syncer running\?\): still waiting 60000 ms after it entered leaving/);
    expect(stuck.rollout.message).toMatch(/a\.service: waiting for the load balancer/);
    const waiting = nextSteps(build({ now: 30, insts: { a: { phase: 'leaving', since: 5, held: true, lb: null }, b: {} } }));
    expect(waiting.rollout.message).toMatch(/in flight: a\.service leaving \(waiting for the load balancer to take it out \(presence status none; is the presence syncer running\?\)\)/);
    expect(waiting.wakeAt).toBe(T0 + 5_000 + 60_000 + 1);
  });

  it('a surge instance given up keeps why in its note and sets no error', () => {
    const step = nextSteps(build({ surge: 1, now: 61, insts: { a: { phase: 'leaving', since: 30, held: true }, s: unplaced() } }));
    const s = step.rollout.instances['s.service'];
    expect(s?.error).toBeUndefined();
    expect(s?.note).toMatch(/surge instance given up: not active 60000 ms after start/);
    expect(step.rollout.message).toMatch(/surge: s.service removing/);
  });
});

describe('nextSteps: the record it returns', () => {
  it('stamps since and updatedAt with now, and startedAt on entering starting', () => {
    const step = nextSteps(build({ presence: false, now: 42, insts: { a: { states: [['inactive', OLD]] } } }));
    expect(step.rollout.instances['a.service']).toMatchObject({ phase: 'starting', since: at(42), startedAt: at(42) });
    expect(step.rollout.updatedAt).toBe(at(42));
    expect(step.changed).toBe(true);
  });

  it('returns the same record, unchanged, when nothing moved', () => {
    const v = build({ insts: { a: { phase: 'leaving', held: true } } });
    const first = nextSteps(v);
    const second = nextSteps({ ...v, rollout: first.rollout, now: v.now + 5000 });
    expect(second.changed).toBe(false);
    expect(second.rollout).toBe(first.rollout);
    expect(second.actions).toEqual([]);
  });

  it('explains a failure in the message and the instance error', () => {
    const step = nextSteps(build({ autoRevert: false, now: 61, insts: { b: checkingLate() } }));
    expect(step.rollout.instances['b.service']?.error).toMatch(/not healthy long enough 60000 ms after start \(health unhealthy/);
    expect(step.rollout.message).toMatch(/auto-revert is off/);
    expect(step.rollout.finishedAt).toBe(at(61));
  });

  it('says when the budget is used up by instances down outside the rollout', () => {
    const step = nextSteps(build({ insts: { a: {}, b: { phase: 'done', ...onNew(0), health: ['unhealthy', NEW, 5] } } }));
    expect(step.rollout.message).toMatch(/waiting: 1 instance\(s\) down outside the rollout/);
  });

  it('does not modify the view it was given', () => {
    const v = build({ insts: { a: {}, b: {} } });
    const copy = structuredClone(v);
    nextSteps(v);
    expect(v).toEqual(copy);
  });
});
