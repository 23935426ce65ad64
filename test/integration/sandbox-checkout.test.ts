/**
 * The main job from any checkout: a clone under /tmp (which every host
 * replaces with a tmpfs of its own) runs its agents, and an agent that
 * cannot start is reported by `up` with the host's name and its journal.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/registry/client.js';
import { keyspace } from '../../src/registry/keys.js';
import { sandboxConnection } from '../../src/sandbox/state.js';
import { openHost } from '../../src/sandbox/host.js';
import { sandboxDown, sandboxUp } from '../../src/sandbox/sandbox.js';
import { leftovers, testNet, testStateDir } from '../helpers/hosts.js';

const REPO = process.cwd();

/** A git clone of this checkout (its committed files plus the working tree's changes) and its node_modules, under /tmp. */
function cloneUnderTmp(): string {
  const dir = mkdtempSync('/tmp/fleetx-checkout-');
  const clone = join(dir, 'fleetx');
  execFileSync('git', ['clone', '-q', '--no-hardlinks', REPO, clone]);
  // Uncommitted work of this checkout, so the clone runs the code under test.
  for (const f of ['src', 'bin', 'units', 'demo', 'services']) cpSync(join(REPO, f), join(clone, f), { recursive: true });
  cpSync(join(REPO, 'node_modules'), join(clone, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  // What `npm ci` ends with (its prepare script): bin/fleetx.mjs runs dist/.
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: clone, stdio: 'ignore', timeout: 300_000 });
  return dir;
}

describe('a sandbox from a checkout under /tmp', { timeout: 400_000 }, () => {
  const net = testNet();
  const stateDir = testStateDir('tmpco');
  // nspawn machine names are global: unique per run, as the other fixtures do
  const prefix = `fxk${randomBytes(1).toString('hex')}`;
  let tmp = '';
  let clone = '';

  beforeAll(() => {
    tmp = cloneUnderTmp();
    clone = join(tmp, 'fleetx');
  }, 360_000);
  afterAll(async () => {
    await sandboxDown(stateDir);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('runs the agent from the clone\'s release in every host, which registers its machine', async () => {
    const s = await sandboxUp({ hosts: 2, stateDir, repoRoot: clone, bridge: net.bridge, subnet: net.prefix, hostPrefix: prefix }).catch((e: unknown) => {
      // the lines `up` quotes are in the hint, which vitest does not print
      console.error((e as { hint?: string }).hint ?? '');
      throw e;
    });
    expect(s.healthy).toBe(true);
    // Hosts install `npm pack` of the clone: the code under test, not a copy of something else.
    const cli = readFileSync(join(clone, 'dist', 'cli', 'main.js'), 'utf8');
    for (const h of s.hosts) {
      const host = openHost(`${stateDir}/hosts/${h.name}`)!;
      expect((await host.exec(['cat', '/opt/fleetx/dist/cli/main.js'])).stdout).toBe(cli);
      expect((await host.exec(['systemctl', 'show', '-p', 'ExecStart', '--value', 'fleetx-agent.service'])).stdout).toContain('/opt/fleetx/bin/fleetx.mjs');
      // The clone is still seen read-only at its own path, though the host's /tmp is its own.
      const probe = await host.exec(['sh', '-c', 'test -r "$1/bin/fleetx.mjs" && touch "$1/x" 2>&1; findmnt -no OPTIONS --target "$1"', 'sh', clone]);
      expect(probe.stdout).toMatch(/Read-only file system[\s\S]*\bro\b/);
      expect((await host.exec(['systemctl', 'is-active', 'fleetx-agent.service'])).stdout.trim()).toBe('active');
    }
    const client = connect(sandboxConnection(stateDir));
    try {
      // Registering follows the agent's start; wait for the outcome (bounded).
      const ids = s.hosts.map((h) => h.machineId);
      let registered: string[] = [];
      for (let i = 0; i < 120 && !ids.every((id) => registered.some((k) => k.includes(id))); i++) {
        await new Promise((r) => setTimeout(r, 250));
        registered = await client.getAll().prefix(keyspace('/fleetx').machines()).keys();
      }
      expect(ids.filter((id) => !registered.some((k) => k.includes(id)))).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('a release that cannot start fails up, naming the host and quoting cloud-init\'s reason', async () => {
    writeFileSync(join(clone, 'bin', 'fleetx.mjs'), "throw new Error('fleetx-checkout-test: this agent cannot start');\n");
    await sandboxDown(stateDir);
    const up = sandboxUp({ hosts: 1, stateDir, repoRoot: clone, bridge: net.bridge, subnet: net.prefix, hostPrefix: prefix });
    await expect(up).rejects.toMatchObject({
      kind: 'failed',
      message: expect.stringMatching(new RegExp(`^host ${prefix}-1: provisioning by cloud-init failed \\(status error.*\\): the release at file://\\S+ does not run`)),
      hint: expect.stringContaining('fleetx-checkout-test: this agent cannot start'),
    });
    await sandboxDown(stateDir);
    expect(await leftovers(stateDir, net.bridge, [{ name: `${prefix}-1`, dir: `${stateDir}/hosts/${prefix}-1` }])).toEqual([]);
  });
});
