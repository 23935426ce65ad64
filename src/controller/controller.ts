/**
 * The rollout controller: the thin loop that carries rollouts forward. It
 * runs beside the engine and works only while the engine leads:
 *
 *   engine ──elected(fence)──► session: watches + tick ──coalesced triggers──►
 *     pass = read rollouts ─► read instances ─► nextSteps (pure) ─► planWrites (pure) ─► commit (fenced)
 *
 * Nothing lives in memory across passes: a new leader (or a restarted one)
 * continues from etcd. A failed write is retried by a later pass; a lost
 * fence ends the session until the engine is elected again.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { FleetxError, isFleetxError } from '../errors/errors.js';
import { isFencedOut, type Fence } from '../registry/fence.js';
import { ChangeFeed, describeChange, type Change } from '../registry/changes.js';
import { PassLoop, type PassOutcome } from '../registry/pass-loop.js';
import { toFleetxError, type ErrorContext } from '../registry/errors.js';
import { keyspace, lastSegment, type Keyspace } from '../registry/keys.js';
import { nextSteps } from '../rollout/plan.js';
import type { RolloutAction, RolloutRecord } from '../rollout/types.js';
import { ControllerStore, rolloutControls } from './store.js';
import { buildView, Decoder, type Reports, type RolloutDetails, type RolloutEntry } from './view.js';
import { planWrites, type WriteOp } from './writes.js';

export type ControllerState = 'stopped' | 'standby' | 'active';

/** What the controller needs of the engine: its term and when it starts and ends. */
export interface LeaderEvents {
  elected: [fence: Fence];
  deposed: [fence: Fence, reason: string];
}
export interface LeaderSource {
  readonly fence: Fence | undefined;
  on(event: 'elected', listener: (...args: LeaderEvents['elected']) => void): unknown;
  on(event: 'deposed', listener: (...args: LeaderEvents['deposed']) => void): unknown;
  off(event: 'elected', listener: (...args: LeaderEvents['elected']) => void): unknown;
  off(event: 'deposed', listener: (...args: LeaderEvents['deposed']) => void): unknown;
}

/** What one pass did to one rollout. */
export interface StepReport {
  service: string;
  id: string;
  /** the record's state after the step */
  state: RolloutRecord['state'];
  actions: RolloutAction[];
  writes: WriteOp[];
  transactions: number;
  /** actions that had nothing to act on (e.g. a unit destroyed meanwhile) */
  skipped: string[];
  finished: boolean;
  /** the record before and after the step (metrics read phase times from them) */
  previous: RolloutRecord;
  record: RolloutRecord;
}

export interface ControllerPassReport {
  triggers: string[];
  /** rollout records seen */
  rollouts: number;
  /** instances of the rollouts still running after the pass (their reports are watched) */
  instances: string[];
  steps: StepReport[];
  /** etcd requests the pass made */
  requests: number;
  durationMs: number;
  /** records that could not be decoded and were ignored */
  problems: string[];
  /** ms since the epoch: when the earliest time limit of a running rollout passes (the next pass is due then at the latest) */
  wakeAt?: number;
  /**
   * rollouts whose step failed alone: a record changed since the read
   * ('conflict'), or a bug ('internal'); retried by the next pass while the
   * other rollouts move on
   */
  failures: { service: string; error: FleetxError }[];
}

export interface ControllerEvents {
  state: [state: ControllerState];
  pass: [report: ControllerPassReport];
  step: [step: StepReport];
  finished: [record: RolloutRecord];
  /** something failed and will be retried; never fatal */
  warning: [error: FleetxError];
}

export interface ControllerOptions {
  client: Etcd3;
  keys?: Keyspace;
  /** the engine (or anything with its elected/deposed events and current fence) */
  engine: LeaderSource;
  /** ms since the epoch (default Date.now) */
  now?: () => number;
  /** pass interval while a rollout runs, for time-based conditions, ms (default 250) */
  tickMs?: number;
  /** coalescing window for watch events, ms (default 40) */
  debounceMs?: number;
  /** pause before retrying a failed pass, ms (default 500) */
  retryMs?: number;
  /** deadline of each etcd call, ms (default 5 000) */
  callTimeoutMs?: number;
  /** the connection, so etcd errors read like the CLI's */
  connection?: ErrorContext;
}

