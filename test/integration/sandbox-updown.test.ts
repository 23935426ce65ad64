import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { bufferIo } from '../../src/cli/io.js';
import { sandboxCommand } from '../../src/cli/commands/sandbox.js';
import { openHost } from '../../src/sandbox/host.js';
import { mountsUnder } from '../../src/sandbox/mounts.js';
import { listProcs } from '../../src/sandbox/proc.js';
import { sandboxDown, sandboxStatus, sandboxUp, type SandboxStatus } from '../../src/sandbox/sandbox.js';
import { fleetx } from '../helpers/cli.js';
import { leftovers, testNet, testStateDir } from '../helpers/hosts.js';
import { waitFor } from '../helpers/wait.js';

const net = testNet();
const stateDir = testStateDir('updown');
const repoRoot = process.cwd();
const names = ['fxu-1', 'fxu-2'];
const opts = { hosts: 2, stateDir, repoRoot, bridge: net.bridge, subnet: net.prefix, hostPrefix: 'fxu' };

/** Local addresses etcd (by pid) listens on, from `ss`. */
function listenAddrs(pid: number): string[] {
  const out = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => l.trim().split(/\s+/)[3]!);
}

// Each `up` that boots hosts waits for cloud-init to provision them (release install, agent registered).
describe('sandbox up / status / down', { timeout: 300_000 }, () => {
  let first: SandboxStatus;

  afterAll(async () => {
    await sandboxDown(stateDir);
  });

  it('up from a separate process that exits: hosts and etcd outlive it', async () => {
    // The way the CLI runs: a process that starts everything and exits.
    const script = `
      import { sandboxUp } from './src/sandbox/sandbox.ts';
      const s = await sandboxUp(${JSON.stringify(opts)});
      process.stdout.write(JSON.stringify(s));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: repoRoot });
    const reported = JSON.parse(out) as SandboxStatus;
    expect(reported.healthy).toBe(true);

    first = await sandboxStatus(stateDir);
    expect(first).toMatchObject({ exists: true, healthy: true, bridge: { name: net.bridge, address: `${net.prefix}.1/24`, present: true } });
    expect(first.hosts.map((h) => [h.name, h.address, h.running])).toEqual([
      ['fxu-1', `${net.prefix}.11`, true],
      ['fxu-2', `${net.prefix}.12`, true],
    ]);
    expect(first.hosts[0]!.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(first.hosts[0]!.machineId).not.toBe(first.hosts[1]!.machineId);
  });

  it('etcd listens only on the bridge address, and the env file points there', async () => {
    const endpoint = `http://${net.prefix}.1:2379`;
    expect(first.etcd?.endpoints).toEqual([endpoint]);
    expect(listenAddrs(first.etcd!.pid!).sort()).toEqual([`${net.prefix}.1:2379`, `${net.prefix}.1:2380`]);
    const health = (await (await fetch(`${endpoint}/health`)).json()) as { health: string };
    expect(health.health).toBe('true');
    const env = execFileSync('sh', ['-c', '. "$1" && printf %s "$FLEETX_ENDPOINT"', 'sh', first.envFile!], { encoding: 'utf8' });
    expect(env).toBe(endpoint);
    const state = JSON.parse(readFileSync(`${stateDir}/state.json`, 'utf8')) as { etcd: { endpoints: string[] } };
    expect(state.etcd.endpoints).toEqual([endpoint]);
  });

  it('provisions every host by cloud-init from its seed: the agent unit pointed at the sandbox etcd, the release packed from the checkout', async () => {
    const state = JSON.parse(readFileSync(`${stateDir}/state.json`, 'utf8')) as { hosts: Array<{ name: string; instanceId: string }> };
    for (const name of names) {
      const host = openHost(`${stateDir}/hosts/${name}`)!;
      const status = await host.exec(['cloud-init', 'status', '--long']);
      expect(status.stdout).toMatch(/^status: done$/m);
      const iid = state.hosts.find((h) => h.name === name)!.instanceId;
      expect((await host.exec(['cloud-init', 'query', 'instance_id'])).stdout.trim()).toBe(iid);
      // The seed holds what can be credentials: root only.
      const modes = await host.exec(['stat', '-c', '%a %U %n', '/var/lib/cloud/seed/nocloud/user-data', '/var/lib/cloud/seed/nocloud/meta-data']);
      expect(modes.stdout.trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['600 root', '600 root']);
      const unit = await host.exec(['systemctl', 'cat', 'fleetx-agent.service']);
      expect(unit.stdout).toContain(`ExecStart=/usr/bin/node $FLEETX_NODE_FLAGS "/opt/fleetx/bin/fleetx.mjs" agent \\\n  --endpoint "http://${net.prefix}.1:2379" \\\n`);
      expect((await host.exec(['systemctl', 'is-enabled', 'fleetx-agent.service'])).stdout.trim()).toBe('enabled');
      // FLEETX_NODE_FLAGS (node's own flags, empty by default) expands to no argument at all
      const pid = (await host.exec(['systemctl', 'show', '-p', 'MainPID', '--value', 'fleetx-agent.service'])).stdout.trim();
      expect((await host.exec(['cat', `/proc/${pid}/cmdline`])).stdout.split('\0').slice(0, 3)).toEqual(['/usr/bin/node', '/opt/fleetx/bin/fleetx.mjs', 'agent']);
      const log = await host.exec(['cat', '/var/log/cloud-init-output.log']);
      expect(log.stdout).toContain(`fleetx: installed 0.1.0 from file://${stateDir}/release/fleetx-0.1.0.tgz`);
      // The host reaches etcd over the bridge.
      const r = await host.exec(['/usr/bin/node', '-e', `fetch('http://${net.prefix}.1:2379/health').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
      expect(r.stdout, r.stderr).toContain('"health":"true"');
    }
  });

  it('etcd runs with authentication: anonymous refused, the env file is the operator, hosts hold the agent\'s credentials 0600', async () => {
    const anonymous = await fleetx(['list-machines'], { FLEETX_ENDPOINT: first.etcd!.endpoints[0] });
    expect(anonymous.code).toBe(2);
    expect(anonymous.stderr).toMatch(/requires authentication/);
    // the env file, as a user sources it: the operator's user and a password FILE, never the password
    const sourced = execFileSync('sh', ['-c', '. "$1" && env | grep ^FLEETX_ETCD_', 'sh', first.envFile!], { encoding: 'utf8' });
    expect(sourced).toBe(`FLEETX_ETCD_USERNAME=fleetx-operator\nFLEETX_ETCD_PASSWORD_FILE=${stateDir}/etcd-operator.password\n`);
    for (const f of [first.envFile!, `${stateDir}/etcd-operator.password`, `${stateDir}/state.json`]) expect(statSync(f).mode & 0o777, f).toBe(0o600);
    const env = first.env!;
    await waitFor('both agents registered, as the operator sees them', async () => {
      const r = await fleetx(['list-machines', '--no-legend'], env);
      return r.code === 0 && r.stdout.trim().split('\n').length === 2;
    }, 30_000);
    const set = await fleetx(['secret', 'set', 'probe'], env, repoRoot, 'value-never-read');
    expect(set.code, set.stderr).toBe(0);
    expect(set.stderr).toBe(''); // the operator cannot read values back
    for (const name of names) {
      const host = openHost(`${stateDir}/hosts/${name}`)!;
      const st = await host.exec(['stat', '-c', '%a %U', '/etc/fleetx/secrets', '/etc/fleetx/secrets/fleetx-agent.env']);
      expect(st.stdout).toBe('700 root\n600 root\n');
      const ps = await host.exec(['ps', '-eo', 'args']);
      expect(ps.stdout).toContain('fleetx.mjs agent');
      expect(ps.stdout).not.toMatch(/password/i);
    }
    expect((await fleetx(['secret', 'rm', 'probe'], env)).code).toBe(0);
  });

  it('status --output json through the command', async () => {
    const io = bufferIo({}, repoRoot);
    await sandboxCommand({ action: 'status', output: 'json', stateDir }, io);
    const s = JSON.parse(io.out.join('')) as SandboxStatus;
    expect(s.healthy).toBe(true);
    expect(s.hosts.map((h) => h.machineId)).toEqual(first.hosts.map((h) => h.machineId));
    const text = bufferIo({}, repoRoot);
    await sandboxCommand({ action: 'status', output: 'text', stateDir }, text);
    expect(text.out.join('')).toMatch(/healthy[\s\S]*fxu-1[\s\S]*fxu-2/);
  });

  it('up again is a no-op on a healthy sandbox', async () => {
    const leaders = names.map((n) => openHost(`${stateDir}/hosts/${n}`)!.leaderPid);
    const pending = sandboxUp(opts);
    // A second up while one runs is refused rather than racing it.
    await expect(sandboxUp(opts)).rejects.toMatchObject({ kind: 'conflict' });
    const again = await pending;
    expect(again.etcd?.pid).toBe(first.etcd?.pid);
    expect(again.hosts).toEqual(first.hosts);
    expect(names.map((n) => openHost(`${stateDir}/hosts/${n}`)!.leaderPid)).toEqual(leaders);
  });

  it('up repairs a half-made sandbox: a dead host comes back with its identity, a dead etcd restarts', async () => {
    const host = openHost(`${stateDir}/hosts/fxu-2`)!;
    await host.exec(['sh', '-c', 'echo kept > /var/lib/fxu-marker']);
    await host.poweroff();
    process.kill(first.etcd!.pid!, 'SIGKILL');
    const broken = await sandboxStatus(stateDir);
    expect(broken.healthy).toBe(false);
    expect(broken.hosts[1]!.running).toBe(false);

    const repaired = await sandboxUp(opts);
    expect(repaired.healthy).toBe(true);
    expect(repaired.hosts.map((h) => h.machineId)).toEqual(first.hosts.map((h) => h.machineId));
    expect(repaired.etcd?.pid).not.toBe(first.etcd?.pid);
    const back = openHost(`${stateDir}/hosts/fxu-2`)!;
    expect((await back.exec(['cat', '/var/lib/fxu-marker'])).stdout).toBe('kept\n');
    // Same instance-id: cloud-init did not provision the rebooted host again; its agent came back enabled.
    const log = await back.exec(['cat', '/var/log/cloud-init-output.log']);
    expect(log.stdout.split('fleetx: installed').length - 1).toBe(1);
    expect((await back.exec(['systemctl', 'is-active', 'fleetx-agent.service'])).stdout.trim()).toBe('active');
  });

  it('up with fewer hosts removes the extra ones', async () => {
    const fewer = await sandboxUp({ ...opts, hosts: 1 });
    expect(fewer.healthy).toBe(true);
    expect(fewer.hosts.map((h) => h.name)).toEqual(['fxu-1']);
    expect(await leftovers(`${stateDir}/hosts/fxu-2`, undefined, [{ name: 'fxu-2', dir: `${stateDir}/hosts/fxu-2` }])).toEqual([]);
  });

  it('up with more hosts adds one the same way: a new instance-id, provisioned by cloud-init', async () => {
    const before = JSON.parse(readFileSync(`${stateDir}/state.json`, 'utf8')) as { hosts: Array<{ name: string; instanceId: string }> };
    const more = await sandboxUp(opts);
    expect(more.healthy).toBe(true);
    const after = JSON.parse(readFileSync(`${stateDir}/state.json`, 'utf8')) as { hosts: Array<{ name: string; instanceId: string }> };
    expect(after.hosts[0]!.instanceId).toBe(before.hosts[0]!.instanceId);
    const added = openHost(`${stateDir}/hosts/fxu-2`)!;
    expect((await added.exec(['cloud-init', 'query', 'instance_id'])).stdout.trim()).toBe(after.hosts[1]!.instanceId);
    expect((await added.exec(['cloud-init', 'status'])).stdout).toMatch(/status: done/);
    expect((await added.exec(['systemctl', 'is-active', 'fleetx-agent.service'])).stdout.trim()).toBe('active');
  });

  it('down removes everything, and is safe to run twice', async () => {
    const io = bufferIo({}, repoRoot);
    await sandboxCommand({ action: 'down', output: 'json', stateDir }, io);
    expect(JSON.parse(io.out.join(''))).toEqual({
      schema: 'fleetx/sandbox-down/v1',
      stateDir,
      removed: [`bridge ${net.bridge}`, 'etcd', 'host fxu-1', 'host fxu-2', 'registry'],
    });
    expect(await leftovers(stateDir, net.bridge, names.map((name) => ({ name, dir: `${stateDir}/hosts/${name}` })))).toEqual([]);
    expect(existsSync(stateDir)).toBe(false);
    expect(await sandboxDown(stateDir)).toEqual({ stateDir, removed: [] });
    expect((await sandboxStatus(stateDir)).exists).toBe(false);
  });
});

describe('sandbox down after a crash', { timeout: 300_000 }, () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await sandboxDown(d);
  });

  const nspawnStarted = (dir: string) => () =>
    listProcs().some((p) => p.argv[0]?.endsWith('systemd-nspawn') && p.argv.some((a) => a.startsWith(dir)));
  const mounted = (dir: string) => () => mountsUnder(dir).length > 0;

  it.each([
    ['once the first overlay is mounted', mounted],
    ['once the first nspawn runs', nspawnStarted],
  ])('cleans up after an up killed %s', async (_, when) => {
    const net2 = testNet();
    const dir = testStateDir('crash');
    dirs.push(dir);
    const o = { hosts: 2, stateDir: dir, repoRoot, bridge: net2.bridge, subnet: net2.prefix, hostPrefix: 'fxc' };
    const script = `import { sandboxUp } from './src/sandbox/sandbox.ts'; await sandboxUp(${JSON.stringify(o)});`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, stdio: 'ignore' });
    const ready = when(dir);
    // a bound, not a timing: up first sets up etcd's users and roles (bcrypt in etcd) and packs the release (npm pack), slow on a loaded machine
    const end = Date.now() + 180_000;
    while (!ready() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(ready()).toBe(true);

    const result = await sandboxDown(dir);
    expect(result.removed).toContain(`bridge ${net2.bridge}`);
    const hosts = ['fxc-1', 'fxc-2'].map((name) => ({ name, dir: `${dir}/hosts/${name}` }));
    expect(await leftovers(dir, net2.bridge, hosts)).toEqual([]);
  });
});
