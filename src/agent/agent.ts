/**
 * The host agent: fleet's reconcile loop around the pure planner.
 *
 *   pass = desired() → current() → planTasks() → runTasks()
 *
 * A pass runs when something may have changed: a schedule key, a managed
 * unit's state, the etcd watch or the D-Bus connection coming back, a failed
 * pass's retry, and a slow resync timer (safety net: it re-reads systemd,
 * not etcd, whose schedule is watched and re-listed after any break; so an
 * idle host sends etcd only its keepalives). Event-driven: a pass
 * starts PASS_DEBOUNCE_MS after the watch delivers a change (gathering the
 * rest of the engine's burst); passes never overlap, and
 * changes that arrive during a pass collapse into one more pass after it.
 * Kicks from systemd's own signals wait UNIT_KICK_DELAY_MS, so a unit that
 * something keeps starting against its target cannot spin the loop.
 *
 * Safety rules:
 *  - no pass while the schedule watch is not live (etcd unreachable or not
 *    listed yet): the last known desired state may be stale, and acting on
 *    it could stop workloads. Units keep running; systemd keeps them alive.
 *  - after a lost lease, no pass until the schedule was listed again after
 *    re-registering (fleet #1289): nothing is stopped on a view from before
 *    the outage. The engine, for its part, leaves a machine's units in place
 *    while it re-registers after an etcd outage (engine/absence.ts).
 *  - passes run in a PassLoop (registry/pass-loop.ts): never two at once, a
 *    failed pass retried with backoff and jitter (250 ms … 5 s).
 *  - current() reads what the host has, so a restarted agent whose files and
 *    states already match plans nothing and disturbs nothing.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { HealthMonitor } from '../health/monitor.js';
import type { Probe } from '../health/probes.js';
import { ServiceChecks } from '../health/services.js';
import type { Keyspace } from '../registry/keys.js';
import type { ScheduleRecord } from '../registry/records.js';
import type { ErrorContext } from '../registry/errors.js';
import { PassLoop } from '../registry/pass-loop.js';
import { PrefixWatch } from '../registry/watch.js';
import { SecretFiles, type SecretSyncReport } from '../secrets/files.js';
import { SecretStore, type SecretValues } from '../secrets/store.js';
import type { Systemd, UnitStatus } from '../systemd/types.js';
import { readCurrent, RUNTIME_DIR } from './current.js';
import { LaunchMemory } from './launched.js';
import type { Identity } from './identity.js';
import { planTasks } from './plan.js';
import { PrePuller } from './prepull.js';
import { Registration } from './registration.js';
import { StateReporter } from './reporter.js';
import { runTasks, type RunOutcome } from './run.js';
import { BodyCache, desiredFrom, ScheduleSource } from './schedule.js';
import { isRunning, type CurrentUnit, type DesiredUnit, type Task } from './types.js';
import { sleep, StopSignal } from './util.js';

/**
 * How long a pass asked for by a systemd signal waits. Schedule changes
 * start a pass at once; a unit desired `loaded` that something (a
 * dependency, a timer, an operator) keeps starting is stopped at most twice
 * a second, as with the 500 ms floor passes used to have.
 */
const UNIT_KICK_DELAY_MS = 500;

/**
 * The longest a pass waits after the first schedule change, so that the
 * keys the engine writes in one pass (several transactions of ≤ 100
 * operations, arriving over some 25 ms) are carried out by one pass rather
 * than one batch now and the rest after that whole pass.
 */
const PASS_DEBOUNCE_MS = 30;

/**
 * A pass starts once the schedule watch has been quiet this long (at most
 * PASS_DEBOUNCE_MS after the first change): the engine's transactions of one
 * burst arrive a few ms apart, while a unit started alone need not wait out
 * the whole debounce (it was 30 ms of a ~65 ms path to systemd active).
 */
const SCHEDULE_SETTLE_MS = 8;

