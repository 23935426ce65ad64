/**
 * planTasks: the agent's decision, a pure function of what the schedule asks
 * for and what the host has. No I/O, no clock. Tasks come out grouped in
 * TASK_ORDER and sorted by unit name inside each group, so the same inputs
 * always give the same list, and all file changes of a pass share ONE
 * daemon-reload, planned only when systemd must re-read something.
 *
 * No reload for a unit systemd has not loaded (loadState 'not-found' or
 * never looked at): systemd reads a new file on demand when the unit is
 * next referenced (StartUnit, LoadUnit, ListUnitsByNames), also after it
 * cached the name as not-found, because it notices that the unit
 * directory changed (systemd ≥ 245, `manager_unit_cache_should_retry_load`;
 * checked by test/integration/systemd-adapter.test.ts). A daemon-reload
 * costs 0.4–1 s in a loaded host and re-reads every unit, so a new unit
 * starts without one. A changed file of a loaded unit, a removed loaded
 * unit and enablement links still get the reload.
 *
 * Rules per unit (targetState 'inactive' counts as "not scheduled here"):
 *  - not scheduled, fleetx file present: stop if running, disable if enabled,
 *    remove the file (only files fleetx wrote are ever in CurrentState).
 *  - scheduled, body not fetched yet (available=false): leave it alone.
 *  - scheduled, file missing or with another hash: write it; if it runs and
 *    must keep running, restart after the reload; if it must only be loaded,
 *    stop it first.
 *  - [Install] section present and not enabled: enable (runtime); enabled but
 *    the body has no [Install]: disable.
 *  - launched and not running: start, unless this agent already launched it
 *    at this hash (`settled`: systemd's Restart= owns it from there).
 *    loaded and running: stop.
 * A unit that is launched with the file's hash and running gets no task at
 * all, so an agent restart never disturbs a running workload.
 */
import { REASONS, TASK_ORDER, isRunning, type CurrentState, type CurrentUnit, type DesiredState, type DesiredUnit, type Task } from './types.js';

export function planTasks(desired: DesiredState, current: CurrentState): Task[] {
  const tasks: Task[] = [];
  const reloadFor = new Set<string>();
  const names = [...new Set([...desired.keys(), ...current.keys()])].sort(compareNames);

  for (const name of names) {
    const want = desired.get(name);
    const have = current.get(name);
    if (!want || want.targetState === 'inactive') {
      if (have) planRemoval(have, tasks, reloadFor);
    } else if (want.available) {
      planScheduled(want, have, tasks, reloadFor);
    }
  }

  if (reloadFor.size > 0) {
    tasks.push({ type: 'reload', units: [...reloadFor].sort(compareNames), reason: REASONS.filesChanged });
  }
  return sortTasks(tasks);
}

function planRemoval(have: CurrentUnit, tasks: Task[], reloadFor: Set<string>): void {
  if (have.fileHash === undefined) return; // not a fleetx file: never ours to touch
  const unit = have.name;
  if (isRunning(have.activeState)) tasks.push({ type: 'stop', unit, reason: REASONS.notScheduled });
  if (have.enabled) tasks.push({ type: 'disable', unit, reason: REASONS.notScheduled });
  tasks.push({ type: 'remove-file', unit, reason: REASONS.notScheduled });
  if (have.enabled || systemdHasLoaded(have)) reloadFor.add(unit);
}

function planScheduled(want: DesiredUnit, have: CurrentUnit | undefined, tasks: Task[], reloadFor: Set<string>): void {
  const unit = want.name;
  const running = have !== undefined && isRunning(have.activeState);
  const enabled = have?.enabled ?? false;
  const fileHash = have?.fileHash;

  const rewrite = fileHash !== want.hash;
  if (rewrite) {
    const reason = fileHash === undefined ? REASONS.notLoaded : REASONS.hashDiffers;
    tasks.push({ type: 'write-file', unit, hash: want.hash, reason });
    if (systemdHasLoaded(have)) reloadFor.add(unit);
  } else if (have?.needsReload) {
    reloadFor.add(unit);
  }

  if (want.hasInstall && !enabled) {
    tasks.push({ type: 'enable', unit, reason: REASONS.installSection });
    reloadFor.add(unit);
  } else if (!want.hasInstall && enabled) {
    tasks.push({ type: 'disable', unit, reason: REASONS.noInstallSection });
    reloadFor.add(unit);
  }

  if (want.targetState === 'launched') {
    if (!running && (rewrite || !have?.settled)) tasks.push({ type: 'start', unit, reason: REASONS.shouldBeLaunched });
    else if (rewrite) tasks.push({ type: 'restart', unit, reason: REASONS.hashDiffers });
  } else if (running) {
    tasks.push({ type: 'stop', unit, reason: REASONS.shouldBeLoaded });
  }
}

/** Whether systemd holds a definition of the unit that a changed file would leave stale. */
function systemdHasLoaded(have: CurrentUnit | undefined): boolean {
  return have !== undefined && have.loadState !== 'not-found';
}

/** Group by TASK_ORDER, then by unit name; stable for equal keys. */
export function sortTasks(tasks: readonly Task[]): Task[] {
  const rank = (t: Task) => TASK_ORDER.indexOf(t.type);
  const unitOf = (t: Task) => ('unit' in t ? t.unit : '');
  return [...tasks].sort((a, b) => rank(a) - rank(b) || compareNames(unitOf(a), unitOf(b)));
}

/** Code-point order, independent of the locale. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One line per task, for logs and `--dry-run` style output. */
export function describeTask(t: Task): string {
  switch (t.type) {
    case 'reload':
      return `reload (${t.units.join(', ')}): ${t.reason}`;
    case 'write-file':
      return `write-file ${t.unit} ${t.hash}: ${t.reason}`;
    default:
      return `${t.type} ${t.unit}: ${t.reason}`;
  }
}
