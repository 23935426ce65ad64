import { describe, expect, it } from 'vitest';
import { LaunchMemory } from '../../src/agent/launched.js';
import { planTasks } from '../../src/agent/plan.js';
import { REASONS, type CurrentUnit, type DesiredUnit } from '../../src/agent/types.js';

const desired = (targetState: DesiredUnit['targetState'], hash = 'h1') =>
  new Map([['a.service', { name: 'a.service', hash, targetState, hasInstall: false, available: true }]]);
const current = (activeState: string, fileHash = 'h1') =>
  new Map<string, CurrentUnit>([['a.service', { name: 'a.service', fileHash, loadState: 'loaded', activeState, subState: 'x', enabled: false, needsReload: false }]]);

describe('LaunchMemory: start once per launch, then systemd owns the unit', () => {
  it('a unit that stopped after the agent started it is not started again', () => {
    const m = new LaunchMemory();
    const c1 = current('inactive');
    m.annotate(desired('launched'), c1);
    const tasks = planTasks(desired('launched'), c1);
    expect(tasks.map((t) => t.type)).toEqual(['start']);
    for (const t of tasks) m.record(t, desired('launched'));

    const c2 = current('failed'); // it crashed
    m.annotate(desired('launched'), c2);
    expect(c2.get('a.service')!.settled).toBe(true);
    expect(planTasks(desired('launched'), c2)).toEqual([]);
  });

  it('a unit found running (agent restarted) is settled; a new hash launches again', () => {
    const m = new LaunchMemory();
    m.annotate(desired('launched'), current('active'));
    const c = current('inactive');
    m.annotate(desired('launched'), c);
    expect(planTasks(desired('launched'), c)).toEqual([]);
    const next = current('inactive');
    m.annotate(desired('launched', 'h2'), next);
    expect(planTasks(desired('launched', 'h2'), next).map((t) => t.type)).toEqual(['write-file', 'reload', 'start']);
  });

  it('loaded then launched again starts it again', () => {
    const m = new LaunchMemory();
    m.annotate(desired('launched'), current('active'));
    m.annotate(desired('loaded'), current('active'));
    m.record({ type: 'stop', unit: 'a.service', reason: REASONS.shouldBeLoaded }, desired('loaded'));
    const c = current('inactive');
    m.annotate(desired('launched'), c);
    expect(c.get('a.service')!.settled).toBe(false);
    expect(planTasks(desired('launched'), c).map((t) => t.type)).toEqual(['start']);
  });
});
