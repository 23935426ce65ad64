/**
 * runTasks: carries out a plan against systemd, in order, stopping at the
 * first failure (fleet's rule: the next pass re-plans from what is really
 * there, so a half-done plan is never "continued" blindly).
 */
import { FleetxError, failedError, isFleetxError } from '../errors/errors.js';
import type { JobResult, Systemd } from '../systemd/types.js';
import type { Task } from './types.js';

export interface TaskDeps {
  systemd: Systemd;
  /** the body text for a hash (from the body cache) */
  bodyOf(hash: string): string | undefined;
}

export interface RunOutcome {
  done: Task[];
  failed?: { task: Task; error: FleetxError };
}

/** Never throws: a failure ends the run and is returned. */
export async function runTasks(tasks: readonly Task[], deps: TaskDeps, onDone?: (t: Task) => void): Promise<RunOutcome> {
  const done: Task[] = [];
  for (const task of tasks) {
    try {
      await runTask(task, deps);
    } catch (e) {
      const error = isFleetxError(e) ? e : new FleetxError('internal', `task ${task.type} failed: ${String(e)}`, { cause: e });
      return { done, failed: { task, error } };
    }
    done.push(task);
    onDone?.(task);
  }
  return { done };
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
