/**
 * The closing `N passed, N failed, N skipped` line (test/reporters/summary.ts)
 * never says clean for a failed run: vitest runs small files that fail on
 * purpose (test/fixtures/reporter/) in a child process with that reporter.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

const execFileP = promisify(execFile);

async function summaryOf(fixture: string, config = 'vitest.config.ts'): Promise<{ code: number; last: string; stdout: string }> {
  const args = ['node_modules/vitest/vitest.mjs', 'run', '--config', `test/fixtures/reporter/${config}`];
  const env = { ...process.env, FLEETX_REPORTER_FIXTURE: `${fixture}.fixture.ts`, CI: 'true' };
  const r = await execFileP(process.execPath, args, { cwd: REPO, env, timeout: 60_000 }).then(
    (ok) => ({ code: 0, stdout: ok.stdout }),
    (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '' }),
  );
  const lines = r.stdout.trim().split('\n');
  return { code: r.code, last: lines.at(-1)!, stdout: r.stdout };
}

describe('the summary line', () => {
  it.each([
    { fixture: 'before-all-fails', line: '0 passed, 1 failed, 2 skipped', named: /failed outside a test: before-all-fails\.fixture\.ts: Error: the fixture could not start/ },
    { fixture: 'after-all-fails', line: '1 passed, 1 failed, 0 skipped', named: /failed outside a test: after-all-fails\.fixture\.ts > a suite that leaves something behind: AssertionError/ },
    { fixture: 'passes', line: '1 passed, 0 failed, 0 skipped', named: undefined },
  ])('$fixture: $line', async ({ fixture, line, named }) => {
    const r = await summaryOf(fixture);
    expect(r.last, r.stdout).toBe(line);
    expect(r.code).toBe(named ? 1 : 0);
    if (named) expect(r.stdout).toMatch(named);
    else expect(r.stdout).not.toMatch(/failed outside a test/);
  }, 90_000);

  it('a globalSetup that fails (no file runs): 1 failed', async () => {
    const r = await summaryOf('passes', 'vitest.global-setup.config.ts');
    expect(r.stdout).toMatch(/^0 passed, 1 failed, 0 skipped$/m);
    expect(r.code).toBe(1);
  }, 90_000);
});