export type AgentState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface PassReport {
  /** why the pass did nothing, when it did nothing on purpose */
  skipped?: 'etcd-unavailable' | 'schedule-not-relisted';
  tasks: Task[];
  outcome?: RunOutcome;
  /** how long the pass took (reconcile passes; not purge) */
  durationMs?: number;
}

export interface AgentEvents {
  state: [AgentState];
  pass: [PassReport];
  task: [Task];
  registered: [leaseId: string];
  leaseLost: [err: unknown];
  etcd: [live: boolean];
  problem: [msg: string, err: unknown];
  /** a pass changed secret files, or found units whose secrets are missing (names only, never values) */
  secrets: [SecretSyncReport];
}

export interface AgentOptions {
  client: Etcd3;
  systemd: Systemd;
  keys: Keyspace;
  identity: Identity;
  version: string;
  /** lease TTL in seconds (default 10) */
  ttlSec?: number;
  /** slow safety-net pass that re-reads systemd (default 60 s; etcd is not polled) */
  resyncMs?: number;
  /** least time between passes (default 0: the next pass starts as soon as a change asks for it) */
  minPassIntervalMs?: number;
  /** wait after a schedule change before the pass starts, to gather a burst (default PASS_DEBOUNCE_MS) */
  passDebounceMs?: number;
  /** where runtime enablement links live (default /run/systemd/system) */
  runtimeDir?: string;
  /** how long stop() may spend writing the last state records (default 2 s) */
  flushOnStopMs?: number;
  now?: () => Date;
  /** runs one health check (default: the real http/tcp/command probes) */
  probe?: Probe;
  /** for error messages about secrets (endpoints, user) */
  connection?: ErrorContext;
  /** where units' secret env files go (default /run/fleetx/secrets) */
  secretsDir?: string;
  /** where secret values come from (default: etcd, src/secrets/store.ts) */
  secrets?: SecretValues;
}

export class Agent extends EventEmitter<AgentEvents> {
  private agentState: AgentState = 'new';
  private readonly stopSignal = new StopSignal();
  private readonly schedule: ScheduleSource;
  private readonly bodies: BodyCache;
  private readonly registration: Registration;
  private readonly reporter: StateReporter;
  private readonly health: HealthMonitor;
  private readonly services: ServiceChecks;
  private readonly secretFiles: SecretFiles;
  /** secret records ({p}/secret/): a change (rotation, rm) means a pass rewrites env files */
  private readonly secretIndex: PrefixWatch;
  private readonly launched = new LaunchMemory();
  private readonly prepull: PrePuller;
  private readonly loops: Promise<void>[] = [];
  private readonly unsubscribe: Array<() => void> = [];
  private desiredNow = new Map<string, DesiredUnit>();
  private readonly passes: PassLoop;
  private registrations = 0;
  /** a burst of schedule changes being gathered (scheduleChanged) */
  private settle: { firstAt: number; timer: NodeJS.Timeout } | undefined;
  /** after a re-registration: passes wait until the schedule was listed more often than this */
  private relistedAfter = 0;

