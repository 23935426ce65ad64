import { describe, expect, it } from 'vitest';
import { runTasks } from '../../src/agent/run.js';
import type { Task } from '../../src/agent/types.js';
import { REASONS } from '../../src/agent/types.js';
import { unavailableError } from '../../src/errors/errors.js';
import type { JobResult, Systemd, UnitStatus } from '../../src/systemd/types.js';

/** A recording stand-in for the agent's Systemd port (our interface, not D-Bus): scripted job results. */
function recordingSystemd(results: Record<string, JobResult | Error> = {}) {
  const calls: string[] = [];
  const job = (kind: string) => async (name: string): Promise<JobResult> => {
    calls.push(`${kind} ${name}`);
    const r = results[`${kind} ${name}`] ?? 'done';
    if (r instanceof Error) throw r;
    return r;
  };
  const sd: Systemd = {
    writeUnitFile: async (n, t) => (calls.push(`write ${n} ${JSON.stringify(t)}`), true),
    readUnitFile: async () => undefined,
    removeUnitFile: async (n) => (calls.push(`remove ${n}`), true),
    listUnitFiles: async () => [],
    reload: async () => void calls.push('reload'),
    start: job('start'),
    stop: job('stop'),
    restart: job('restart'),
    enable: async (ns) => void calls.push(`enable ${ns.join(',')}`),
    disable: async (ns) => void calls.push(`disable ${ns.join(',')}`),
    status: async (name): Promise<UnitStatus> => ({ name, loadState: 'loaded', activeState: 'inactive', subState: 'dead' }),
    listUnits: async () => [],
    onUnitChange: () => () => undefined,
    onReconnect: () => () => undefined,
    close: async () => undefined,
  };
  return { sd, calls };
}

const plan: Task[] = [
  { type: 'stop', unit: 'old.service', reason: REASONS.notScheduled },
  { type: 'remove-file', unit: 'old.service', reason: REASONS.notScheduled },
  { type: 'write-file', unit: 'a.service', hash: 'h1', reason: REASONS.notLoaded },
  { type: 'enable', unit: 'a.service', reason: REASONS.installSection },
  { type: 'reload', units: ['a.service', 'old.service'], reason: REASONS.filesChanged },
  { type: 'start', unit: 'a.service', reason: REASONS.shouldBeLaunched },
  { type: 'start', unit: 'b.service', reason: REASONS.shouldBeLaunched },
];
const bodyOf = (h: string) => (h === 'h1' ? '[Service]\nExecStart=/bin/true\n' : undefined);

describe('runTasks', () => {
  it('carries out every task in order', async () => {
    const { sd, calls } = recordingSystemd();
    const seen: string[] = [];
    const out = await runTasks(plan, { systemd: sd, bodyOf }, (t) => seen.push(t.type));
    expect(out).toEqual({ done: plan });
    expect(seen).toEqual(plan.map((t) => t.type));
    expect(calls).toEqual([
      'stop old.service', 'remove old.service', `write a.service ${JSON.stringify(bodyOf('h1'))}`, 'enable a.service',
      'reload', 'start a.service', 'start b.service',
    ]);
  });

  it.each<[string, JobResult | Error, string]>([
    ['a failed job', 'failed', 'failed'],
    ['a timed-out job', 'timeout', 'failed'],
    ['an unreachable systemd', unavailableError('D-Bus call timed out'), 'unavailable'],
  ])('stops at the first failure: %s', async (_, result, kind) => {
    const { sd, calls } = recordingSystemd({ 'start a.service': result });
    const out = await runTasks(plan, { systemd: sd, bodyOf });
    expect(out.done).toEqual(plan.slice(0, 5));
    expect(out.failed?.task).toEqual(plan[5]);
    expect(out.failed?.error.kind).toBe(kind);
    expect(calls.at(-1)).toBe('start a.service'); // b.service never started
  });

  it('fails a write whose body is not cached, before touching the host', async () => {
    const { sd, calls } = recordingSystemd();
    const out = await runTasks([{ type: 'write-file', unit: 'x.service', hash: 'nope', reason: REASONS.notLoaded }], { systemd: sd, bodyOf });
    expect(out.failed?.error.kind).toBe('failed');
    expect(calls).toEqual([]);
  });
});
