/**
 * The engine: runs in every agent process; the elected one turns desired
 * state (units) and live machines into per-machine schedule keys.
 *
 *   election  ──elected(fence)──►  leader session: watches + resync timer
 *                                        │ coalesced triggers
 *                                        ▼
 *             pass = readView ─► bodies ─► planPass (pure) ─► apply (fenced)
 *
 * Everything a pass writes or reads is fenced on the leader key's term, so
 * a deposed leader whose pass is still in flight is refused by etcd; when
 * that happens the pass asks the election to re-check and the session ends.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { FleetxError, isFleetxError } from '../errors/errors.js';
import { toFleetxError, type ErrorContext } from '../registry/errors.js';
import { keyspace, type Keyspace } from '../registry/keys.js';
import { schedule as defaultSchedule } from '../scheduler/schedule.js';
import { parseXFleet } from '../unit/xfleet.js';
import { XFleetCache, type XFleetParser } from './bodies.js';
import { Election, type ElectionState } from './election.js';
import { isFencedOut, type Fence } from '../registry/fence.js';
import { MachineAbsence } from './absence.js';
import { planPass, type EngineOp, type ScheduleFn } from './plan.js';
import { EngineStore, type ApplyHooks } from './store.js';
import { decodeView, type RawView } from './view.js';
import type { ViewCache } from './view-cache.js';
import { ViewFeed } from './view-feed.js';
import { PassLoop, type PassOutcome } from '../registry/pass-loop.js';

export type EngineState = ElectionState;

/** What one leader pass did and cost. */
export interface PassReport {
  /** etcd revision the pass read at (from the cache: the highest its watches and writes reached) */
  revision: string;
  /** where the view came from: the term's watches ('cache') or one fenced read of everything ('read') */
  view: 'cache' | 'read';
  /** what triggered it (coalesced watch events, resync, retry ...) */
  triggers: string[];
  ops: EngineOp[];
  /** etcd requests the pass made: 1 read + body reads + write transactions */
  requests: number;
  bodiesFetched: number;
  transactions: number;
  durationMs: number;
  /** where the time went: the view (read and decode, or from the cache), body reads, planning (the scheduler), writes */
  phasesMs: { view: number; bodies: number; plan: number; write: number };
  /** records that could not be decoded and were skipped */
  problems: string[];
  /** machines without a record whose units were left in place (see absence.ts) */
  held: string[];
  /** ms until the earliest hold ends: a pass is due then */
  recheckInMs?: number;
}

export interface EngineEvents {
  state: [state: EngineState];
  elected: [fence: Fence];
  deposed: [fence: Fence, reason: string];
  pass: [report: PassReport];
  /** something failed and will be retried; never fatal */
  warning: [error: FleetxError];
}

export interface EngineOptions {
  client: Etcd3;
  /** this machine's id (the leader key's value when it leads) */
  machineId: string;
  keys?: Keyspace;
  /** TTL of the election lease, s (default 10) */
  leaseTtlSeconds?: number;
  /**
   * how long a machine whose record vanished keeps its units, counted from
   * when this leader term first saw it missing, ms (default 0: a dead
   * host's units move once its lease expired). See absence.ts.
   */
  machineGraceMs?: number;
  /**
   * how long after this engine was itself cut off from etcd a vanished
   * machine keeps its units, ms (default 2 × lease TTL): after an etcd
   * outage every lease lapses together and agents re-register within this
   * (fleet #1289). See absence.ts.
   */
  disruptionGraceMs?: number;
  /**
   * wait after the first watch event before a pass starts, ms (default 0:
   * the pass starts at once, with the events of the same watch message;
   * events that arrive while it runs make one more pass right after it,
   * so a burst costs at most one pass more than it would with a wait)
   */
  debounceMs?: number;
  /**
   * full pass even without events, ms (default 0: none). Passes follow the
   * watches, which re-list after any disconnection, error or compaction;
   * a timer would make an idle cluster read the whole state from etcd.
   */
  resyncMs?: number;
  /** first pause before retrying a failed pass or campaign, ms (default 1 000); it grows with jitter while failures go on */
  retryMs?: number;
  /** safety-net re-check of the leader key, ms (default 0: none; the key is watched) */
  electionPollMs?: number;
  /** deadline of each etcd call, ms (default 5 000) */
  callTimeoutMs?: number;
  /** the connection, so etcd errors read like the CLI's (endpoints, auth hints) */
  connection?: ErrorContext;
  schedule?: ScheduleFn;
  parseXFleet?: XFleetParser;
  now?: () => Date;
}

