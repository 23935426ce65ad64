/**
 * A HOLLOW systemd: the `Systemd` contract simulated in memory, with no
 * unit files on disk, no D-Bus and no processes. It exists for one purpose,
 * control-plane benchmarks (bench/scale.ts), in the way Kubernetes'
 * kubemark runs real kubelets over a fake container runtime: the real agent,
 * engine and controller code runs against a real etcd, and only the host
 * underneath is simulated. It is never chosen by `fleetx agent`; nothing in
 * the agent knows which driver it has.
 *
 * What it simulates, following systemd's rules the agent relies on:
 * - unit files are ours alone (no foreign files, no masks): write/read/remove
 *   return what UnitFiles would, marker and final newline included;
 * - a unit systemd has not loaded is loaded from its file on demand, when a
 *   job, status() or listUnits() names it (systemd ≥ 245 retries a cached
 *   not-found unit when the unit directory changed); a unit already loaded
 *   keeps its old definition until the next reload() (daemon-reload);
 * - start/restart of a loaded unit makes it `active/running` at once (job
 *   result `done`), stop makes it `inactive/dead`; a start of a unit that is
 *   not loaded ends `failed`, as systemd refuses it;
 * - every change of load, active or sub state is signalled to onUnitChange
 *   listeners after the job resolves, as systemd's PropertiesChanged would;
 * - no main PIDs (there are no processes), no enablement links on disk
 *   (enable/disable are accepted and remembered; the agent's runtime-link
 *   check then sees units with an [Install] section as not enabled, so
 *   benchmarks use units without one).
 * Optional `jobDelayMs` makes every job take that long, like a real start.
 */
import { invalidError, usageError } from '../errors/errors.js';
import { isValidUnitName } from '../unit/name.js';
import type { JobResult, Systemd, UnitStatus } from './types.js';

export interface HollowOptions {
  /** how long each start/stop/restart job takes, ms (default 0) */
  jobDelayMs?: number;
}

interface HollowUnit {
  active: boolean;
}

export class HollowSystemd implements Systemd {
  /** bodies as written (ends with a newline; the marker is implied) */
  private readonly files = new Map<string, string>();
  /** what the last reload saw: the definitions systemd has loaded */
  private readonly loaded = new Map<string, string>();
  private readonly units = new Map<string, HollowUnit>();
  private readonly enabled = new Set<string>();
  private readonly changeListeners = new Set<(s: UnitStatus) => void>();
  private closed = false;
  /** jobs run so far, by kind, for benchmarks to report */
  readonly jobs = { start: 0, stop: 0, restart: 0, reload: 0 };

  constructor(private readonly opts: HollowOptions = {}) {}

  async writeUnitFile(name: string, text: string): Promise<boolean> {
    this.check(name);
    const body = text.endsWith('\n') ? text : `${text}\n`;
    if (this.files.get(name) === body) return false;
    this.files.set(name, body);
    return true;
  }

  async readUnitFile(name: string): Promise<string | undefined> {
    this.check(name);
    return this.files.get(name);
  }

  async removeUnitFile(name: string): Promise<boolean> {
    this.check(name);
    return this.files.delete(name);
  }

  async listUnitFiles(): Promise<string[]> {
    this.check();
    return [...this.files.keys()].sort();
  }

  async reload(): Promise<void> {
    this.check();
    this.jobs.reload++;
    const before = new Set(this.loaded.keys());
    this.loaded.clear();
    for (const [name, body] of this.files) this.loaded.set(name, body);
    // a unit whose file went away is unloaded unless it still runs, as systemd keeps it
    for (const name of before) {
      if (this.loaded.has(name)) continue;
      if (!this.units.get(name)?.active) this.units.delete(name);
      this.signal(name);
    }
    for (const name of this.loaded.keys()) if (!before.has(name)) this.signal(name);
  }

  start(name: string): Promise<JobResult> {
    return this.job(name, 'start', true);
  }

  stop(name: string): Promise<JobResult> {
    return this.job(name, 'stop', false);
  }

  restart(name: string): Promise<JobResult> {
    return this.job(name, 'restart', true);
  }

  async enable(names: string[]): Promise<void> {
    this.check();
    for (const n of names) this.enabled.add(n);
  }

  async disable(names: string[]): Promise<void> {
    this.check();
    for (const n of names) this.enabled.delete(n);
  }

  async status(name: string): Promise<UnitStatus> {
    this.check(name);
    this.loadOnDemand(name);
    return this.statusOf(name);
  }

  async listUnits(names?: string[]): Promise<UnitStatus[]> {
    this.check();
    for (const n of names ?? []) this.loadOnDemand(n);
    const which = names ?? [...new Set([...this.loaded.keys(), ...this.units.keys()])].sort();
    return which.map((n) => this.statusOf(n));
  }

  onUnitChange(cb: (s: UnitStatus) => void): () => void {
    this.changeListeners.add(cb);
    return () => void this.changeListeners.delete(cb);
  }

  /** The bus of a hollow host never drops. */
  onReconnect(): () => void {
    return () => undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.changeListeners.clear();
  }

  private async job(name: string, kind: 'start' | 'stop' | 'restart', activate: boolean): Promise<JobResult> {
    this.check(name);
    this.jobs[kind]++;
    if (this.opts.jobDelayMs) await new Promise((r) => setTimeout(r, this.opts.jobDelayMs));
    if (this.closed) throw usageError('hollow systemd closed while waiting for a job');
    this.loadOnDemand(name);
    if (activate && !this.loaded.has(name)) return 'failed';
    const u = this.units.get(name) ?? { active: false };
    if (u.active !== activate) {
      u.active = activate;
      this.units.set(name, u);
      // after the job's result, as systemd's PropertiesChanged arrives after JobRemoved
      queueMicrotask(() => this.signal(name));
    } else if (kind === 'restart') {
      queueMicrotask(() => this.signal(name));
    }
    return 'done';
  }

  private loadOnDemand(name: string): void {
    const file = this.files.get(name);
    if (file !== undefined && !this.loaded.has(name)) this.loaded.set(name, file);
  }

  private statusOf(name: string): UnitStatus {
    const active = this.units.get(name)?.active ?? false;
    const loaded = this.loaded.has(name);
    return {
      name,
      loadState: loaded ? 'loaded' : 'not-found',
      activeState: active ? 'active' : 'inactive',
      subState: active ? 'running' : 'dead',
    };
  }

  private signal(name: string): void {
    if (this.changeListeners.size === 0) return;
    const s = this.statusOf(name);
    for (const cb of [...this.changeListeners]) {
      try {
        cb(s);
      } catch {
        // a listener's bug must not stop the others, as in the D-Bus adapter
      }
    }
  }

  private check(name?: string): void {
    if (this.closed) throw usageError('hollow systemd used after close()');
    if (name !== undefined && !isValidUnitName(name)) throw invalidError(`invalid unit name ${JSON.stringify(name)}`);
  }
}