export class RolloutController extends EventEmitter<ControllerEvents> {
  private readonly keys: Keyspace;
  private readonly store: ControllerStore;
  private readonly now: () => number;
  private session: Session | undefined;
  private transitions: Promise<void> = Promise.resolve();
  private current: ControllerState = 'stopped';
  private reported = new Set<string>();
  private readonly onElected = (fence: Fence) => this.transition(() => this.begin(fence));
  private readonly onDeposed = (fence: Fence) =>
    this.transition(async () => {
      if (this.session?.fence === fence) await this.end();
    });

  constructor(private readonly opts: ControllerOptions) {
    super();
    this.keys = opts.keys ?? keyspace();
    const ctx = opts.connection;
    this.store = new ControllerStore(opts.client, this.keys, opts.callTimeoutMs, ctx && ((e) => toFleetxError(e, ctx)));
    this.now = opts.now ?? Date.now;
  }

  get state(): ControllerState {
    return this.current;
  }

  /** etcd requests made by passes so far */
  get requests(): number {
    return this.store.requests;
  }

  /** Follows the engine's leadership; starts a session at once if it already leads. */
  start(): void {
    if (this.current !== 'stopped') return;
    this.setState('standby');
    this.opts.engine.on('elected', this.onElected);
    this.opts.engine.on('deposed', this.onDeposed);
    const fence = this.opts.engine.fence;
    if (fence !== undefined) this.transition(() => this.begin(fence));
  }

  /** Stops following the engine and waits for a running pass to end. */
  async stop(): Promise<void> {
    this.opts.engine.off('elected', this.onElected);
    this.opts.engine.off('deposed', this.onDeposed);
    this.transition(() => this.end());
    await this.transitions;
    this.setState('stopped');
  }

  /**
   * One pass with `fence` now. Exposed for tests and tools; throws FencedOutError or 'unavailable'.
   * `deadlineFloor`: when the controller last regained sight of etcd (RolloutView.deadlineFloor).
   */
  async passOnce(fence: Fence, triggers: string[] = ['manual'], deadlineFloor?: number): Promise<ControllerPassReport> {
    const t0 = Date.now();
    const store = this.store.metered();
    const decoder = new Decoder();
    const raw = await store.readRollouts(fence);
    const entries = decoder.rollouts(raw.rollouts, raw.controls);
    const steps: StepReport[] = [];
    const failures: ControllerPassReport['failures'] = [];
    let wakeAt: number | undefined;
    if (entries.length > 0) {
      const read = await store.readDetails(fence, entries);
      const reports = decoder.reports(read, this.keys.schedules());
      const now = this.now();
      for (const [i, entry] of entries.entries()) {
        const details = decoder.details(read.details[i]!, this.keys.presenceHolds(entry.service));
        try {
          const { report: s, wakeAt: wake } = await this.step(store, fence, entry, details, reports, now, deadlineFloor);
          if (s !== undefined) steps.push(s);
          if (wake !== undefined) wakeAt = Math.min(wake, wakeAt ?? wake);
        } catch (e) {
          // a lost term or etcd gone ends the pass; anything else is this rollout's own problem
          if (isFencedOut(e) || (isFleetxError(e) && e.kind === 'unavailable')) throw e;
          const error = isFleetxError(e) ? e : new FleetxError('internal', `rollout controller: step of ${entry.service} failed: ${String(e)}`, { cause: e });
          failures.push({ service: entry.service, error });
        }
      }
    }
    // a corrupt record is reported once, not on every tick
    for (const p of decoder.problems) if (!this.reported.has(p)) this.emit('warning', new FleetxError('internal', `rollout controller: ${p}`));
    this.reported = new Set(decoder.problems);
    const finished = new Set(steps.filter((s) => s.finished).map((s) => s.service));
    const report: ControllerPassReport = {
      triggers,
      rollouts: entries.length,
      instances: entries.filter((e) => !finished.has(e.service)).flatMap((e) => Object.keys(e.rollout.value.instances)),
      steps,
      requests: store.requests,
      durationMs: Date.now() - t0,
      problems: decoder.problems,
      failures,
      ...(wakeAt !== undefined ? { wakeAt } : {}),
    };
    return report;
  }

