import { readFileSync, rmdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootHost, type Host } from '../../src/sandbox/host.js';
import { createBridge, deleteBridge, linkExists } from '../../src/sandbox/network.js';
import { leftovers, testNet, testStateDir } from '../helpers/hosts.js';
import { waitFor } from '../helpers/wait.js';

const net = testNet();
const base = testStateDir('host');
let a: Host;
let b: Host;

const server = (ip: string) =>
  `require('net').createServer((s) => s.end('pong from ' + require('os').hostname())).listen(7777, '${ip}')`;
const client = (ip: string) =>
  `const s = require('net').connect(7777, '${ip}'); let d = ''; s.on('data', (c) => (d += c));` +
  ` s.on('end', () => { process.stdout.write(d); process.exit(0); }); s.on('error', (e) => { console.error(e.message); process.exit(1); });`;

describe('sandbox host: real systemd in nspawn over an overlay', () => {
  beforeAll(async () => {
    await createBridge(net.bridge, `${net.prefix}.1/24`);
    [a, b] = await Promise.all([
      bootHost({ name: 'fxt-a', stateDir: `${base}/a`, bridge: { name: net.bridge, address: `${net.prefix}.11/24` }, mask: ['systemd-user-sessions.service'], bindReadOnly: [process.cwd()] }),
      bootHost({ name: 'fxt-b', stateDir: `${base}/b`, bridge: { name: net.bridge, address: `${net.prefix}.12/24` }, files: { '/etc/fleetx-test': 'hello\n' } }),
    ]);
  });

  afterAll(async () => {
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await deleteBridge(net.bridge);
  });

  it('runs systemd as PID 1 with its own hostname and machine id', async () => {
    for (const [h, name] of [[a, 'fxt-a'], [b, 'fxt-b']] as const) {
      expect((await h.exec(['systemctl', 'is-system-running'])).stdout.trim()).toMatch(/^(running|degraded)$/);
      expect((await h.exec(['hostname'])).stdout.trim()).toBe(name);
      expect((await h.exec(['cat', '/etc/machine-id'])).stdout.trim()).toBe(h.machineId);
      expect((await h.exec(['cat', '/proc/1/comm'])).stdout.trim()).toBe('systemd');
    }
    expect(a.machineId).not.toBe(b.machineId);
  });

  it('boots without failed units, each host in a cgroup of its own', async () => {
    for (const h of [a, b]) {
      expect((await h.exec(['systemctl', 'list-units', '--failed', '--plain', '--no-legend'])).stdout).toBe('');
    }
    // Sharing one cgroup made the two systemds prune each other's unit cgroups.
    const cg = (h: Host) => readFileSync(`/proc/${h.leaderPid}/cgroup`, 'utf8').match(/name=systemd:(.*)/)?.[1];
    expect(cg(a)).toMatch(/^\/fleetx-sandbox\/fxt-a-[0-9a-f]+\/payload/);
    expect(cg(b)).toMatch(/^\/fleetx-sandbox\/fxt-b-[0-9a-f]+\/payload/);
    // The same unit on both hosts: stopping it on one leaves the other alone.
    for (const h of [a, b]) expect((await h.exec(['systemd-run', '--unit=fxt-sleep', 'sleep', '300'])).code).toBe(0);
    expect((await a.exec(['systemctl', 'stop', 'fxt-sleep'])).code).toBe(0);
    expect((await b.exec(['systemctl', 'is-active', 'fxt-sleep'])).stdout.trim()).toBe('active');
    expect((await b.exec(['systemctl', 'stop', 'fxt-sleep'])).code).toBe(0);
    expect(a.address).toBe(`${net.prefix}.11`);
  });

  it("sees the machine's root through the lower layer and the checkout where it is bound, but writes only to its own upper layer", async () => {
    expect((await a.exec(['test', '-x', '/usr/bin/node'])).code).toBe(0);
    expect((await b.exec(['cat', '/etc/fleetx-test'])).stdout).toBe('hello\n');
    expect((await a.exec(['cat', '/etc/fleetx-test'])).code).not.toBe(0);
    expect((await a.exec(['test', '-f', `${process.cwd()}/package.json`])).code).toBe(0);
    expect((await a.exec(['sh', '-c', 'echo x > /etc/only-in-a && cat /etc/only-in-a'])).stdout).toBe('x\n');
    expect((await b.exec(['test', '-e', '/etc/only-in-a'])).code).not.toBe(0);
  });

  it('masks services the machine enabled and those asked for', async () => {
    const enabled = await a.exec(['systemctl', 'is-enabled', 'etcd.service', 'haproxy.service', 'systemd-user-sessions.service']);
    expect(enabled.stdout.trim().split('\n')).toEqual(['masked', 'masked', 'masked']);
    const active = await a.exec(['systemctl', 'is-active', 'etcd.service', 'systemd-user-sessions.service']);
    expect(active.stdout.trim().split('\n')).toEqual(['inactive', 'inactive']);
    // Not asked for on b: it ran there.
    expect((await b.exec(['systemctl', 'is-active', 'systemd-user-sessions.service'])).stdout.trim()).toBe('active');
  });

  it('reaches the other host over the bridge (TCP between two node processes)', async () => {
    const started = await b.exec(['systemd-run', '--unit=fxt-pong', '/usr/bin/node', '-e', server(`${net.prefix}.12`)]);
    expect(started.code, started.stderr).toBe(0);
    const reply = await waitFor('a pong over the bridge', async () => {
      const r = await a.exec(['/usr/bin/node', '-e', client(`${net.prefix}.12`)], { timeoutMs: 10_000 });
      return r.code === 0 ? r.stdout : undefined;
    });
    expect(reply).toBe('pong from fxt-b');
  });

  it('passes input and environment to exec, and keeps /tmp private', async () => {
    const r = await a.exec(['sh', '-c', 'cat; echo " $FX_VAR"'], { input: 'in', env: { FX_VAR: 'v' } });
    expect(r).toEqual({ code: 0, stdout: 'in v\n', stderr: '' });
    expect((await a.exec(['findmnt', '-n', '-o', 'FSTYPE', '/tmp'])).stdout.trim()).toBe('tmpfs');
  });

  it("a host whose nspawn exits at once: the error gives nspawn's exit status and quotes its output, and nothing is left", async () => {
    const boot = bootHost({ name: 'fxt-c', stateDir: `${base}/c`, bindReadOnly: ['/nonexistent-fleetx-test'] });
    await expect(boot).rejects.toMatchObject({
      kind: 'failed',
      message: expect.stringMatching(/^systemd-nspawn for host fxt-c exited during boot \(exit code [1-9]\d*\); its output ends:\n[^]*\/nonexistent-fleetx-test/),
    });
    expect(await leftovers(`${base}/c`, undefined, [{ name: 'fxt-c', dir: `${base}/c` }])).toEqual([]);
  });

  it('poweroff kills the host hard; stop() then leaves no mount, process, link or dir', async () => {
    await a.poweroff();
    await expect(a.waitForSystemd(1_000)).rejects.toMatchObject({ kind: 'failed' });
    await a.stop();
    await b.stop();
    await b.stop(); // idempotent
    await deleteBridge(net.bridge);
    rmdirSync(base); // throws unless stop() emptied it
    const hosts = [{ name: 'fxt-a', dir: `${base}/a` }, { name: 'fxt-b', dir: `${base}/b` }];
    expect(await leftovers(base, net.bridge, hosts)).toEqual([]);
    expect(await linkExists('vb-fxt-a')).toBe(false);
  });
});
