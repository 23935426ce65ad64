/**
 * runTasks: carries out a plan against systemd, in order. A failed task
 * holds back only the later tasks of ITS unit; every other unit's tasks
 * still run, so one bad unit never blocks its host (fleet stopped the whole
 * pass at the first failure: one unit that could not be written kept every
 * other unit on the host from starting). The run stops at once only when
 * the host itself fails: systemd unreachable, or the daemon-reload failing,
 * since every later job would be planned against files systemd has not read.
 * The next pass re-plans from what is really there, so a unit held back is
 * never "continued" blindly.
 */
import { FleetxError, failedError, isFleetxError } from '../errors/errors.js';
import type { JobResult, Systemd } from '../systemd/types.js';
import type { Task } from './types.js';

export interface TaskDeps {
  systemd: Systemd;
  /** the body text for a hash (from the body cache) */
  bodyOf(hash: string): string | undefined;
}

export interface TaskFailure {
  task: Task;
  error: FleetxError;
}

export interface RunOutcome {
  done: Task[];
  /** the first failure (kept for callers that report one line) */
  failed?: TaskFailure;
  /** every failed task, in plan order; empty when all went well */
  failures: TaskFailure[];
  /** tasks not run: later tasks of a failed unit, or everything after a host failure */
  skipped: Task[];
}

/** Never throws: failures are returned. */
export async function runTasks(tasks: readonly Task[], deps: TaskDeps, onDone?: (t: Task) => void): Promise<RunOutcome> {
  const done: Task[] = [];
  const failures: TaskFailure[] = [];
  const skipped: Task[] = [];
  const heldBack = new Set<string>();
  let hostFailed = false;
  for (const task of tasks) {
    const unit = 'unit' in task ? task.unit : undefined;
    if (hostFailed || (unit !== undefined && heldBack.has(unit))) {
      skipped.push(task);
      continue;
    }
    try {
      await runTask(task, deps);
    } catch (e) {
      const error = isFleetxError(e) ? e : new FleetxError('internal', `task ${task.type} failed: ${String(e)}`, { cause: e });
      failures.push({ task, error });
      if (unit === undefined || error.kind === 'unavailable') hostFailed = true;
      else heldBack.add(unit);
      continue;
    }
    done.push(task);
    onDone?.(task);
  }
  return failures.length === 0 ? { done, failures, skipped } : { done, failed: failures[0], failures, skipped };
}

async function runTask(t: Task, { systemd, bodyOf }: TaskDeps): Promise<void> {
  switch (t.type) {
    case 'write-file': {
      const body = bodyOf(t.hash);
      if (body === undefined) throw failedError(`body ${t.hash} of ${t.unit} is not in the cache`);
      await systemd.writeUnitFile(t.unit, body);
      return;
    }
    case 'remove-file':
      await systemd.removeUnitFile(t.unit);
      return;
    case 'enable':
      await systemd.enable([t.unit]);
      return;
    case 'disable':
      await systemd.disable([t.unit]);
      return;
    case 'reload':
      await systemd.reload();
      return;
    case 'start':
      return expectDone(t.unit, 'start', await systemd.start(t.unit));
    case 'stop':
      return expectDone(t.unit, 'stop', await systemd.stop(t.unit));
    case 'restart':
      return expectDone(t.unit, 'restart', await systemd.restart(t.unit));
  }
}

function expectDone(unit: string, what: string, result: JobResult): void {
  if (result !== 'done') throw failedError(`${what} of ${unit} ended with result "${result}"`, `journalctl -u ${unit}`);
}
