/**
 * The agent's pre-pull (src/agent/prepull.ts) with the runtime replaced by a
 * recorded argv and a chosen outcome: what it runs, what it reports, and
 * that a unit no longer asking is forgotten.
 */
import { describe, expect, it } from 'vitest';
import { PrePuller, type PullRun } from '../../src/agent/prepull.js';
import type { PullReport } from '../../src/registry/records.js';

const body = (image: string) => `[Service]\nExecStartPre=-/usr/bin/podman rm -f app-%i\nExecStartPre=/usr/bin/podman pull ${image}\nExecStart=/usr/bin/podman run --name app-%i ${image}\n`;

function setup(outcome: PullRun) {
  const reports: Array<[string, PullReport | undefined]> = [];
  const ran: string[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const puller = new PrePuller({
    report: (u, r) => reports.push([u, r]),
    now: () => new Date('2026-01-01T00:00:00Z'),
    run: async (argv) => {
      ran.push(argv);
      await gate;
      return outcome;
    },
  });
  return { puller, reports, ran, release };
}

describe('PrePuller', () => {
  it('runs the unit\'s own pull argv, reports pulling, then pulled; a repeat asks nothing more', async () => {
    const t = setup({ code: 0, stderr: '' });
    t.puller.sync([{ unit: 'app@1.service', hash: 'h2', text: body('reg/app:v2') }]);
    t.puller.sync([{ unit: 'app@1.service', hash: 'h2', text: body('reg/app:v2') }]);
    expect(t.ran).toEqual([['/usr/bin/podman', 'pull', 'reg/app:v2']]);
    expect(t.reports.map(([, r]) => r?.state)).toEqual(['pulling']);
    t.release();
    await t.puller.stop();
    expect(t.reports.at(-1)).toEqual(['app@1.service', expect.objectContaining({ hash: 'h2', state: 'pulled', image: 'reg/app:v2' })]);
  });

  it('a failed pull reports the runtime\'s last lines', async () => {
    const t = setup({ code: 125, stderr: 'Trying to pull reg/app:nope...\nError: initializing source docker://reg/app:nope: reading manifest nope in reg/app: manifest unknown\n' });
    t.puller.sync([{ unit: 'app@1.service', hash: 'h3', text: body('reg/app:nope') }]);
    t.release();
    await t.puller.stop();
    const last = t.reports.at(-1)![1]!;
    expect(last.state).toBe('failed');
    expect(last.message).toMatch(/^\/usr\/bin\/podman pull reg\/app:nope: exit 125: .*manifest unknown$/);
  });

  it('a body without a pull step reports none and runs nothing; a body not fetched yet waits', () => {
    const t = setup({ code: 0, stderr: '' });
    t.puller.sync([{ unit: 'a.service', hash: 'h', text: '[Service]\nExecStart=/bin/true\n' }, { unit: 'b.service', hash: 'h' }]);
    expect(t.ran).toEqual([]);
    expect(t.reports).toEqual([['a.service', expect.objectContaining({ state: 'none' })]]);
  });

  it('a unit no longer asking (or asking for another body) is forgotten: its report cleared, the new body pulled', async () => {
    const t = setup({ code: 0, stderr: '' });
    t.puller.sync([{ unit: 'app@1.service', hash: 'h2', text: body('reg/app:v2') }]);
    t.puller.sync([{ unit: 'app@1.service', hash: 'h3', text: body('reg/app:v3') }]);
    t.puller.sync([]);
    t.release();
    await t.puller.stop();
    expect(t.ran.map((a) => a[2])).toEqual(['reg/app:v2', 'reg/app:v3']);
    expect(t.reports.map(([, r]) => r?.state ?? 'cleared')).toEqual(['pulling', 'cleared', 'pulling', 'cleared']);
  });
});
