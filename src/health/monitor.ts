/**
 * The agent's health side: one tracker (tracker.ts) per unit fleetx manages
 * on this machine, fed by systemd's change signals and by check results, and
 * the writer of {p}/health/{machine}/{unit} (under the machine's lease,
 * through the same sink as state records).
 *
 * - A unit named as an instance of a service's template (app@3.service for
 *   app@.service) gets that service's check; any other unit gets type
 *   'none' (healthy while active). Nothing is tracked or written until the
 *   services are listed: a missing list must never read as healthy, and
 *   writing 'unknown' meanwhile would pull healthy instances out of the load
 *   balancer on every agent restart. Records left by the previous agent
 *   process (seed()) are taken over for instances that did not restart.
 * - A check runs every intervalMs while the unit is running, one at a time
 *   per instance (the next starts intervalMs after the previous started, or
 *   at once when it overran); the timeout is capped by the interval.
 * - Records are written only when they say something new (status, since,
 *   hash, message), coalesced, retried after a failed write; rewriteAll()
 *   after a new lease. A unit that leaves the machine has its record deleted.
 */
import { DirtyWriter, type RecordSink } from '../registry/dirty-writer.js';
import type { Keyspace } from '../registry/keys.js';
import type { HealthCheck } from '../service/types.js';
import { templateOf } from '../unit/name.js';
import { runProbe, type Probe } from './probes.js';
import { startTracking, step, wantsChecks, type HealthInput, type TrackerState } from './tracker.js';
import type { HealthRecord } from './types.js';

/** Where records go: put under the machine's lease; put throws while there is none. */
/** Health records go out like state records: several in one transaction (registry/dirty-writer.ts). */
export type HealthSink = RecordSink;

/** The part of a systemd unit status health needs. */
export interface UnitSignal {
  name: string;
  activeState: string;
  mainPid?: number;
}

/** Checks by template unit name (app@.service); undefined: the service exists but its check is unusable. */
export type ChecksByTemplate = ReadonlyMap<string, HealthCheck | undefined>;

export const NO_CHECK: HealthCheck = { type: 'none', intervalMs: 1000, timeoutMs: 1000, threshold: 1, failureThreshold: 1 };

export interface HealthMonitorOptions {
  machineId: string;
  keys: Keyspace;
  sink: HealthSink;
  now: () => Date;
  probe?: Probe;
  /** how long to gather changes before writing (default 20 ms) */
  coalesceMs?: number;
  /** after a failed write (default 1 s) */
  retryMs?: number;
  onError?: (msg: string, err: unknown) => void;
}

interface Runner {
  check: HealthCheck;
  timer?: NodeJS.Timeout;
  inflight?: Promise<void>;
}

export class HealthMonitor {
  private checks?: ChecksByTemplate;
  private readonly hashes = new Map<string, string>();
  /** records found in etcd at start, by unit; each is used once */
  private readonly previous = new Map<string, HealthRecord>();
  private readonly statuses = new Map<string, UnitSignal>();
  private readonly trackers = new Map<string, TrackerState>();
  private readonly runners = new Map<string, Runner>();
  /** latest record per unit; a dirty name without a record is deleted */
  private readonly records = new Map<string, HealthRecord>();
  private readonly writer: DirtyWriter;
  private readonly abort = new AbortController();
  private stopped = false;

  constructor(private readonly o: HealthMonitorOptions) {
    this.writer = new DirtyWriter({
      write: (name) => this.writeSome([name]),
      writeBatch: (names) => this.writeSome(names),
      coalesceMs: o.coalesceMs ?? 20,
      retryMs: o.retryMs ?? 1000,
      onError: (name, err) => o.onError?.(`writing the health of ${name} failed; retrying until it works`, err),
    });
  }

  /** Records this machine had in etcd before this process started; call before the first setServices(). */
  seed(records: readonly HealthRecord[]): void {
    for (const r of records) if (r.machine === this.o.machineId) this.previous.set(r.unit, r);
  }

  /** The services' checks (a full replacement, from the service watch). */
  setServices(checks: ChecksByTemplate): void {
    const first = this.checks === undefined;
    this.checks = checks;
    for (const name of [...this.trackers.keys()]) this.apply(name, { type: 'configure', at: this.at(), check: this.checkFor(name) });
    if (first) for (const name of [...this.hashes.keys()]) this.update(name);
  }

  /** The units fleetx manages here and their file hashes (as for state records). */
  setManaged(hashes: ReadonlyMap<string, string>): void {
    for (const name of [...this.hashes.keys()]) if (!hashes.has(name)) this.unmanage(name);
    for (const [name, hash] of hashes) this.manage(name, hash);
  }

  manage(name: string, hash: string): void {
    if (this.hashes.get(name) === hash) return;
    this.hashes.set(name, hash);
    this.update(name);
  }

  unmanage(name: string): void {
    if (!this.hashes.delete(name)) return;
    this.statuses.delete(name);
    this.trackers.delete(name);
    this.stopRunner(name);
    this.records.delete(name);
    this.markDirty(name);
  }

