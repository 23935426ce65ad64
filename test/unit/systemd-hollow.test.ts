/**
 * The hollow systemd driver (control-plane benchmarks only) keeps the
 * Systemd contract the agent relies on: files load at reload, jobs change
 * state and signal it, a unit that is not loaded cannot start. And the real
 * planner over it converges: a second pass plans nothing.
 */
import { describe, expect, it } from 'vitest';
import { planTasks } from '../../src/agent/plan.js';
import { readCurrent } from '../../src/agent/current.js';
import { runTasks } from '../../src/agent/run.js';
import type { DesiredUnit } from '../../src/agent/types.js';
import { HollowSystemd } from '../../src/systemd/hollow.js';
import type { UnitStatus } from '../../src/systemd/types.js';

const BODY = '[Service]\nExecStart=/bin/true';

describe('HollowSystemd', () => {
  it('loads a new file on demand, starts and stops it, signalling each change; no file, no start', async () => {
    const sd = new HollowSystemd();
    const seen: UnitStatus[] = [];
    sd.onUnitChange((s) => seen.push(s));
    expect(await sd.start('a.service')).toBe('failed');
    expect(await sd.writeUnitFile('a.service', BODY)).toBe(true);
    expect(await sd.writeUnitFile('a.service', `${BODY}\n`)).toBe(false); // same content once the newline is added
    expect(await sd.readUnitFile('a.service')).toBe(`${BODY}\n`);
    expect((await sd.status('a.service')).loadState).toBe('loaded');
    await sd.reload();
    expect(await sd.start('a.service')).toBe('done');
    await Promise.resolve();
    expect(await sd.listUnits(['a.service', 'b.service'])).toEqual([
      { name: 'a.service', loadState: 'loaded', activeState: 'active', subState: 'running' },
      { name: 'b.service', loadState: 'not-found', activeState: 'inactive', subState: 'dead' },
    ]);
    expect(await sd.stop('a.service')).toBe('done');
    await Promise.resolve();
    expect(seen.map((s) => `${s.loadState}/${s.activeState}`)).toEqual(['loaded/active', 'loaded/inactive']);
    expect(await sd.removeUnitFile('a.service')).toBe(true);
    await sd.reload();
    expect(await sd.listUnitFiles()).toEqual([]);
    expect((await sd.status('a.service')).loadState).toBe('not-found');
  });

  it('refuses bad names and use after close', async () => {
    const sd = new HollowSystemd();
    await expect(sd.writeUnitFile('../x.service', BODY)).rejects.toMatchObject({ kind: 'invalid' });
    await sd.close();
    await expect(sd.listUnits()).rejects.toMatchObject({ kind: 'usage' });
  });

  it('under the real planner: one pass launches the schedule, the next plans nothing', async () => {
    const sd = new HollowSystemd();
    const desired = new Map<string, DesiredUnit>([
      ['a.service', { name: 'a.service', hash: 'h1', targetState: 'launched', hasInstall: false, available: true }],
      ['b.service', { name: 'b.service', hash: 'h1', targetState: 'loaded', hasInstall: false, available: true }],
    ]);
    const hashOf = (t: string) => (t === `${BODY}\n` ? 'h1' : undefined);
    const pass = async () => {
      const { current } = await readCurrent(sd, desired.keys(), hashOf);
      for (const c of current.values()) if (c.fileHash !== undefined && c.activeState === 'active') c.settled = true;
      const tasks = planTasks(desired, current);
      const outcome = await runTasks(tasks, { systemd: sd, bodyOf: () => BODY });
      expect(outcome.failures).toEqual([]);
      return tasks.map((t) => `${t.type} ${'unit' in t ? t.unit : t.units.join(',')}`);
    };
    // new units: no daemon-reload, systemd loads them when the start names them (agent/plan.ts)
    expect(await pass()).toEqual(['write-file a.service', 'write-file b.service', 'start a.service']);
    expect(await pass()).toEqual([]);
    expect((await sd.listUnits()).map((s) => `${s.name} ${s.activeState}`)).toEqual(['a.service active', 'b.service inactive']);
  });
});
