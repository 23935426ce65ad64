import type { Message } from 'dbus-next';
import PQueue from 'p-queue';
import { FleetxError, isFleetxError } from '../errors/errors.js';
import { coalesce } from './coalesce.js';
import { JobTracker, type JobKind, type PendingJob } from './jobs.js';
import { BusLink, MANAGER_IFACE, MANAGER_PATH, type CallSpec } from './link.js';
import { SERVICE_IFACE, UNIT_IFACE, UnitChanges, completeStatus, plain, statusFields } from './status.js';
import type { ConnectOptions, JobResult, Systemd, UnitStatus } from './types.js';
import { UnitFiles } from './unit-files.js';

const PROPS_IFACE = 'org.freedesktop.DBus.Properties';
const JOB_IFACE = 'org.freedesktop.systemd1.Job';
const ACTIVE_STATES = new Set(['active', 'reloading', 'activating', 'deactivating']);
const MAIN_PID_CONCURRENCY = 8;

/**
 * Connects to systemd's D-Bus API (see types.ts for the contract).
 * Throws 'unavailable' when the bus cannot be reached or systemd does not answer.
 */
export async function connectSystemd(opts: ConnectOptions = {}): Promise<Systemd> {
  const sd = new DbusSystemd(opts);
  try {
    await sd.connect();
  } catch (e) {
    await sd.close();
    throw e;
  }
  return sd;
}

class DbusSystemd implements Systemd {
  private readonly link: BusLink;
  private readonly files: UnitFiles;
  // systemd queues a start or restart job only for a unit it has loaded
  // (bus_unit_queue_job refuses others), so an accepted job tells LoadState
  private readonly jobs = new JobTracker((job) => {
    if (job.kind !== 'stop') this.changes.loadedByJob(job.unit);
  });
  private readonly changes: UnitChanges;
  private readonly changeListeners = new Set<(s: UnitStatus) => void>();
  private readonly restoreListeners = new Set<() => void>();
  private readonly jobTimeoutMs: number;

  constructor(opts: ConnectOptions) {
    this.jobTimeoutMs = opts.jobTimeoutMs ?? 90_000;
    this.files = new UnitFiles(opts.unitDir ?? '/run/systemd/system');
    this.changes = new UnitChanges(
      (s) => notify(this.changeListeners, s),
      async (path) => plain((await this.link.call({ path, iface: PROPS_IFACE, member: 'Get', signature: 'ss', body: [UNIT_IFACE, 'LoadState'] }))[0]) as string,
    );
    this.link = new BusLink({
      busAddress: opts.busAddress ?? process.env.DBUS_SYSTEM_BUS_ADDRESS ?? 'unix:path=/run/dbus/system_bus_socket',
      callTimeoutMs: opts.callTimeoutMs ?? 10_000,
      onSignal: (msg) => this.onSignal(msg),
      onRestored: () => {
        this.changes.forget();
        void this.recheckJobs();
        notify(this.restoreListeners, undefined);
      },
    });
  }

  async connect(): Promise<void> {
    await this.link.connected();
  }

  writeUnitFile(name: string, text: string): Promise<boolean> {
    return this.files.write(name, text);
  }
  readUnitFile(name: string): Promise<string | undefined> {
    return this.files.read(name);
  }
  removeUnitFile(name: string): Promise<boolean> {
    return this.files.remove(name);
  }
  listUnitFiles(): Promise<string[]> {
    return this.files.list();
  }

  readonly reload = coalesce(async () => {
    await this.manager('Reload', '', [], this.jobTimeoutMs);
  });

  start(name: string): Promise<JobResult> {
    return this.job(name, 'start', 'StartUnit');
  }
  stop(name: string): Promise<JobResult> {
    return this.job(name, 'stop', 'StopUnit');
  }
  restart(name: string): Promise<JobResult> {
    return this.job(name, 'restart', 'RestartUnit');
  }

  async enable(names: string[]): Promise<void> {
    if (names.length === 0) return;
    // runtime=true: links go under /run and vanish at reboot, like the unit files; force=true as fleet did.
    await this.manager('EnableUnitFiles', 'asbb', [names, true, true]);
  }

  async disable(names: string[]): Promise<void> {
    if (names.length === 0) return;
    await this.manager('DisableUnitFiles', 'asb', [names, true]);
  }

  async status(name: string): Promise<UnitStatus> {
    const [path] = (await this.manager('LoadUnit', 's', [name])) as [string];
    const [props] = (await this.properties(path, UNIT_IFACE)) as [Record<string, unknown>];
    const fields = statusFields(props);
    if (fields.loadState === 'loaded' && name.endsWith('.service')) fields.mainPid = await this.mainPid(path);
    return this.complete(name, fields);
  }