  constructor(private readonly o: AgentOptions) {
    super();
    const now = o.now ?? (() => new Date());
    const problem = (msg: string, err?: unknown) => this.emit('problem', msg, err);
    this.bodies = new BodyCache(o.client, o.keys);
    this.schedule = new ScheduleSource(o.client, o.keys, o.identity.id, {
      changed: () => this.scheduleChanged(),
      connection: (live) => {
        this.emit('etcd', live);
        if (!live) return;
        this.registration.retryNow();
        this.kick();
      },
      problem,
    });
    this.passes = new PassLoop(async () => ((await this.pass()) ? 'ok' : 'retry'), {
      minIntervalMs: o.minPassIntervalMs ?? 0,
      debounceMs: o.passDebounceMs ?? PASS_DEBOUNCE_MS,
      backoff: { initialMs: 250, maxMs: 5000 },
    });
    this.registration = new Registration(o.client, o.keys, o.identity, { ttlSec: o.ttlSec ?? 10, version: o.version, startedAt: now().toISOString() }, {
      registered: (id) => {
        if (this.registrations++ > 0) {
          // the lease was lost: act only on a schedule listed from now on
          this.relistedAfter = this.schedule.lists;
          this.schedule.resync();
        }
        this.reporter.rewriteAll();
        this.health.rewriteAll();
        this.emit('registered', id);
      },
      lost: (err) => this.emit('leaseLost', err),
      problem,
    });
    this.reporter = new StateReporter({
      machineId: o.identity.id,
      keys: o.keys,
      sink: this.registration,
      now,
      onError: problem,
    });
    this.prepull = new PrePuller({ report: (unit, r) => this.reporter.setPull(unit, r), now });
    // health of this machine's instances, written under the same lease as the states
    this.health = new HealthMonitor({
      machineId: o.identity.id,
      keys: o.keys,
      sink: this.registration,
      now,
      ...(o.probe ? { probe: o.probe } : {}),
      onError: problem,
    });
    const connection = o.connection ?? { endpoints: ['etcd'], requestTimeoutMs: 5000, prefix: o.keys.prefix };
    this.secretFiles = new SecretFiles(o.secrets ?? new SecretStore(o.client, o.keys, connection), o.secretsDir);
    this.secretIndex = new PrefixWatch(o.client, { prefix: o.keys.secrets() }, {
      replace: () => this.kick(),
      event: () => this.kick(),
      problem: (msg, err) => problem(`secrets index: ${msg}`, err),
    }, { list: 'revision' });
    this.services = new ServiceChecks(
      o.client,
      o.keys,
      { previous: (r) => this.health.seed(r), changed: (c) => this.health.setServices(c), problem },
      1000,
      o.identity.id,
    );
  }

  get state(): AgentState {
    return this.agentState;
  }

  /** Starts the loops and returns at once; progress is reported through events. */
  start(): void {
    if (this.agentState !== 'new') throw new Error(`agent already ${this.agentState}`);
    this.setState('starting');
    const stop = this.stopSignal;
    this.unsubscribe.push(
      this.o.systemd.onUnitChange((s) => this.onUnitChange(s)),
      this.o.systemd.onReconnect(() => this.kick()),
    );
    this.loops.push(
      this.registration.run(stop),
      this.registration.watchMeta(),
      this.schedule.start(),
      this.secretIndex.start(),
      this.resyncLoop(),
      this.services.start().catch((e) => void this.emit('problem', 'watching services failed', e)),
    );
    this.setState('running');
  }

  /**
   * Stops every loop and waits for them. Default: units keep running and the
   * lease is left to expire (a restarting agent takes over before the TTL).
   * purge: stop and remove every fleetx unit on this host, then revoke the
   * lease so the machine and its states disappear at once (fleet's way).
   */
  async stop(opts: { purge?: boolean } = {}): Promise<void> {
    if (this.agentState === 'stopped' || this.agentState === 'stopping') return;
    this.setState('stopping');
    this.stopSignal.stop();
    clearTimeout(this.settle?.timer);
    for (const off of this.unsubscribe) off();
    await Promise.allSettled([...this.loops, this.passes.stop(), this.schedule.stop(), this.secretIndex.stop(), this.registration.stopWatchingMeta()]);
    await Promise.allSettled([this.services.stop(), this.health.stop(), this.prepull.stop()]);
    if (opts.purge) {
      await this.purge();
      await this.registration.revoke().catch((e) => this.emit('problem', 'revoking the lease failed', e));
    } else {
      // last states out if etcd is there; never hold up an exit for it
      await Promise.race([Promise.all([this.reporter.flush(), this.health.flush()]), sleep(this.o.flushOnStopMs ?? 2000)]);
      this.registration.release();
    }
    this.reporter.close();
    this.health.close();
    this.setState('stopped');
  }

  /** The units fleetx manages here, counted by systemd active state ('unknown' before systemd said). */
  unitStates(): ReadonlyMap<string, number> {
    return this.reporter.countByState();
  }

