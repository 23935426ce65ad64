/**
 * The agent's vocabulary. `desired()` yields DesiredUnits (from this
 * machine's schedule keys), `current()` yields CurrentUnits (from systemd and
 * the unit files fleetx wrote), `planTasks()` compares them and returns Tasks.
 */
import type { TargetState } from '../registry/records.js';

/** One unit the schedule asks this machine to have. */
export interface DesiredUnit {
  name: string;
  /** content hash of the body (key of {p}/body/{hash}) */
  hash: string;
  /** 'inactive' is treated exactly like "not scheduled here" */
  targetState: TargetState;
  /** whether the body has an [Install] section (then it is enabled at runtime) */
  hasInstall: boolean;
  /**
   * false when the body could not be fetched yet: the planner then leaves the
   * unit exactly as it is on the host (neither writes nor removes it).
   */
  available: boolean;
}

/** What the host has for one unit fleetx manages (or is asked to manage). */
export interface CurrentUnit {
  name: string;
  /**
   * hash of the unit file fleetx wrote, when its content equals a known body;
   * 'unknown' when a fleetx file exists with content of no known body;
   * undefined when there is no fleetx file for this unit.
   */
  fileHash?: string;
  loadState: string;
  activeState: string;
  subState: string;
  /** enabled at runtime (UnitFileState enabled-runtime / enabled) */
  enabled: boolean;
  /** systemd has not yet read the file on disk (NeedDaemonReload, or not-found while a file exists) */
  needsReload: boolean;
  /**
   * This agent already launched the unit at fileHash (or found it running
   * so). If it has stopped since, that is systemd's business (Restart=, a
   * oneshot that finished, a crash the operator should see): no new start.
   * As in fleet, a unit is started once per launch, not kept alive by polling.
   */
  settled?: boolean;
  mainPid?: number;
}

export type DesiredState = ReadonlyMap<string, DesiredUnit>;
export type CurrentState = ReadonlyMap<string, CurrentUnit>;

/** Why a task exists, in fleet's words. Part of the log format: add, don't reword. */
export const REASONS = {
  notScheduled: 'unit loaded but not scheduled here',
  notLoaded: 'unit scheduled here but not loaded',
  hashDiffers: 'unit loaded but hash differs to expected',
  shouldBeLaunched: 'unit currently loaded but desired state is launched',
  shouldBeLoaded: 'unit currently launched but desired state is loaded',
  installSection: 'unit has an [Install] section but is not enabled',
  noInstallSection: 'unit is enabled but its body has no [Install] section',
  filesChanged: 'unit files changed on disk',
} as const;
export type Reason = (typeof REASONS)[keyof typeof REASONS];

export type Task =
  | { type: 'stop'; unit: string; reason: Reason }
  | { type: 'disable'; unit: string; reason: Reason }
  | { type: 'remove-file'; unit: string; reason: Reason }
  | { type: 'write-file'; unit: string; hash: string; reason: Reason }
  | { type: 'enable'; unit: string; reason: Reason }
  | { type: 'reload'; units: string[]; reason: Reason }
  | { type: 'start'; unit: string; reason: Reason }
  | { type: 'restart'; unit: string; reason: Reason };

export type TaskType = Task['type'];

/** The order task groups run in within one pass; one daemon-reload sits in the middle. */
export const TASK_ORDER: readonly TaskType[] = [
  'stop', 'disable', 'remove-file', 'write-file', 'enable', 'reload', 'restart', 'start',
];

/** systemd active states in which a unit counts as running (no start needed). */
export function isRunning(activeState: string): boolean {
  return activeState === 'active' || activeState === 'activating' || activeState === 'reloading';
}