  async listUnits(names?: string[]): Promise<UnitStatus[]> {
    if (names?.length === 0) return [];
    const [rows] = (names ? await this.manager('ListUnitsByNames', 'as', [names]) : await this.manager('ListUnits', '', [])) as [unknown[][]];
    const out = rows.map((r) => ({
      path: r[6] as string,
      status: this.complete(r[0] as string, { loadState: r[2] as string, activeState: r[3] as string, subState: r[4] as string }),
    }));
    const services = out.filter((u) => u.status.name.endsWith('.service') && ACTIVE_STATES.has(u.status.activeState));
    const unknown = services.filter((u) => {
      const pid = this.changes.signalledMainPid(u.status.name, u.status.activeState);
      if (pid === undefined) return true;
      if (pid) u.status.mainPid = pid;
      return false;
    });
    const queue = new PQueue({ concurrency: MAIN_PID_CONCURRENCY });
    await queue.addAll(
      unknown.map((u) => async () => {
        const pid = await this.mainPid(u.path);
        if (pid) u.status.mainPid = pid;
      }),
    );
    return out.map((u) => u.status);
  }

  onUnitChange(cb: (s: UnitStatus) => void): () => void {
    this.changeListeners.add(cb);
    return () => void this.changeListeners.delete(cb);
  }

  onReconnect(cb: () => void): () => void {
    this.restoreListeners.add(cb);
    return () => void this.restoreListeners.delete(cb);
  }

  async close(): Promise<void> {
    this.changeListeners.clear();
    this.restoreListeners.clear();
    this.jobs.abort(new FleetxError('usage', 'systemd adapter closed while waiting for a job'));
    await this.link.close();
  }

  private job(name: string, kind: JobKind, method: string): Promise<JobResult> {
    return this.jobs.run(name, kind, async () => (await this.manager(method, 'ss', [name, 'replace']))[0] as string, this.jobTimeoutMs);
  }

  private manager(member: string, signature: string, body: unknown[], timeoutMs?: number): Promise<unknown[]> {
    return this.link.call({ path: MANAGER_PATH, iface: MANAGER_IFACE, member, signature: signature || undefined, body }, timeoutMs);
  }

  private properties(path: string, iface: string): Promise<unknown[]> {
    const spec: CallSpec = { path, iface: PROPS_IFACE, member: 'GetAll', signature: 's', body: [iface] };
    return this.link.call(spec);
  }

  private async mainPid(path: string): Promise<number | undefined> {
    const [v] = await this.link.call({ path, iface: PROPS_IFACE, member: 'Get', signature: 'ss', body: [SERVICE_IFACE, 'MainPID'] });
    return Number(plain(v)) || undefined;
  }

  private complete(name: string, fields: Partial<UnitStatus>): UnitStatus {
    return completeStatus(name, { loadState: 'error', activeState: 'inactive', subState: 'dead', ...fields })!;
  }

  private onSignal(msg: Message): void {
    if (msg.interface === PROPS_IFACE && msg.member === 'PropertiesChanged') {
      this.changes.propertiesChanged(msg.path, msg.body[0] as string, msg.body[1] as Record<string, unknown>);
    } else if (msg.interface === MANAGER_IFACE && msg.member === 'JobRemoved') {
      this.jobs.removed(msg.body[1] as string, msg.body[3] as string);
    } else if (msg.interface === MANAGER_IFACE && msg.member === 'UnitRemoved') {
      this.changes.unitRemoved(msg.body[0] as string);
    } else if (msg.interface === MANAGER_IFACE && msg.member === 'Reloading' && msg.body[0] === false) {
      this.changes.reloaded();
    }
  }

  /**
   * After a reconnect, JobRemoved signals may have been lost: a job whose
   * object is gone has ended, and the unit's state says how.
   */
  private async recheckJobs(): Promise<void> {
    await Promise.all(
      this.jobs.pending().map(async (job) => {
        try {
          await this.link.call({ path: job.path, iface: PROPS_IFACE, member: 'Get', signature: 'ss', body: [JOB_IFACE, 'State'] });
        } catch (e) {
          if (!isFleetxError(e) || e.kind !== 'not-found') return; // still running, or can't tell yet: keep waiting
          const s = await this.status(job.unit).catch(() => undefined);
          if (s) this.jobs.settle(job.path, inferResult(job, s));
        }
      }),
    );
  }
}

/** The best reading of a job that ended unseen. */
function inferResult(job: PendingJob, s: UnitStatus): JobResult {
  if (job.kind === 'stop') return s.activeState === 'inactive' || s.activeState === 'failed' ? 'done' : 'canceled';
  return s.activeState === 'active' || s.activeState === 'reloading' ? 'done' : 'failed';
}

/** Listeners must not throw; one that does is skipped so the others and the bus dispatch keep working. */
function notify<T>(listeners: Set<(v: T) => void>, v: T): void {
  for (const cb of [...listeners]) {
    try {
      cb(v);
    } catch {
      // deliberately ignored: a listener's bug must not stop signal dispatch
    }
  }
}
