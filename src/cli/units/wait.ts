/**
 * Blocking for submit-style commands, as fleetctl's --block-attempts did:
 * after the target state is written, check what the machines report until
 * every unit reached it, the attempts run out, or nothing can happen (no
 * machine is registered, or the unit cannot be placed).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from '../../registry/registry.js';
import type { TargetState, UnitStateRecord } from '../../registry/records.js';
import { failedError } from '../../errors/errors.js';

export interface BlockOptions {
  block: boolean;
  /** 0 means no limit */
  attempts: number;
  intervalMs?: number;
}

export type Reached = (states: UnitStateRecord[]) => boolean;

const reached: Record<TargetState | 'destroyed', Reached> = {
  launched: (s) => s.length > 0 && s.every((r) => r.activeState === 'active'),
  loaded: (s) => s.length > 0 && s.every((r) => r.loadState === 'loaded' && r.activeState !== 'active' && r.activeState !== 'activating' && r.activeState !== 'deactivating'),
  inactive: (s) => s.length === 0,
  destroyed: (s) => s.length === 0,
};

/** Wait until every unit's reported state matches `target`; throws 'failed' with what is missing. */
export async function waitForUnits(registry: Registry, names: string[], target: TargetState | 'destroyed', opts: BlockOptions, log: (line: string) => void): Promise<void> {
  if (!opts.block || names.length === 0) return;
  const pending = new Set(names);
  const interval = opts.intervalMs ?? 1000;
  for (let attempt = 1; opts.attempts === 0 || attempt <= opts.attempts; attempt++) {
    const [states, machines, unschedulable] = await Promise.all([
      registry.listStates(),
      registry.listMachines(),
      registry.listUnschedulable(),
    ]);
    if (machines.length === 0 && target !== 'inactive' && target !== 'destroyed') {
      throw failedError(
        `target state ${target} recorded for ${[...pending].join(', ')}, but no machine has acted yet: no fleetx agent is registered`,
        'start agents (fleetx agent, or fleetx sandbox up), or pass --no-block to only record the target state',
      );
    }
    for (const name of [...pending]) {
      const mine = states.filter((s) => s.name === name);
      const refused = mine.find((s) => refusedBySystemd(s.loadState));
      if ((target === 'launched' || target === 'loaded') && refused) {
        throw failedError(`unit ${name} ${refusal(refused)}`, `see: fleetx why ${name}, fleetx journal ${name}`);
      }
      const failed = mine.find((s) => s.activeState === 'failed');
      if (target === 'launched' && failed) {
        throw failedError(`unit ${name} failed on machine ${failed.machine} (${failed.subState})`, `see: fleetx status ${name}`);
      }
      if (reached[target](mine)) {
        pending.delete(name);
        log(`Unit ${name} ${describe(target, mine)}`);
      }
    }
    if (pending.size === 0) return;
    const stuck = unschedulable.filter((u) => pending.has(u.name) && target !== 'inactive' && target !== 'destroyed');
    if (stuck.length > 0 && stuck.length === pending.size) {
      throw failedError(
        stuck.map((u) => `unit ${u.name} cannot be placed: ${u.reason}`).join('\n'),
        `see: fleetx why ${stuck[0]!.name}`,
      );
    }
    if (opts.attempts !== 0 && attempt === opts.attempts) break;
    await sleep(interval);
  }
  throw failedError(`gave up waiting after ${opts.attempts} attempts: ${[...pending].join(', ')} not yet ${target}`, 'the target state is recorded; machines will still act on it');
}

/** Load states in which systemd will never run the unit as its file stands. */
export function refusedBySystemd(loadState: string): boolean {
  return loadState === 'bad-setting' || loadState === 'error' || loadState === 'masked';
}

/** "was refused by systemd on machine M (...)": what a refused load state means, in words. */
export function refusal(s: Pick<UnitStateRecord, 'machine' | 'loadState'>): string {
  const why =
    s.loadState === 'bad-setting' ? 'a setting in its file is invalid or missing (e.g. no ExecStart=)'
    : s.loadState === 'masked' ? 'the unit is masked on that host'
    : 'systemd could not load its file';
  return `was refused by systemd on machine ${s.machine.slice(0, 8)} (load state ${s.loadState}): ${why}; it will not start until its file is fixed`;
}

function describe(target: TargetState | 'destroyed', states: UnitStateRecord[]): string {
  const where = states.map((s) => `${s.machine.slice(0, 8)}`).join(', ');
  switch (target) {
    case 'launched': return `launched on ${where}`;
    case 'loaded': return `loaded on ${where}`;
    case 'inactive': return 'inactive';
    case 'destroyed': return 'destroyed';
  }
}
