/**
 * Boot-time provisioning end to end: nspawn hosts (real systemd) boot with a
 * NoCloud seed holding user-data from `fleetx cloud-config render`, and
 * Debian's cloud-init inside them does all the set-up: installs the release
 * tarball (made here with `npm pack`, served as a file:// URL; the stand-in
 * for an https URL, same script, same checksum check), writes the agent's
 * configuration and unit, starts it and waits for its registration.
 * Node comes from the machine's root (packages.preinstalled): sandbox hosts
 * have no route to a package mirror.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderRole } from '../../src/provision/provision.js';
import { connect } from '../../src/registry/client.js';
import { keyspace } from '../../src/registry/keys.js';
import type { MachineRecord, UnitStateRecord } from '../../src/registry/records.js';
import { startEtcd, stopEtcd } from '../../src/sandbox/etcd.js';
import { bootHost, destroyHostDir, type Host, type HostSpec } from '../../src/sandbox/host.js';
import { createBridge, deleteBridge } from '../../src/sandbox/network.js';
import { fleetx, REPO } from '../helpers/cli.js';
import { leftovers, testNet, testStateDir } from '../helpers/hosts.js';

const run = promisify(execFile);
const net = testNet();
const base = testStateDir('cloudinit');
const etcdUrl = `http://${net.prefix}.1:2379`;
const etcdSpec = { dataDir: `${base}/etcd`, logFile: `${base}/etcd.log`, clientUrl: etcdUrl, peerUrl: `http://${net.prefix}.1:2380` };
const keys = keyspace('/fleetx');
const env = { FLEETX_ENDPOINT: etcdUrl };
const NO_RUNTIME = `${REPO}test/fixtures/cloud-config/no-runtime.yaml`;
const CLOUD_INIT_UNITS = ['cloud-init-local.service', 'cloud-init.service', 'cloud-config.service', 'cloud-final.service'];
const SECRET = 'SeCrEt-not-in-any-log-7f3a';

let etcd: Etcd3;
let release: { url: string; sha256: string };
const hosts: Array<{ name: string; dir: string }> = [];

function userData(sets: string[]): string {
  return renderRole({
    role: 'worker',
    files: [NO_RUNTIME],
    sets: [`fleetx.url=${release.url}`, `fleetx.sha256=${release.sha256}`, 'packages.preinstalled=true', ...sets],
    cwd: REPO,
  }).text;
}

function seeded(name: string, address: string, instanceId: string, text: string, reboot?: { machineId: string }): HostSpec {
  const dir = `${base}/${name}`;
  if (!hosts.some((h) => h.name === name)) hosts.push({ name, dir });
  return {
    name,
    stateDir: dir,
    bridge: { name: net.bridge, address: `${address}/24` },
    files: {
      '/var/lib/cloud/seed/nocloud/meta-data': `instance-id: ${instanceId}\nlocal-hostname: ${name}\n`,
      '/var/lib/cloud/seed/nocloud/user-data': text,
    },
    enable: CLOUD_INIT_UNITS,
    // A reboot keeps the disk (upper layer) and the machine's identity.
    reuseState: reboot !== undefined,
    machineId: reboot?.machineId,
    bootTimeoutMs: 180_000,
  };
}

async function sh(host: Host, argv: string[], timeoutMs = 240_000) {
  return host.exec(argv, { timeoutMs });
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false | null>, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > end) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

beforeAll(async () => {
  mkdirSync(base, { recursive: true });
  // The release hosts install: `npm pack` of this checkout, dependencies bundled.
  const { stdout } = await run('npm', ['pack', '--pack-destination', base, '--silent'], { cwd: REPO, timeout: 240_000 });
  const tgz = `${base}/${stdout.trim().split('\n').at(-1)}`;
  release = { url: `file://${tgz}`, sha256: createHash('sha256').update(readFileSync(tgz)).digest('hex') };
  await createBridge(net.bridge, `${net.prefix}.1/24`);
  await startEtcd(etcdSpec);
  etcd = connect({ endpoints: [etcdUrl], requestTimeoutMs: 3000, prefix: '/fleetx' });
}, 300_000);

afterAll(async () => {
  etcd?.close();
  for (const h of hosts) await destroyHostDir(h.dir, 5_000).catch(() => undefined);
  await stopEtcd(etcdSpec.dataDir);
  await deleteBridge(net.bridge).catch(() => undefined);
  rmSync(base, { recursive: true, force: true });
  expect(await leftovers(base, net.bridge, hosts)).toEqual([]);
}, 120_000);

describe('a host provisioned by cloud-init from rendered user-data', () => {
  let host: Host;

  it('boots: cloud-init done without errors, the agent registered with the role\'s metadata, the first unit active', async () => {
    // Desired state first, as in a running cluster: a unit waiting for a machine.
    const unitFile = `${base}/hello.service`;
    writeFileSync(unitFile, '[Unit]\nDescription=hello\n[Service]\nExecStart=/bin/sleep infinity\n');
    const started = await fleetx(['start', '--no-block', unitFile], env);
    expect(started.code, started.stderr).toBe(0);

    const t0 = Date.now();
    host = await bootHost(seeded('fxt-ci-ok', `${net.prefix}.11`, 'iid-ok-1', userData([`etcd.endpoints[0]=${etcdUrl}`])));
    const tBooted = Date.now();
    const status = await sh(host, ['cloud-init', 'status', '--wait', '--long']);
    const tDone = Date.now();
    expect(status.stdout).toMatch(/^status: done$/m);
    expect(status.code, status.stdout).toBe(0);

    const machine = await until('machine record', async () => (await etcd.get(keys.machine(host.machineId)).json()) as MachineRecord | null);
    const tRegistered = Date.now();
    expect(machine).toMatchObject({ ip: `${net.prefix}.11`, hostname: 'fxt-ci-ok', metadata: { role: 'worker', zone: 'zone-a', tier: 'backend' } });
    const state = await until('hello.service active', async () => {
      const s = (await etcd.get(keys.state(host.machineId, 'hello.service')).json()) as UnitStateRecord | null;
      return s?.activeState === 'active' ? s : undefined;
    });
    const tActive = Date.now();
    expect(state.subState).toBe('running');
    // Figures, not assertions (see cloud-config/README.md): wall-clock from bootHost's start.
    console.log(`cloud-init boot: systemd up ${tBooted - t0} ms, cloud-init done ${tDone - t0} ms, registered ${tRegistered - t0} ms, first unit active ${tActive - t0} ms`);
  }, 400_000);

  it('wrote the secrets dir 0700 and its files 0600; installed fleetx from the release', async () => {
    const ls = await sh(host, ['stat', '-c', '%n %a %U', '/etc/fleetx/secrets', '/etc/fleetx/secrets/fleetx-agent.env', '/var/lib/cloud/instance/user-data.txt']);
    expect(ls.stdout.trim().split('\n')).toEqual(['/etc/fleetx/secrets 700 root', '/etc/fleetx/secrets/fleetx-agent.env 600 root', '/var/lib/cloud/instance/user-data.txt 600 root']);
    const out = await sh(host, ['cat', '/var/log/cloud-init-output.log']);
    expect(out.stdout).toContain(`fleetx: installed 0.1.0 from ${release.url}`);
    expect(out.stdout).toContain('fleetx: agent registered');
  });

  it('a reboot does not provision again; the agent comes back by itself', async () => {
    const before = (await etcd.get(keys.machine(host.machineId)).json()) as MachineRecord;
    await host.poweroff();
    host = await bootHost(seeded('fxt-ci-ok', `${net.prefix}.11`, 'iid-ok-1', userData([`etcd.endpoints[0]=${etcdUrl}`]), { machineId: host.machineId }));
    const status = await sh(host, ['cloud-init', 'status', '--wait']);
    expect(status.stdout).toMatch(/status: done/);
    const out = await sh(host, ['cat', '/var/log/cloud-init-output.log']);
    expect(count(out.stdout, 'fleetx: installed')).toBe(1);
    const active = await until('agent active', async () => (await sh(host, ['systemctl', 'is-active', 'fleetx-agent'])).stdout.trim() === 'active');
    expect(active).toBe(true);
    const again = await until('machine record', async () => (await etcd.get(keys.machine(host.machineId)).json()) as MachineRecord | null);
    expect(again.id).toBe(before.id);
  }, 400_000);

  it('a new instance-id provisions again', async () => {
    await host.poweroff();
    host = await bootHost(seeded('fxt-ci-ok', `${net.prefix}.11`, 'iid-ok-2', userData([`etcd.endpoints[0]=${etcdUrl}`]), { machineId: host.machineId }));
    const status = await sh(host, ['cloud-init', 'status', '--wait']);
    expect(status.stdout).toMatch(/status: done/);
    const out = await sh(host, ['cat', '/var/log/cloud-init-output.log']);
    expect(count(out.stdout, 'fleetx: installed')).toBe(2);
    expect(count(out.stdout, 'fleetx: agent registered')).toBe(2);
  }, 400_000);
});

describe('a provisioning step that fails', () => {
  let host: Host;

  beforeAll(async () => {
    // Nothing listens on port 2999: the agent cannot register.
    const text = userData([`etcd.endpoints[0]=http://${net.prefix}.1:2999`, 'registerTimeout=15', 'etcd.username=agent', `secrets.etcdPassword=${SECRET}`]);
    host = await bootHost(seeded('fxt-ci-bad', `${net.prefix}.12`, 'iid-bad-1', text));
  }, 300_000);

  it('leaves status error naming the failed module, and fleetx\'s reason with the agent\'s own lines in the output log', async () => {
    const status = await sh(host, ['cloud-init', 'status', '--wait', '--long']);
    expect(status.code).not.toBe(0);
    expect(status.stdout).toMatch(/^status: error$/m);
    expect(status.stdout).toMatch(/scripts-user.*runcmd/);
    const out = await sh(host, ['cat', '/var/log/cloud-init-output.log']);
    expect(out.stdout).toMatch(/fleetx: the agent did not register in etcd within 15s; from journalctl -u fleetx-agent:/);
    expect(out.stdout).toContain(`agent starting; etcd endpoints ["http://${net.prefix}.1:2999"]`);
    const journal = await sh(host, ['journalctl', '-u', 'fleetx-agent', '-o', 'cat', '--no-pager']);
    expect(journal.stdout).toContain(`"endpoints":["http://${net.prefix}.1:2999"]`);
    expect(journal.stdout).not.toContain('machine registered');
  }, 400_000);

  it('keeps the etcd password out of every log and world-readable file; it is only in 0600/0400 files', async () => {
    const found = await sh(host, ['grep', '-rl', '--', SECRET, '/var/log', '/run/cloud-init', '/var/lib/cloud', '/etc']);
    const files = found.stdout.trim().split('\n').sort();
    expect(files.filter((f) => f.startsWith('/var/log') || f.startsWith('/run/'))).toEqual([]);
    // The seed itself is written by the test harness (bootHost writes files 0644), not by
    // cloud-init or fleetx: on a cloud it is the provider's metadata service or seed disk.
    const modes = await sh(host, ['stat', '-c', '%a %n', ...files.filter((f) => !f.startsWith('/var/lib/cloud/seed/'))]);
    for (const line of modes.stdout.trim().split('\n')) expect(line).toMatch(/^[46]00 /);
    const journal = await sh(host, ['journalctl', '-b', '--no-pager', '-o', 'cat']);
    expect(journal.stdout).not.toContain(SECRET);
  });
});