export class Engine extends EventEmitter<EngineEvents> {
  private readonly keys: Keyspace;
  private readonly election: Election;
  private readonly store: EngineStore;
  private readonly cache: XFleetCache;
  private session: LeaderSession | undefined;
  /** elected/deposed handling, serialized so sessions never overlap */
  private transitions: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(private readonly opts: EngineOptions) {
    super();
    this.keys = opts.keys ?? keyspace();
    const ctx = opts.connection;
    this.store = new EngineStore(opts.client, this.keys, opts.callTimeoutMs, ctx && ((e) => toFleetxError(e, ctx)));
    this.cache = new XFleetCache(opts.parseXFleet ?? parseXFleet);
    this.election = new Election({
      client: opts.client,
      key: this.keys.leader(),
      id: opts.machineId,
      ttlSeconds: opts.leaseTtlSeconds,
      pollMs: opts.electionPollMs,
      retryMs: opts.retryMs,
      callTimeoutMs: opts.callTimeoutMs,
    });
    this.election.on('state', (s) => this.emit('state', s));
    this.election.on('warning', (e) => this.emit('warning', e));
    this.election.on('elected', (fence) => {
      this.transition(async () => {
        await this.endSession();
        if (this.stopping || this.election.leaderFence !== fence) return;
        this.session = new LeaderSession(this, fence);
        this.session.start();
        this.emit('elected', fence);
      });
    });
    this.election.on('deposed', (fence, reason) => {
      this.transition(async () => {
        if (this.session?.fence === fence) await this.endSession();
        this.emit('deposed', fence, reason);
      });
    });
  }

  get state(): EngineState {
    return this.election.state;
  }

  get machineId(): string {
    return this.opts.machineId;
  }

  /** The current term while leader. */
  get fence(): Fence | undefined {
    return this.session?.fence;
  }

  /** etcd requests this engine has made for passes (the election's own are not counted). */
  get requests(): number {
    return this.store.requests;
  }

  start(): void {
    this.election.start();
  }

  /** Stops passes (waiting for a running one), resigns leadership and revokes the lease. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.transitions;
    await this.endSession();
    await this.election.stop();
    await this.transitions;
  }

  /**
   * Runs one pass with `fence` now and reports it. Exposed for tests and
   * tools; throws FencedOutError, 'unavailable', or 'conflict' (a write's
   * guard failed: the view was behind). `absence` carries the hold clocks of
   * one term (absence.ts; default: a fresh one). With a term's `cache`
   * (view-cache.ts) once it is ready, the pass plans from it and guards
   * each write on the mod revisions of the units it concerns; without, it
   * reads everything in one fenced transaction (a snapshot: no guards).
   */
  async passOnce(fence: Fence, triggers: string[] = ['manual'], absence = new MachineAbsence(this.settings.grace), cache?: ViewCache): Promise<PassReport> {
    const t0 = Date.now();
    const before = this.store.requests;
    const cached = cache?.ready === true ? cache : undefined;
    const raw = cached ? cached.raw() : await this.store.readView(fence);
    const { view, problems } = decodeView(this.keys, raw);
    const tView = Date.now();
    const active = view.units.filter((u) => u.targetState !== 'inactive');
    const missing = this.cache.missing(active);
    let bodiesFetched = 0;
    if (missing.length > 0) {
      const bodies = await this.store.readBodies(fence, missing);
      for (const [hash, text] of bodies) this.cache.addBody(hash, text);
      bodiesFetched = bodies.size;
    }
    const now = (this.opts.now ?? (() => new Date()))().toISOString();
    // wall clock on both sides: troubleAt is Date.now() too
    const { held, nextExpiryMs } = absence.observe(new Set(view.machines.map((m) => m.id)), view.schedules.map((p) => p.machine), Date.now(), this.election.troubleAt);
    const tBodies = Date.now();
    const ops = planPass({ view, xfleet: this.cache.lookup(active), now, held }, this.opts.schedule ?? defaultSchedule);
    const tPlan = Date.now();
    const transactions = ops.length > 0 ? await this.store.apply(fence, ops, this.writeHooks(raw, cache, cached !== undefined)) : 0;
    this.cache.prune(view.units);
    return {
      revision: raw.revision,
      triggers,
      view: cached ? 'cache' : 'read',
      ops,
      requests: this.store.requests - before,
      bodiesFetched,
      transactions,
      durationMs: Date.now() - t0,
      phasesMs: { view: tView - t0, bodies: tBodies - tView, plan: tPlan - tBodies, write: Date.now() - tPlan },
      problems,
      held: [...held].sort(),
      ...(nextExpiryMs !== undefined ? { recheckInMs: nextExpiryMs } : {}),
    };
  }

  /**
   * Writes planned from a cached view are guarded on the mod revision the
   * view has for every unit their operations concern (0: absent), so a
   * plan made from a unit record that changed since (a watch a few events
   * behind) is refused (a full read is a snapshot: no guards). Every
   * committed transaction is recorded in the term's cache, so the next pass
   * sees its own writes before their watch events arrive.
   */
  private writeHooks(raw: RawView, cache: ViewCache | undefined, guarded: boolean): ApplyHooks {
    const mods = new Map(raw.units.map((kv) => [kv.key, kv.modRevision ?? '0']));
    return {
      ...(guarded ? {
        guards: (part: readonly EngineOp[]) => [...new Set(part.map(unitOf))].map((name) => {
          const key = this.keys.unit(name);
          return { key, modRevision: mods.get(key) ?? '0' };
        }),
      } : {}),
      ...(cache ? { committed: (part: readonly EngineOp[], revision: string) => cache.wrote(part.map((op) => this.store.written(op)), revision) } : {}),
    };
  }