  /** A systemd status for any unit; ignored unless fleetx manages it. */
  observe(s: UnitSignal): void {
    if (!this.hashes.has(s.name)) return;
    const prev = this.statuses.get(s.name);
    if (prev && prev.activeState === s.activeState && prev.mainPid === s.mainPid) return;
    this.statuses.set(s.name, { name: s.name, activeState: s.activeState, ...(s.mainPid !== undefined ? { mainPid: s.mainPid } : {}) });
    this.update(s.name);
  }

  /** The record currently published (or to be) for a unit. */
  recordFor(name: string): HealthRecord | undefined {
    return this.records.get(name);
  }

  /** After a new lease: every record must be written again. */
  rewriteAll(): void {
    for (const name of this.records.keys()) this.markDirty(name);
  }

  /** Writes pending records now; errors are reported, not thrown. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Stops every check (running ones are aborted) and waits for them; records can still be flushed. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    const inflight: Promise<void>[] = [];
    for (const r of this.runners.values()) {
      if (r.timer) clearTimeout(r.timer);
      if (r.inflight) inflight.push(r.inflight);
    }
    this.runners.clear();
    await Promise.allSettled(inflight);
  }

  /** No more writes (after stop() and the last flush). */
  close(): void {
    this.writer.close();
  }

  private at(): number {
    return this.o.now().getTime();
  }

  private checkFor(name: string): HealthCheck | undefined {
    if (!this.checks) return undefined;
    const t = templateOf(name);
    if (t !== undefined && this.checks.has(t)) return this.checks.get(t);
    return NO_CHECK;
  }

  private update(name: string): void {
    const hash = this.hashes.get(name);
    const s = this.statuses.get(name);
    if (hash === undefined || s === undefined) return; // written once systemd reports a status
    if (this.checks === undefined) return; // tracked once the services are known
    const t = this.trackers.get(name);
    const obs = { hash, activeState: s.activeState, ...(s.mainPid !== undefined ? { mainPid: s.mainPid } : {}) };
    if (!t) {
      const previous = this.previous.get(name);
      this.previous.delete(name);
      const r = startTracking({ unit: name, machine: this.o.machineId, check: this.checkFor(name), at: this.at(), ...obs, ...(previous ? { previous } : {}) });
      this.took(name, r.state, r.record);
    } else {
      this.apply(name, { type: 'unit', at: this.at(), ...obs });
    }
  }

  private apply(name: string, input: HealthInput): void {
    const t = this.trackers.get(name);
    if (!t) return;
    const r = step(t, input);
    this.took(name, r.state, r.record);
  }

  private took(name: string, state: TrackerState, record: HealthRecord | undefined): void {
    this.trackers.set(name, state);
    if (record) {
      this.records.set(name, record);
      this.markDirty(name);
    }
    this.syncRunner(name, state);
  }

  /** Starts, keeps or stops the checks of one instance to match its tracker. */
  private syncRunner(name: string, s: TrackerState): void {
    const current = this.runners.get(name);
    if (this.stopped || !wantsChecks(s)) {
      if (current) this.stopRunner(name);
      return;
    }
    const check = s.check!;
    if (current && JSON.stringify(current.check) === JSON.stringify(check)) return;
    if (current) this.stopRunner(name);
    const runner: Runner = { check };
    this.runners.set(name, runner);
    // one check in flight per instance: a replaced runner's check ends first
    void (current?.inflight ?? Promise.resolve()).then(() => {
      if (this.runners.get(name) === runner) runner.timer = setTimeout(() => this.tick(name, runner), 0);
    });
  }

  private stopRunner(name: string): void {
    const r = this.runners.get(name);
    if (!r) return;
    if (r.timer) clearTimeout(r.timer);
    r.timer = undefined;
    this.runners.delete(name);
  }

  private tick(name: string, runner: Runner): void {
    runner.timer = undefined;
    const s = this.trackers.get(name);
    if (this.stopped || this.runners.get(name) !== runner || !s || !wantsChecks(s)) return;
    const epoch = s.epoch;
    const started = performance.now();
    const probe = this.o.probe ?? runProbe;
    runner.inflight = probe(runner.check, { unit: name, signal: this.abort.signal })
      .catch((e: unknown) => ({ ok: false, message: `check failed: ${e instanceof Error ? e.message : String(e)}` }))
      .then((r) => {
        runner.inflight = undefined;
        if (this.stopped) return;
        this.apply(name, { type: 'result', at: this.at(), ok: r.ok, message: r.message, epoch });
        if (this.runners.get(name) !== runner) return;
        const wait = Math.max(0, runner.check.intervalMs - (performance.now() - started));
        runner.timer = setTimeout(() => this.tick(name, runner), wait);
      });
  }

  private markDirty(name: string): void {
    this.writer.mark(name);
  }

  /** The records of these names (deleted when there is none), in one transaction. */
  private async writeSome(names: string[]): Promise<void> {
    await this.o.sink.write(names.map((name) => {
      const rec = this.records.get(name);
      const key = this.o.keys.health(this.o.machineId, name);
      return rec ? { key, value: JSON.stringify(rec) } : { key };
    }));
  }
}