  private async step(store: ControllerStore, fence: Fence, entry: RolloutEntry, details: RolloutDetails, reports: Reports, now: number, deadlineFloor?: number): Promise<{ report?: StepReport; wakeAt?: number }> {
    const view = buildView(entry, details, reports, now, deadlineFloor);
    const step = nextSteps(view);
    const wake = step.wakeAt !== undefined ? { wakeAt: step.wakeAt } : {};
    if (step.changed === false && step.actions.length === 0) return wake;
    const plan = planWrites({ keys: this.keys, entry, details, view, step, now: new Date(now).toISOString(), placements: reports.placements });
    await store.commit(fence, this.keys.rollout(entry.service), entry.rollout.modRevision, plan.batches);
    const report: StepReport = {
      service: entry.service,
      id: step.rollout.id,
      state: step.rollout.state,
      actions: step.actions,
      writes: plan.batches.flatMap((b) => b.ops),
      transactions: plan.batches.length,
      skipped: plan.skipped,
      finished: plan.finished !== undefined,
      previous: entry.rollout.value,
      record: step.rollout,
    };
    this.emit('step', report);
    if (plan.finished !== undefined) this.emit('finished', plan.finished);
    return { report, ...wake };
  }

  /** @internal one pass of a session, never throwing */
  async runPass(session: Session, triggers: string[]): Promise<PassOutcome> {
    // The first pass after failed ones (etcd unreachable, no quorum): deadlines count from now.
    if (session.blind) {
      session.sightSince = this.now();
      session.blind = false;
    }
    try {
      const report = await this.passOnce(session.fence, triggers, session.sightSince);
      this.emit('pass', report);
      for (const f of report.failures) this.emit('warning', f.error);
      session.after(report.rollouts > report.steps.filter((s) => s.finished).length, report.instances, report.wakeAt);
      return report.failures.length > 0 ? 'retry' : 'ok';
    } catch (e) {
      if (isFencedOut(e)) {
        this.emit('warning', e);
        // this term is over: stand by until the engine is elected again
        this.transition(async () => {
          if (this.session === session) await this.end();
        });
        return 'stop';
      }
      const err = isFleetxError(e) ? e : new FleetxError('internal', `rollout controller pass failed: ${String(e)}`, { cause: e });
      this.emit('warning', err);
      session.blind = true;
      session.after(true); // keep the tick: the retry must not wait for an event
      return 'retry';
    }
  }

  /** @internal */
  get settings() {
    return {
      client: this.opts.client,
      prefixes: [this.keys.rollouts(), rolloutControls(this.keys)],
      // what instances report; watched only while a rollout exists
      detailPrefixes: [
        this.keys.units(),
        this.keys.states(),
        this.keys.healths(),
        this.keys.presenceStatuses('').slice(0, -1),
        this.keys.presenceHolds('').slice(0, -1),
      ],
      debounceMs: this.opts.debounceMs ?? 40,
      // a safety net: time limits wake the session exactly (Session.after)
      tickMs: this.opts.tickMs ?? 2000,
      now: this.now,
      retryMs: this.opts.retryMs ?? 500,
    };
  }

  private async begin(fence: Fence): Promise<void> {
    await this.end();
    if (this.current === 'stopped' || this.opts.engine.fence !== fence) return;
    this.session = new Session(this, fence);
    this.session.start();
    this.setState('active');
  }

  private async end(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await s?.stop();
    if (this.current === 'active') this.setState('standby');
  }