  /** @internal used by LeaderSession */
  runPass(fence: Fence, triggers: string[], absence: MachineAbsence, recheck: (ms: number, why?: string) => void, feed?: ViewFeed): Promise<PassOutcome> {
    return this.passOnce(fence, triggers, absence, feed?.cache).then(
      (report) => {
        this.emit('pass', report);
        if (report.recheckInMs !== undefined) recheck(report.recheckInMs);
        return 'ok' as const;
      },
      (e: unknown) => {
        if (isFencedOut(e)) {
          this.emit('warning', e);
          this.election.recheck();
          return 'stop' as const;
        }
        if (feed !== undefined && isFleetxError(e) && e.kind === 'conflict') {
          // the view was behind (or wrong): list everything again; the re-lists
          // kick the next pass. The timer is only a safety net: at once
          // (debounceMs is 0) the next pass would plan from the same stale
          // view while the lists are out, and be refused again, in a loop.
          feed.resync();
          recheck(this.settings.retryMs, 'a write was refused: a unit changed since the view');
          return 'ok' as const;
        }
        this.emit('warning', isFleetxError(e) ? e : new FleetxError('internal', `engine pass failed: ${String(e)}`, { cause: e }));
        return 'retry' as const;
      },
    );
  }

  /** @internal */
  get settings() {
    return {
      client: this.opts.client,
      keys: this.keys,
      debounceMs: this.opts.debounceMs ?? 0,
      resyncMs: this.opts.resyncMs ?? 0,
      retryMs: this.opts.retryMs ?? 1000,
      grace: {
        graceMs: this.opts.machineGraceMs ?? 0,
        disruptionGraceMs: this.opts.disruptionGraceMs ?? 2 * (this.opts.leaseTtlSeconds ?? 10) * 1000,
      },
    };
  }

  private transition(step: () => Promise<void>): void {
    this.transitions = this.transitions.then(step).catch((e: unknown) => {
      this.emit('warning', new FleetxError('internal', `engine transition failed: ${String(e)}`, { cause: e }));
    });
  }

  private async endSession(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await s?.stop();
  }
}

/**
 * A pass during which 100 or more changes came (a bulk command still
 * submitting) is followed by one that waits until the changes pause for
 * 50 ms, 2 s at most: one pass over the rest of the burst rather than one
 * per pass length. Each pass that writes to a machine is one more round of
 * work for its agent, and each pass plans the whole cluster: 10,000 units
 * submitted over 6 s made four passes instead of three ("scale",
 * docs/BENCHMARKS.md). A single change still starts a pass at once.
 */
const BURST_SETTLE = { afterKicks: 100, quietMs: 50, maxMs: 2000 };

/** One leadership term: watches (feeding the view cache), the resync timer and the pass loop. */
class LeaderSession {
  private readonly runner: PassLoop;
  private readonly watches: ViewFeed;
  private resync: NodeJS.Timeout | undefined;

  constructor(
    private readonly engine: Engine,
    readonly fence: Fence,
  ) {
    const s = engine.settings;
    const backoff = { initialMs: s.retryMs, maxMs: Math.max(s.retryMs, 10_000) };
    // hold clocks start afresh with each term (absence.ts)
    const absence = new MachineAbsence(s.grace);
    const recheck = (ms: number, why = 'hold of a missing machine ends') => this.runner.kick(why, ms + 1);
    this.runner = new PassLoop((reasons) => engine.runPass(fence, reasons, absence, recheck, this.watches), { debounceMs: s.debounceMs, backoff, settle: BURST_SETTLE });
    this.watches = new ViewFeed(
      s.client,
      s.keys,
      (reason) => this.runner.kick(reason),
      (why, e) => engine.emit('warning', new FleetxError('unavailable', `engine: ${why}`, { cause: e })),
      { backoff },
    );
  }

  start(): void {
    // watches are in place (each from its list's revision + 1) before the first pass reads
    void this.watches.start().then(() => this.runner.kick('elected', 0));
    const every = this.engine.settings.resyncMs;
    if (every > 0) this.resync = setInterval(() => this.runner.kick('periodic resync'), every);
  }

  async stop(): Promise<void> {
    if (this.resync !== undefined) clearInterval(this.resync);
    await this.watches.stop();
    await this.runner.stop();
  }
}

/** The unit an operation concerns. */
function unitOf(op: EngineOp): string {
  return op.type === 'put-schedule' || op.type === 'put-unschedulable' ? op.record.name : op.name;
}
