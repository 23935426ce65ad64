/**
 * What the host agent needs from systemd, and nothing more. The only
 * implementation talks D-Bus (see systemd.ts); every method throws
 * FleetxError only:
 * - 'unavailable' (retryable): the bus could not be reached or a call timed
 *   out; the next call reconnects.
 * - 'not-found': systemd does not know the unit or job.
 * - 'invalid': a bad unit name or argument.
 * - 'conflict': a unit file exists that fleetx did not write, or the unit is masked.
 * - 'failed': systemd refused the request for another reason.
 * - 'usage': the adapter was used after close().
 */
export interface UnitStatus {
  name: string;
  loadState: string; // loaded | not-found | bad-setting | error | masked
  activeState: string; // active | reloading | inactive | failed | activating | deactivating
  subState: string; // running | dead | exited | start-pre | ...
  mainPid?: number; // services only, absent when there is no main process
  fragmentPath?: string; // only from status(): the file systemd loaded the unit from
}

/**
 * How a job ended. The first five are systemd's own results; 'timeout' is
 * also what the adapter reports when it stops waiting (jobTimeoutMs).
 */
export type JobResult = 'done' | 'canceled' | 'timeout' | 'failed' | 'dependency' | 'skipped';

export const JOB_RESULTS: readonly JobResult[] = ['done', 'canceled', 'timeout', 'failed', 'dependency', 'skipped'];

export interface Systemd {
  /**
   * Writes a unit file into unitDir atomically (temp file + rename), marked
   * as written by fleetx (a first comment line; a missing final newline is
   * added). Returns true when the content changed; call reload() afterwards.
   * Throws 'invalid' for a bad name or one that would leave unitDir,
   * 'conflict' when a file not written by fleetx (or a symlink, e.g. a mask)
   * is in the way, 'failed' on a filesystem error.
   */
  writeUnitFile(name: string, text: string): Promise<boolean>;
  /** The body fleetx wrote (without its marker), or undefined. Throws like writeUnitFile. */
  readUnitFile(name: string): Promise<string | undefined>;
  /** Removes a file fleetx wrote; false when there was none. Throws like writeUnitFile. */
  removeUnitFile(name: string): Promise<boolean>;
  /** Names of the files fleetx wrote in unitDir, sorted. Throws 'failed' on a filesystem error. */
  listUnitFiles(): Promise<string[]>;
  /**
   * daemon-reload. Concurrent callers share one Reload() call; a caller that
   * arrives while one is running gets the next one (which will see its files).
   */
  reload(): Promise<void>;
  /** Queues a start job ('replace' mode) and waits for its result. */
  start(name: string): Promise<JobResult>;
  stop(name: string): Promise<JobResult>;
  restart(name: string): Promise<JobResult>;
  /**
   * Runtime enablement (links under unitDir/../X.wants, gone at reboot) of
   * units with an [Install] section, as fleet did; units without one are
   * left alone. Call reload() afterwards.
   */
  enable(names: string[]): Promise<void>;
  disable(names: string[]): Promise<void>;
  /** Loads the unit if needed; a unit without a file has loadState 'not-found'. */
  status(name: string): Promise<UnitStatus>;
  /**
   * The given units (each, even unknown ones, as 'not-found'), or every unit
   * systemd has loaded. mainPid is filled in for active services.
   */
  listUnits(names?: string[]): Promise<UnitStatus[]>;
  /**
   * Called when a unit's load/active/sub state or main PID changes, driven
   * by systemd's signals. Returns the unsubscribe function.
   */
  onUnitChange(cb: (s: UnitStatus) => void): () => void;
  /**
   * Called after the bus connection was rebuilt (or systemd re-executed):
   * changes may have been missed, so listeners should resync from listUnits().
   */
  onReconnect(cb: () => void): () => void;
  /** Ends the connection; later calls, and start/stop/restart still waiting, throw 'usage'. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** Where unit files go. Default /run/systemd/system (runtime, gone at reboot). */
  unitDir?: string;
  /** Per D-Bus call. Default 10 s. */
  callTimeoutMs?: number;
  /** How long start/stop/restart and reload wait. Default 90 s, systemd's own default start timeout. */
  jobTimeoutMs?: number;
  /** D-Bus address. Default $DBUS_SYSTEM_BUS_ADDRESS or unix:path=/run/dbus/system_bus_socket. */
  busAddress?: string;
}
