/**
 * bin/fleetx.mjs runs the build in dist/. Tests and sandbox hosts spawn it,
 * so it must never run a build older than the sources beside it: it refuses,
 * saying how to build, when dist/ is missing or older than a file in src/.
 * Each case copies the real entry point into a scratch tree.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';

const execFileP = promisify(execFile);
let root: string;

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function tree(files: Record<string, { text: string; ageS?: number }>): Promise<string> {
  root = await mkdtemp(join(tmpdir(), 'fleetx-bin-'));
  await mkdir(join(root, 'bin'));
  await copyFile(BIN, join(root, 'bin', 'fleetx.mjs'));
  for (const [path, f] of Object.entries(files)) {
    const full = join(root, path);
    await mkdir(join(full, '..'), { recursive: true });
    await writeFile(full, f.text);
    const at = new Date(Date.now() - (f.ageS ?? 0) * 1000);
    await utimes(full, at, at);
  }
  return join(root, 'bin', 'fleetx.mjs');
}

async function run(bin: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [bin, '--version']);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const main = { text: 'export async function runCli() { console.log("ran the build"); }\n' };

describe('bin/fleetx.mjs and the build', () => {
  it('refuses without dist/, saying how to build', async () => {
    const r = await run(await tree({ 'src/cli/main.ts': { text: '' } }));
    expect(r.code).toBe(70);
    expect(r.stderr).toContain('dist/ is missing');
    expect(r.stderr).toContain('npm run build');
    expect(r.stdout).toBe('');
  });

  it('refuses a build older than a source file, naming it', async () => {
    const r = await run(await tree({
      'dist/cli/main.js': { ...main, ageS: 60 },
      'dist/.tsbuildinfo': { text: '{}', ageS: 60 },
      'src/cli/main.ts': { text: '', ageS: 120 },
      'src/agent/agent.ts': { text: '', ageS: 1 },
    }));
    expect(r.code).toBe(70);
    expect(r.stderr).toContain('dist/ is older than src/agent/agent.ts');
    expect(r.stderr).toContain('npm run build');
    expect(r.stdout).toBe('');
  });

  it('runs a build newer than every source file', async () => {
    const r = await run(await tree({
      'dist/cli/main.js': { ...main, ageS: 1 },
      'dist/.tsbuildinfo': { text: '{}', ageS: 1 },
      'src/cli/main.ts': { text: '', ageS: 60 },
    }));
    expect(r).toMatchObject({ code: 0, stdout: 'ran the build\n' });
  });

  it('runs an installed package (dist/ without src/ or build info)', async () => {
    const r = await run(await tree({ 'dist/cli/main.js': main }));
    expect(r).toMatchObject({ code: 0, stdout: 'ran the build\n' });
  });
});