  /** Asks for a pass soon (coalesced with any pending one). */
  kick(): void {
    this.passes.kick('kick');
  }

  /** A schedule change: the pass starts when the burst has settled (SCHEDULE_SETTLE_MS), at most the debounce after its first change. */
  private scheduleChanged(): void {
    const now = performance.now();
    const firstAt = this.settle?.firstAt ?? now;
    clearTimeout(this.settle?.timer);
    const due = Math.min(now + SCHEDULE_SETTLE_MS, firstAt + (this.o.passDebounceMs ?? PASS_DEBOUNCE_MS));
    const timer = setTimeout(() => {
      this.settle = undefined;
      this.passes.kick('schedule changed', 0);
    }, Math.max(0, due - now));
    this.settle = { firstAt, timer };
  }

  private setState(s: AgentState): void {
    this.agentState = s;
    this.emit('state', s);
  }

  private onUnitChange(s: UnitStatus): void {
    if (!this.reporter.isManaged(s.name)) return;
    this.reporter.observe(s);
    this.health.observe(s);
    // A launched unit that stops is systemd's business (see launched.ts); a
    // unit that must only be loaded but was started must be stopped again.
    const want = this.desiredNow.get(s.name);
    if (want?.targetState === 'loaded' && isRunning(s.activeState)) this.passes.kick('a unit desired loaded is running', UNIT_KICK_DELAY_MS);
  }

  private async resyncLoop(): Promise<void> {
    const stop = this.stopSignal;
    while (!stop.stopped) {
      await sleep(this.o.resyncMs ?? 60_000, stop);
      if (stop.stopped) break;
      this.kick();
    }
  }

  /** One reconcile pass. Returns false when it failed (and should be retried). */
  private async pass(): Promise<boolean> {
    const t0 = performance.now();
    const ms = () => performance.now() - t0;
    if (!this.schedule.isLive) {
      this.emit('pass', { skipped: 'etcd-unavailable', tasks: [] });
      return true; // the watch reconnecting kicks the next pass
    }
    if (this.schedule.lists <= this.relistedAfter) {
      this.emit('pass', { skipped: 'schedule-not-relisted', tasks: [] });
      return true; // the list kicks the next pass
    }
    let tasks: Task[] = [];
    try {
      const records = this.schedule.snapshot();
      const live = records.filter((r) => r.targetState !== 'inactive');
      await this.bodies.fetch([...live.map((r) => r.hash), ...nextHashes(live)]);
      const desired = desiredFrom(records, (h) => this.bodies.get(h));
      const scheduled = [...desired.values()].filter((d) => d.targetState !== 'inactive').map((d) => d.name);
      const { current, foreign } = await readCurrent(this.o.systemd, scheduled, (t) => this.bodies.hashOfText(t), this.o.runtimeDir ?? RUNTIME_DIR);
      for (const name of foreign) {
        this.emit('problem', `${name} is scheduled here but a unit file not written by fleetx is in the way; leaving it alone`, undefined);
        desired.set(name, { ...desired.get(name)!, available: false });
      }
      this.desiredNow = desired;
      this.reporter.setManaged(managedHashes(current));
      this.health.setManaged(managedHashes(current));
      for (const c of current.values()) {
        if (c.fileHash === undefined) continue;
        this.reporter.observe(statusOf(c));
        this.health.observe(statusOf(c));
      }

      // a rollout's next body: its image is pulled now, beside the pass (prepull.ts)
      this.prepull.sync(live.filter((r) => r.next !== undefined && r.targetState === 'launched' && this.reporter.isManaged(r.name))
        .map((r) => ({ unit: r.name, hash: r.next!, text: this.bodies.get(r.next!)?.text })));

      await this.syncSecrets(desired);
      this.launched.annotate(desired, current);
      tasks = planTasks(desired, current);
      const outcome = await runTasks(tasks, { systemd: this.o.systemd, bodyOf: (h) => this.bodies.get(h)?.text }, (t) => {
        if (t.type === 'write-file') {
          this.reporter.manage(t.unit, t.hash);
          this.health.manage(t.unit, t.hash);
        }
        if (t.type === 'remove-file') {
          this.reporter.unmanage(t.unit);
          this.health.unmanage(t.unit);
        }
        this.launched.record(t, desired);
        this.emit('task', t);
      });
      // a job systemd ran but that did not succeed still counts as launched: the
      // failure is reported through the unit's state, not retried every pass
      for (const f of outcome.failures) if (f.error.kind === 'failed') this.launched.record(f.task, desired);
      await this.refreshStatuses(tasks);
      this.bodies.retainOnly([...[...desired.values()].map((d) => d.hash), ...nextHashes(live)]);
      this.emit('pass', { tasks, outcome, durationMs: ms() });
      return outcome.failed === undefined;
    } catch (e) {
      this.emit('problem', 'reconcile pass failed', e);
      this.emit('pass', { tasks, durationMs: ms() });
      return false;
    }
  }

