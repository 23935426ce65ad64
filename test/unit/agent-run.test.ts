import { describe, expect, it } from 'vitest';
import { runTasks } from '../../src/agent/run.js';
import type { Task } from '../../src/agent/types.js';
import { REASONS } from '../../src/agent/types.js';
import { failedError, unavailableError } from '../../src/errors/errors.js';
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
    expect(out).toEqual({ done: plan, failures: [], skipped: [] });
    expect(seen).toEqual(plan.map((t) => t.type));
    expect(calls).toEqual([
      'stop old.service', 'remove old.service', `write a.service ${JSON.stringify(bodyOf('h1'))}`, 'enable a.service',
      'reload', 'start a.service', 'start b.service',
    ]);
  });

  it.each<[string, JobResult | Error]>([
    ['a failed job', 'failed'],
    ['a timed-out job', 'timeout'],
  ])("a unit's failure holds back only that unit: %s", async (_, result) => {
    const { sd, calls } = recordingSystemd({ 'start a.service': result });
    const out = await runTasks(plan, { systemd: sd, bodyOf });
    expect(out.done).toEqual([...plan.slice(0, 5), plan[6]]);
    expect(out.failed?.task).toEqual(plan[5]);
    expect(out.failures.map((f) => [f.task, f.error.kind])).toEqual([[plan[5], 'failed']]);
    expect(calls.at(-1)).toBe('start b.service'); // b.service still started
  });

  it('a unit whose file cannot be written is held back; the other units are written, reloaded and started', async () => {
    const { sd, calls } = recordingSystemd();
    const failingWrite: Systemd = { ...sd, writeUnitFile: async (n, t) => (n === 'a.service' ? Promise.reject(failedError('ENAMETOOLONG')) : sd.writeUnitFile(n, t)) };
    const tasks: Task[] = [
      { type: 'write-file', unit: 'a.service', hash: 'h1', reason: REASONS.notLoaded },
      { type: 'write-file', unit: 'b.service', hash: 'h1', reason: REASONS.notLoaded },
      { type: 'reload', units: ['a.service', 'b.service'], reason: REASONS.filesChanged },
      { type: 'start', unit: 'a.service', reason: REASONS.shouldBeLaunched },
      { type: 'start', unit: 'b.service', reason: REASONS.shouldBeLaunched },
    ];
    const out = await runTasks(tasks, { systemd: failingWrite, bodyOf });
    expect(out.failures.map((f) => f.task)).toEqual([tasks[0]]);
    expect(out.skipped).toEqual([tasks[3]]);
    expect(calls).toEqual([`write b.service ${JSON.stringify(bodyOf('h1'))}`, 'reload', 'start b.service']);
  });

  it('an unreachable systemd ends the run: every later group is skipped, since its tasks would fail too', async () => {
    const { sd, calls } = recordingSystemd({ 'stop old.service': unavailableError('D-Bus call timed out') });
    const out = await runTasks(plan, { systemd: sd, bodyOf });
    expect(out.done).toEqual([]);
    expect(out.failed?.error.kind).toBe('unavailable');
    expect(out.skipped).toEqual(plan.slice(1));
    expect(calls).toEqual(['stop old.service']);
  });

  it('an unreachable systemd in the middle of a group: tasks not yet begun are skipped', async () => {
    const { sd, calls } = recordingSystemd({ 'start a.service': unavailableError('D-Bus call timed out') });
    const out = await runTasks(plan, { systemd: sd, bodyOf }, undefined, 1);
    expect(out.done).toEqual(plan.slice(0, 5));
    expect(out.failed?.error.kind).toBe('unavailable');
    expect(out.skipped).toEqual([plan[6]]);
    expect(calls.at(-1)).toBe('start a.service');
  });

  it('runs the tasks of one group side by side, never more than the bound, and a group only after the one before', async () => {
    const { sd } = recordingSystemd();
    let inFlight = 0;
    let most = 0;
    const events: string[] = [];
    const slow = (kind: string) => async (name: string): Promise<JobResult> => {
      inFlight++;
      most = Math.max(most, inFlight);
      events.push(`begin ${kind} ${name}`);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      events.push(`end ${kind} ${name}`);
      return 'done';
    };
    const units = Array.from({ length: 10 }, (_, i) => `u${i}.service`);
    const tasks: Task[] = [
      ...units.map((unit): Task => ({ type: 'stop', unit, reason: REASONS.shouldBeLoaded })),
      ...units.map((unit): Task => ({ type: 'start', unit, reason: REASONS.shouldBeLaunched })),
    ];
    const out = await runTasks(tasks, { systemd: { ...sd, stop: slow('stop'), start: slow('start') }, bodyOf }, undefined, 4);
    expect(out.done).toEqual(tasks); // reported in plan order
    expect(most).toBe(4);
    const lastStopEnd = events.lastIndexOf(events.filter((e) => e.startsWith('end stop')).at(-1)!);
    const firstStartBegin = events.indexOf(events.find((e) => e.startsWith('begin start'))!);
    expect(lastStopEnd).toBeLessThan(firstStartBegin);
  });

  it('a failed daemon-reload ends the run: no job runs against files systemd has not read', async () => {
    const { sd, calls } = recordingSystemd();
    const out = await runTasks(plan, { systemd: { ...sd, reload: async () => Promise.reject(failedError('reload refused')) }, bodyOf });
    expect(out.failed?.task).toEqual(plan[4]);
    expect(out.skipped).toEqual(plan.slice(5));
    expect(calls).not.toContain('start a.service');
  });

  it('fails a write whose body is not cached, before touching the host', async () => {
    const { sd, calls } = recordingSystemd();
    const out = await runTasks([{ type: 'write-file', unit: 'x.service', hash: 'nope', reason: REASONS.notLoaded }], { systemd: sd, bodyOf });
    expect(out.failed?.error.kind).toBe('failed');
    expect(calls).toEqual([]);
  });
});
