/**
 * What this agent has launched, per unit and hash, for the lifetime of the
 * process. It makes "launched" mean what it meant in fleet: start a unit
 * once when it is scheduled (or its hash changes, or the agent starts), then
 * leave it to systemd. A oneshot that finished or a crashed unit is not
 * restarted by the agent every pass (that would hide failures from the
 * operator and from rollouts, and hot-loop on units that exit by design);
 * Restart= in the unit is the way to keep it alive.
 */
import type { CurrentUnit, DesiredState, Task } from './types.js';
import { isRunning } from './types.js';

export class LaunchMemory {
  private readonly hashes = new Map<string, string>();

  /**
   * Before planning: units found running at their desired hash count as
   * launched, units no longer desired launched are forgotten, and each
   * current unit gets `settled` when it was launched at its file's hash.
   */
  annotate(desired: DesiredState, current: Map<string, CurrentUnit>): void {
    for (const name of [...this.hashes.keys()]) {
      if (desired.get(name)?.targetState !== 'launched') this.hashes.delete(name);
    }
    for (const c of current.values()) {
      const want = desired.get(c.name);
      if (want?.targetState === 'launched' && want.hash === c.fileHash && isRunning(c.activeState)) this.hashes.set(c.name, want.hash);
      c.settled = c.fileHash !== undefined && this.hashes.get(c.name) === c.fileHash;
    }
  }

  /**
   * After a task: a start/restart that systemd carried out (whatever the
   * job's result) launches the unit at its desired hash; a stop or removal
   * forgets it.
   */
  record(task: Task, desired: DesiredState): void {
    if (task.type === 'start' || task.type === 'restart') {
      const hash = desired.get(task.unit)?.hash;
      if (hash !== undefined) this.hashes.set(task.unit, hash);
    } else if (task.type === 'stop' || task.type === 'remove-file') {
      this.hashes.delete(task.unit);
    }
  }
}
