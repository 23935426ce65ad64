/**
 * status / journal / ssh against sandbox hosts over real OpenSSH with host
 * keys checked: each host runs sshd with a key of its own, the sandbox
 * writes the client key and known_hosts, agents (from the shipped template)
 * run the unit.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/errors/errors.js';
import { openHost, type Host } from '../../src/sandbox/host.js';
import { listProcs } from '../../src/sandbox/proc.js';
import { sandboxDown, sandboxUp, type SandboxStatus } from '../../src/sandbox/sandbox.js';
import { BIN, fleetx } from '../helpers/cli.js';
import { leftovers, testNet, testStateDir } from '../helpers/hosts.js';
import { sleep, waitForWith } from '../helpers/wait.js';

const net = testNet();
const stateDir = testStateDir('remote');
const unitDir = `${stateDir}-units`;
const repoRoot = process.cwd();
const names = ['fxr-1', 'fxr-2'];
const UNIT = 'fxr-sleep.service';
const MARKER = 'fxr-marker-line';

let sandbox: SandboxStatus;
let env: NodeJS.ProcessEnv;
/** The host the unit landed on. */
let host: Host;

const until = waitForWith({ timeoutMs: 60_000, intervalMs: 300 });

describe('status, journal and ssh over SSH to sandbox hosts', () => {
  beforeAll(async () => {
    sandbox = await sandboxUp({ hosts: 2, stateDir, repoRoot, bridge: net.bridge, subnet: net.prefix, hostPrefix: 'fxr' });
    expect(sandbox.healthy).toBe(true);
    env = { ...sandbox.env };
    mkdirSync(unitDir, { recursive: true });
    writeFileSync(`${unitDir}/${UNIT}`, `[Unit]\nDescription=fxr sleeper\n\n[Service]\nExecStartPre=/bin/echo ${MARKER}\nExecStart=/bin/sleep infinity\n`);
    await until('two agents', async () => {
      const r = await fleetx(['list-machines', '--no-legend'], env);
      return r.code === 0 && r.stdout.trim().split('\n').length === 2 ? true : undefined;
    });
    const start = await fleetx(['start', '--no-block', UNIT], env, unitDir);
    expect(start.code, start.stderr).toBe(0);
    host = await until('the unit active on a host', async () => {
      for (const n of names) {
        const h = openHost(`${stateDir}/hosts/${n}`)!;
        if ((await h.exec(['systemctl', 'is-active', UNIT])).stdout.trim() === 'active') return h;
      }
      return undefined;
    });
  }, 400_000);

  afterAll(async () => {
    await sandboxDown(stateDir);
    rmSync(unitDir, { recursive: true, force: true });
    rmSync(`${stateDir}-swapped`, { force: true });
  });

  it('gives every host its own host key, and the sandbox a private client key', () => {
    const known = readFileSync(`${stateDir}/known_hosts`, 'utf8').trim().split('\n');
    expect(known.map((l) => l.split(' ')[0])).toEqual([`${net.prefix}.11`, `${net.prefix}.12`]);
    const keys = known.map((l) => l.split(' ').slice(1).join(' '));
    expect(new Set(keys).size).toBe(2);
    for (const k of keys) expect(k).toMatch(/^ssh-ed25519 \S+$/);
    const machineKey = readFileSync('/etc/ssh/ssh_host_ed25519_key.pub', 'utf8').split(' ').slice(0, 2).join(' ');
    expect(keys).not.toContain(machineKey);
    expect(statSync(`${stateDir}/id_ed25519`).mode & 0o777).toBe(0o600);
    const envText = readFileSync(`${stateDir}/env`, 'utf8');
    expect(envText).toContain(`export FLEETX_KNOWN_HOSTS_FILE='${stateDir}/known_hosts'`);
    expect(envText).toContain(`export FLEETX_SSH_IDENTITY_FILE='${stateDir}/id_ed25519'`);
    expect(envText).toContain("export FLEETX_SSH_USERNAME='root'");
  });

  it('sshd listens only inside the hosts, not on the machine', async () => {
    const machine = execFileSync('ss', ['-Hltn'], { encoding: 'utf8' });
    expect(machine.split('\n').filter((l) => /:22\s/.test(l))).toEqual([]);
    const inside = await host.exec(['ss', '-Hltn']);
    expect(inside.stdout).toMatch(/:22\s/);
  });

  it('installs the agent unit rendered from the shipped template (by cloud-init, running the packed release)', async () => {
    const unit = await host.exec(['systemctl', 'cat', 'fleetx-agent.service']);
    expect(unit.stdout).toContain(`ExecStart=/usr/bin/node $FLEETX_NODE_FLAGS "/opt/fleetx/bin/fleetx.mjs" agent \\\n  --endpoint "http://${net.prefix}.1:2379" \\\n`);
    expect(unit.stdout).toContain('EnvironmentFile=-/etc/fleetx/secrets/fleetx-agent.env');
    expect((await host.exec(['systemctl', 'is-active', 'fleetx-agent.service'])).stdout.trim()).toBe('active');
  });

  it('status shows the unit running on its machine', async () => {
    const r = await fleetx(['status', UNIT], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Active: active (running)');
    expect(r.stdout).toContain(UNIT);
  });

  it('status of several units runs the sessions side by side and prints each whole, in order', async () => {
    const r = await fleetx(['status', UNIT, UNIT, UNIT], env);
    expect(r.code, r.stderr).toBe(0);
    const blocks = r.stdout.split(/\n(?=● )/);
    expect(blocks).toHaveLength(3);
    for (const b of blocks) {
      expect(b.startsWith(`● ${UNIT}`)).toBe(true);
      expect(b).toContain('Active: active (running)');
    }
  });

  it('journal --lines prints the unit\'s journal', async () => {
    const r = await fleetx(['journal', '--lines', '5', UNIT], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(MARKER);
    expect(r.stdout.split('\n').length).toBeLessThanOrEqual(6); // 5 entries (+ a "-- Boot" header at most)
  });

  it('ssh to the machine of a unit, and to a machine by ID prefix', async () => {
    const byUnit = await fleetx(['ssh', UNIT, '--', 'cat', '/etc/hostname'], env);
    expect(byUnit.code, byUnit.stderr).toBe(0);
    expect(byUnit.stdout.trim()).toBe(host.name);
    const byId = await fleetx(['ssh', host.machineId.slice(0, 8), '--', 'systemctl', 'is-active', UNIT], env);
    expect(byId.code, byId.stderr).toBe(0);
    expect(byId.stdout.trim()).toBe('active');
  });

  it.each([
    ['spaces, ; and $(...)', 'a b;$(id)'],
    ['quotes and backticks', `it's "quoted" \`id\``],
    ['glob, redirection and a newline', '* > /tmp/x\nsecond'],
    ['empty', ''],
  ])('passes a remote argument with %s literally', async (_, arg) => {
    const r = await fleetx(['ssh', UNIT, '--', 'printf', '%s', arg], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(arg);
  });

  it('passes on the remote exit status', async () => {
    const r = await fleetx(['ssh', UNIT, '--', 'sh', '-c', 'exit 7'], env);
    expect(r.code).toBe(7);
  });

  it('refuses a host whose key does not match known_hosts (exit 6)', async () => {
    // Swap the two hosts' keys: each address now names the other host's key.
    const lines = readFileSync(`${stateDir}/known_hosts`, 'utf8').trim().split('\n').map((l) => l.split(' '));
    const swapped = lines.map((l, i) => [l[0], ...lines[1 - i]!.slice(1)].join(' ')).join('\n');
    writeFileSync(`${stateDir}-swapped`, `${swapped}\n`);
    for (const r of [
      await fleetx(['ssh', UNIT, '--', 'true'], { ...env, FLEETX_KNOWN_HOSTS_FILE: `${stateDir}-swapped` }),
      await fleetx(['status', '--known-hosts-file', `${stateDir}-swapped`, UNIT], env),
    ]) {
      expect(r.code).toBe(EXIT.unavailable);
      expect(r.stderr).toMatch(/host key does not match/);
      expect(r.stdout).not.toContain('Active:');
    }
  });

  it('refuses an unknown host (no known_hosts entry) under strict checking', async () => {
    writeFileSync(`${stateDir}-swapped`, '');
    const r = await fleetx(['ssh', UNIT, '--', 'true'], { ...env, FLEETX_KNOWN_HOSTS_FILE: `${stateDir}-swapped` });
    expect(r.code).toBe(EXIT.unavailable);
    expect(r.stderr).toMatch(/no SSH host key is on record for it/);
  });

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('journal -f follows until %s, then exits (%i) and leaves nothing running on either side', async (sig, status) => {
    const child = spawn(process.execPath, [BIN, 'journal', '-f', '--lines', '3', UNIT], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await until('journal output', async () => (out.split('\n').length > 3 ? true : undefined), 20_000).catch((e: Error) => {
      throw new Error(`${e.message}; stderr: ${err}`);
    });
    // A new entry shows up while following.
    const seen = out.split(MARKER).length;
    await host.exec(['systemctl', 'restart', UNIT]);
    await until('a followed entry', async () => (out.split(MARKER).length > seen ? true : undefined), 20_000);
    expect((await host.exec(['pgrep', '-x', 'journalctl'])).code).toBe(0);
    expect(listProcs().some((p) => p.argv[0] === 'ssh' && p.argv.some((a) => a.includes(stateDir)))).toBe(true);

    child.kill(sig);
    const code = await Promise.race([exited, sleep(10_000).then(() => 'hung' as const)]);
    expect(code).toBe(status);
    expect(err).toContain(`interrupted by ${sig}`);
    await until('ssh gone', async () => (listProcs().some((p) => p.argv[0] === 'ssh' && p.argv.some((a) => a.includes(stateDir))) ? undefined : true));
    await until('journalctl gone on the host', async () => ((await host.exec(['pgrep', '-x', 'journalctl'])).code === 0 ? undefined : true), 10_000);
  });

  it('journal -f SIGKILLed (no chance to clean up): ssh and the remote journalctl still end', async () => {
    const child = spawn(process.execPath, [BIN, 'journal', '-f', '--lines', '1', UNIT], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
    await until('journal output', async () => (out.length > 0 ? true : undefined), 20_000);
    await until('journalctl following on the host', async () => ((await host.exec(['pgrep', '-f', 'journalctl.*--follow'])).code === 0 ? true : undefined), 20_000);
    const ssh = () => listProcs().filter((p) => p.argv[0] === 'ssh' && p.argv.some((a) => a.includes(stateDir)));
    expect(ssh()).toHaveLength(1);

    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // the unit logs nothing meanwhile: the end comes from the closed input, not from a write failing
    await until('ssh gone', async () => (ssh().length === 0 ? true : undefined), 20_000);
    await until('journalctl gone on the host', async () => ((await host.exec(['pgrep', '-f', 'journalctl.*--follow'])).code === 0 ? undefined : true), 20_000);
    expect((await host.exec(['pgrep', '-f', 'fleetx-remote'])).code).toBe(1);
  });

  it('down removes everything, keys and known_hosts too', async () => {
    await sandboxDown(stateDir);
    expect(await leftovers(stateDir, net.bridge, names.map((name) => ({ name, dir: `${stateDir}/hosts/${name}` })))).toEqual([]);
  });
});
