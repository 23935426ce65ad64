/**
 * runTasks: carries out a plan against systemd, group by group. A failed task
 * holds back only the later tasks of ITS unit; every other unit's tasks
 * still run, so one bad unit never blocks its host (fleet stopped the whole
 * pass at the first failure: one unit that could not be written kept every
 * other unit on the host from starting). The run stops at once only when
 * the host itself fails: systemd unreachable, or the daemon-reload failing,
 * since every later job would be planned against files systemd has not read.
 * The next pass re-plans from what is really there, so a unit held back is
 * never "continued" blindly.
 */
import PQueue from 'p-queue';
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

/**
 * How many tasks of one group (all starts, all stops, all writes …) run at
 * once on a host. systemd runs independent jobs side by side; one at a time,
 * each start or stop costs a D-Bus round trip plus the job (tens of ms), so
 * 100 stops took 6–9 s. Bounded, so a pass of thousands of units does not
 * flood systemd's queue or the bus.
 */
export const TASK_CONCURRENCY = 32;

/**
 * Never throws: failures are returned. Tasks run group by group, a group
 * being consecutive tasks of one type (the planner sorts them so: every stop,
 * then every removal … then every start); inside a group up to
 * `concurrency` run at once, and a group starts when the one before has
 * ended, so each unit's own tasks keep their order and a reload sits between
 * the files it reads and the jobs that need them.
 */
export async function runTasks(tasks: readonly Task[], deps: TaskDeps, onDone?: (t: Task) => void, concurrency = TASK_CONCURRENCY): Promise<RunOutcome> {
  const done: Task[] = [];
  const failures: Array<TaskFailure & { at: number }> = [];
  const skipped: Task[] = [];
  const heldBack = new Set<string>();
  let hostFailed = false;
  const queue = new PQueue({ concurrency });

  const runOne = async (task: Task, at: number): Promise<void> => {
    const unit = 'unit' in task ? task.unit : undefined;
    if (hostFailed || (unit !== undefined && heldBack.has(unit))) {
      skipped.push(task);
      return;
    }
    try {
      await runTask(task, deps);
    } catch (e) {
      const error = isFleetxError(e) ? e : new FleetxError('internal', `task ${task.type} failed: ${String(e)}`, { cause: e });
      failures.push({ task, error, at });
      if (unit === undefined || error.kind === 'unavailable') hostFailed = true;
      else heldBack.add(unit);
      return;
    }
    done.push(task);
    onDone?.(task);
  };

  for (const group of groups(tasks)) {
    await queue.addAll(group.map(({ task, at }) => () => runOne(task, at)));
  }
  // completion order inside a group varies; report in plan order
  const order = new Map(tasks.map((t, i) => [t, i]));
  const byPlan = (a: Task, b: Task) => order.get(a)! - order.get(b)!;
  done.sort(byPlan);
  skipped.sort(byPlan);
  const failed = failures.sort((a, b) => a.at - b.at).map(({ task, error }) => ({ task, error }));
  return failed.length === 0 ? { done, failures: failed, skipped } : { done, failed: failed[0], failures: failed, skipped };
}

/** Consecutive tasks of one type, no unit twice (a unit's tasks never run side by side). */
function groups(tasks: readonly Task[]): Array<Array<{ task: Task; at: number }>> {
  const out: Array<Array<{ task: Task; at: number }>> = [];
  let units = new Set<string>();
  tasks.forEach((task, at) => {
    const last = out.at(-1);
    const unit = 'unit' in task ? task.unit : undefined;
    if (last && last[0]!.task.type === task.type && unit !== undefined && !units.has(unit)) {
      last.push({ task, at });
    } else {
      out.push([{ task, at }]);
      units = new Set();
    }
    if (unit !== undefined) units.add(unit);
  });
  return out;
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