  private transition(step: () => Promise<void>): void {
    this.transitions = this.transitions.then(step).catch((e: unknown) => {
      this.emit('warning', new FleetxError('internal', `rollout controller transition failed: ${String(e)}`, { cause: e }));
    });
  }

  private setState(s: ControllerState): void {
    if (this.current === s) return;
    this.current = s;
    this.emit('state', s);
  }
}

/**
 * One leadership term: watches on rollouts and control commands always,
 * watches on what instances report only while some rollout exists, and a
 * tick while one runs (minimum healthy time, deadlines and drain timeouts
 * pass without any event).
 */
/** The earliest a time limit may wake a session: never a hot loop, even on a limit that just passed. */
const MIN_WAKE_MS = 10;

class Session {
  private readonly runner: PassLoop;
  private readonly watches: ChangeFeed;
  private detail: ChangeFeed | undefined;
  private tick: NodeJS.Timeout | undefined;
  private tickDue = 0;
  private stopped = false;
  private relevant = new Set<string>();
  /** When this term last regained sight of etcd: its start, or its first good pass after failed ones. */
  sightSince: number;
  /** A pass failed; the next one resets sightSince. */
  blind = false;

  constructor(
    private readonly controller: RolloutController,
    readonly fence: Fence,
  ) {
    const s = controller.settings;
    this.sightSince = s.now();
    this.runner = new PassLoop((reasons) => controller.runPass(this, reasons), { debounceMs: s.debounceMs, backoff: backoffOf(s.retryMs) });
    this.watches = this.watch(s.prefixes);
  }

  start(): void {
    // watches are in place (each from its list's revision + 1) before the first pass reads
    void this.watches.start().then(() => this.runner.kick('elected', 0));
  }

  /**
   * After a pass: whether some rollout still runs (then instance watches and
   * the tick are needed) and which instances it rolls (events about other
   * units do not trigger passes).
   */
  after(running: boolean, instances?: string[], wakeAt?: number): void {
    if (this.stopped) return;
    if (instances !== undefined) this.relevant = new Set(instances);
    if (!running) {
      const d = this.detail;
      this.detail = undefined;
      void d?.stop();
      return;
    }
    if (this.detail === undefined) {
      this.detail = this.watch(this.controller.settings.detailPrefixes, (c) => this.matters(c));
      void this.detail.start().then(() => this.runner.kick('instance watches opened', 0));
    }
    // the next time limit (minimum healthy time, deadline, drain timeout), else the safety tick
    const now = this.controller.settings.now();
    const due = Math.min(now + this.controller.settings.tickMs, wakeAt !== undefined ? Math.max(wakeAt, now + MIN_WAKE_MS) : Infinity);
    if (this.tick !== undefined && this.tickDue <= due) return;
    if (this.tick !== undefined) clearTimeout(this.tick);
    this.tickDue = due;
    this.tick = setTimeout(() => {
      this.tick = undefined;
      this.runner.kick(due - now < this.controller.settings.tickMs ? 'a time limit passed' : 'tick', 0);
    }, due - now);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.tick !== undefined) clearTimeout(this.tick);
    this.tick = undefined;
    await Promise.all([this.watches.stop(), this.detail?.stop()]);
    await this.runner.stop();
  }

  /** State, health and unit keys end with the unit name; a re-list may have missed anything. */
  private matters(c: Change): boolean {
    return c.type === 'listed' || this.relevant.has(lastSegment(c.key));
  }

  private watch(prefixes: string[], filter: (c: Change) => boolean = () => true): ChangeFeed {
    const s = this.controller.settings;
    return new ChangeFeed(
      s.client,
      prefixes,
      (c) => filter(c) && this.runner.kick(describeChange(c)),
      (why, e) => this.controller.emit('warning', new FleetxError('unavailable', `rollout controller: ${why}`, { cause: e })),
      { backoff: backoffOf(s.retryMs) },
    );
  }
}

/** Retries start at retryMs and grow, with jitter, to at most 10 s. */
function backoffOf(retryMs: number) {
  return { initialMs: retryMs, maxMs: Math.max(retryMs, 10_000) };
}