  /**
   * Secret env files before any start of this pass. A failed read of the
   * values keeps the files as they are and lets the pass go on: units that
   * already have their file start, the others fail to start and say why.
   */
  private async syncSecrets(desired: ReadonlyMap<string, DesiredUnit>): Promise<void> {
    const units = [...desired.values()]
      .filter((d) => d.targetState !== 'inactive')
      .map((d) => ({ name: d.name, text: d.available ? this.bodies.get(d.hash)?.text : undefined }));
    try {
      const report = await this.secretFiles.sync(units);
      if (report.written.length + report.removed.length + report.missing.length + report.invalid.length > 0) this.emit('secrets', report);
    } catch (e) {
      this.emit('problem', 'reading secrets failed; secret files left as they are', e);
    }
  }

  /** Signals may race with our own jobs; read the touched units once more. */
  private async refreshStatuses(tasks: Task[]): Promise<void> {
    const names = [...new Set(tasks.flatMap((t) => ('unit' in t ? [t.unit] : [])))].filter((n) => this.reporter.isManaged(n));
    if (names.length === 0) return;
    for (const s of await this.o.systemd.listUnits(names)) {
      this.reporter.observe(s);
      this.health.observe(s);
    }
  }

  /** fleet's --purge behaviour: stop and remove everything fleetx put on this host. */
  private async purge(): Promise<void> {
    try {
      const { current } = await readCurrent(this.o.systemd, [], (t) => this.bodies.hashOfText(t), this.o.runtimeDir ?? RUNTIME_DIR);
      this.reporter.setManaged(managedHashes(current)); // even if no pass ran yet: their records get deleted
      this.health.setManaged(managedHashes(current));
      const tasks = planTasks(new Map(), current);
      const outcome = await runTasks(tasks, { systemd: this.o.systemd, bodyOf: () => undefined }, (t) => {
        if (t.type === 'remove-file') {
          this.reporter.unmanage(t.unit);
          this.health.unmanage(t.unit);
        }
        this.emit('task', t);
      });
      this.emit('pass', { tasks, outcome });
    } catch (e) {
      this.emit('problem', 'purging units failed', e);
    }
    await Promise.all([this.reporter.flush(), this.health.flush()]);
  }
}

function nextHashes(records: readonly ScheduleRecord[]): string[] {
  return records.flatMap((r) => (r.next !== undefined ? [r.next] : []));
}

function managedHashes(current: ReadonlyMap<string, CurrentUnit>): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of current.values()) if (c.fileHash !== undefined) out.set(c.name, c.fileHash);
  return out;
}

function statusOf(c: CurrentUnit): UnitStatus {
  const s: UnitStatus = { name: c.name, loadState: c.loadState, activeState: c.activeState, subState: c.subState };
  if (c.mainPid !== undefined) s.mainPid = c.mainPid;
  return s;
}
