/**
 * The agent against the real things: one nspawn host (real systemd as PID 1)
 * on a test bridge runs `fleetx agent` as a systemd service; etcd runs on the
 * machine, listening only on the bridge address. The test plays the engine:
 * it writes schedule keys and bodies straight into etcd.
 */
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/registry/client.js';
import { keyspace } from '../../src/registry/keys.js';
import type { MachineRecord, ScheduleRecord, TargetState, UnitStateRecord } from '../../src/registry/records.js';
import { startEtcd, stopEtcd } from '../../src/sandbox/etcd.js';
import { bootHost, type Host } from '../../src/sandbox/host.js';
import { createBridge, deleteBridge } from '../../src/sandbox/network.js';
import { unitHash } from '../../src/unit/hash.js';
import { parseUnit } from '../../src/unit/parse.js';
import { leftovers, testNet, testStateDir } from '../helpers/hosts.js';

const net = testNet();
const base = testStateDir('agent');
const etcdUrl = `http://${net.prefix}.1:2379`;
const etcdSpec = { dataDir: `${base}/etcd`, logFile: `${base}/etcd.log`, clientUrl: etcdUrl, peerUrl: `http://${net.prefix}.1:2380` };
const keys = keyspace('/fleetx');
const repo = process.cwd();
const TTL = 3;

// --no-engine: the test plays the engine (an engine would unschedule units it has no record of)
const agentUnit = (extra = '') =>
  [
    '[Unit]',
    'Description=fleetx agent (test)',
    '[Service]',
    `ExecStart=/usr/bin/node ${repo}/bin/fleetx.mjs --endpoint ${etcdUrl} agent --ip ${net.prefix}.11 --ttl ${TTL} --no-engine --metadata role=test${extra}`,
    'Restart=always',
    'RestartSec=1',
    '',
  ].join('\n');

let host: Host;
let etcd: Etcd3;

const sleepUnit = (tag: string, install = false) =>
  [
    '[Unit]',
    `Description=agent test ${tag}`,
    '[Service]',
    'ExecStart=/bin/sleep infinity',
    ...(install ? ['[Install]', 'WantedBy=multi-user.target'] : []),
    '',
  ].join('\n');

async function submit(name: string, body: string, targetState: TargetState): Promise<string> {
  const hash = unitHash(parseUnit(body, name));
  await etcd.put(keys.body(hash)).value(body);
  const rec: ScheduleRecord = { name, hash, targetState };
  await etcd.put(keys.schedule(host.machineId, name)).value(JSON.stringify(rec));
  return hash;
}

async function show(unit: string): Promise<Record<string, string>> {
  const r = await host.exec(['systemctl', 'show', '-p', 'ActiveState,SubState,MainPID,LoadState,UnitFileState,FragmentPath', unit]);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

async function stateRecord(unit: string): Promise<UnitStateRecord | null> {
  return (await etcd.get(keys.state(host.machineId, unit)).json()) as UnitStateRecord | null;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) {
      throw new Error(`${what}: not reached in ${timeoutMs} ms\n--- agent journal ---\n${await journal()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function journal(): Promise<string> {
  return (await host.exec(['journalctl', '-u', 'fleetx-agent', '-n', '60', '--no-pager', '-o', 'cat'])).stdout;
}

async function agentPid(): Promise<number> {
  return Number((await host.exec(['systemctl', 'show', '-p', 'MainPID', '--value', 'fleetx-agent'])).stdout.trim());
}

describe('fleetx agent on a real systemd host', () => {
  beforeAll(async () => {
    await createBridge(net.bridge, `${net.prefix}.1/24`);
    await startEtcd(etcdSpec);
    etcd = connect({ endpoints: [etcdUrl], requestTimeoutMs: 3000, prefix: '/fleetx' });
    host = await bootHost({
      name: 'fxt-agent',
      stateDir: `${base}/host`,
      bridge: { name: net.bridge, address: `${net.prefix}.11/24` },
      files: {
        '/etc/systemd/system/fleetx-agent.service': agentUnit(),
        '/etc/systemd/system/fleetx-agent-purge.service': agentUnit(' --purge-on-exit'),
      },
    });
    const started = await host.exec(['systemctl', 'start', 'fleetx-agent']);
    expect(started.code, started.stderr).toBe(0);
  });

  afterAll(async () => {
    etcd?.close();
    await host?.stop().catch(() => undefined);
    await stopEtcd(etcdSpec.dataDir);
    await deleteBridge(net.bridge).catch(() => undefined);
    const { rm } = await import('node:fs/promises');
    await rm(base, { recursive: true, force: true });
    expect(await leftovers(base, net.bridge, [{ name: 'fxt-agent', dir: `${base}/host` }])).toEqual([]);
  });

  it('registers the machine under a lease with its IP and metadata', async () => {
    const m = await until('machine record', async () => (await etcd.get(keys.machine(host.machineId)).json()) as MachineRecord | null ?? undefined, 20_000);
    expect(m).toMatchObject({ id: host.machineId, ip: `${net.prefix}.11`, hostname: 'fxt-agent', metadata: { role: 'test' } });
    const lease = (await etcd.get(keys.machine(host.machineId)).exec()).kvs[0]!.lease;
    expect(lease).not.toBe('0');
  }, 30_000);

  it('launched: the unit becomes active quickly and its state is reported', async () => {
    const t0 = Date.now();
    const hash = await submit('web.service', sleepUnit('web'), 'launched');
    await until('web active', async () => (await show('web.service')).ActiveState === 'active');
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(1500);
    const s = await show('web.service');
    expect(s.FragmentPath).toBe('/run/systemd/system/web.service');
    const rec = await until('state record', async () => {
      const r = await stateRecord('web.service');
      return r?.activeState === 'active' && r.mainPid ? r : undefined;
    });
    expect(rec).toMatchObject({ name: 'web.service', machine: host.machineId, hash, loadState: 'loaded', subState: 'running', mainPid: Number(s.MainPID) });
  });

  it('loaded: the unit is stopped but its file stays', async () => {
    await submit('web.service', sleepUnit('web'), 'loaded');
    await until('web inactive', async () => (await show('web.service')).ActiveState === 'inactive');
    expect((await host.exec(['test', '-f', '/run/systemd/system/web.service'])).code).toBe(0);
    await until('state record inactive', async () => (await stateRecord('web.service'))?.activeState === 'inactive');
  });

  it('enables (at runtime) a unit that has an [Install] section', async () => {
    await submit('side.service', sleepUnit('side', true), 'launched');
    await until('side active', async () => (await show('side.service')).ActiveState === 'active');
    expect((await show('side.service')).UnitFileState).toBe('enabled-runtime');
  });

  it('starts a launched unit once: a finished oneshot or a crashed unit is not restarted by the agent', async () => {
    // each run appends a line; units that finish are unloaded by systemd, so count runs on disk
    await submit('once.service', '[Service]\nType=oneshot\nExecStart=/bin/sh -c "echo run >> /run/once.count"\n', 'launched');
    await submit('crash.service', '[Service]\nExecStart=/bin/sh -c "echo run >> /run/crash.count; sleep 0.2; exit 3"\n', 'launched');
    const runs = async (u: string) => (await host.exec(['cat', `/run/${u}.count`])).stdout.split('\n').filter(Boolean).length;
    await until('crash failed and reported', async () => (await stateRecord('crash.service'))?.activeState === 'failed');
    await until('once ran', async () => (await runs('once')) === 1);
    await new Promise((r) => setTimeout(r, 2500));
    expect({ once: await runs('once'), crash: await runs('crash') }).toEqual({ once: 1, crash: 1 });
    await etcd.delete().key(keys.schedule(host.machineId, 'once.service'));
    await etcd.delete().key(keys.schedule(host.machineId, 'crash.service'));
    await until('removed', async () => (await host.exec(['test', '-e', '/run/systemd/system/crash.service'])).code !== 0);
  }, 30_000);

  it('never disturbs running units when the agent is SIGKILLed and restarted', async () => {
    await submit('web.service', sleepUnit('web'), 'launched');
    await until('web active', async () => (await show('web.service')).ActiveState === 'active');
    const before = { web: (await show('web.service')).MainPID, side: (await show('side.service')).MainPID };
    const oldAgent = await agentPid();
    // SIGKILL every process of the agent (and any child it has). `systemctl kill -s KILL`
    // does the same but reports EIO inside nspawn for the cgroup-wide kill.
    const killed = await host.exec(['sh', '-c', 'p=$(systemctl show -p MainPID --value fleetx-agent); pkill -9 -P "$p"; kill -9 "$p"']);
    expect(killed.code, `${killed.stderr}\n${await journal()}`).toBe(0);
    const newAgent = await until('agent restarted', async () => {
      const pid = await agentPid();
      return pid !== 0 && pid !== oldAgent ? pid : undefined;
    }, 15_000);
    expect(newAgent).not.toBe(oldAgent);
    // the new agent is up once it acts on a new schedule key
    await submit('probe.service', sleepUnit('probe'), 'launched');
    await until('probe active', async () => (await show('probe.service')).ActiveState === 'active', 20_000);
    expect((await show('web.service')).MainPID).toBe(before.web);
    expect((await show('side.service')).MainPID).toBe(before.side);
    expect((await stateRecord('web.service'))?.mainPid).toBe(Number(before.web));
  }, 45_000);

  it('a new hash rewrites the file and restarts a launched unit', async () => {
    const oldPid = (await show('web.service')).MainPID;
    const body = sleepUnit('web v2');
    const hash = await submit('web.service', body, 'launched');
    await until('web restarted', async () => {
      const s = await show('web.service');
      return s.ActiveState === 'active' && s.MainPID !== oldPid && s.MainPID !== '0';
    });
    expect((await host.exec(['cat', '/run/systemd/system/web.service'])).stdout).toContain('Description=agent test web v2');
    await until('state hash', async () => (await stateRecord('web.service'))?.hash === hash);
  });

  it('one unit whose file cannot be written does not hold back the other units on its host', async () => {
    await submit('a-stuck.service', sleepUnit('stuck v1'), 'launched');
    await until('a-stuck active', async () => (await show('a-stuck.service')).ActiveState === 'active');
    const stuckPid = (await show('a-stuck.service')).MainPID;
    // A mount point cannot be renamed over: every rewrite of this file now fails (EBUSY),
    // a real write failure like the 243-256 character names that could not be written.
    const file = '/run/systemd/system/a-stuck.service';
    const mounted = await host.exec(['mount', '--bind', file, file]);
    expect(mounted.code, mounted.stderr).toBe(0);
    try {
      await submit('a-stuck.service', sleepUnit('stuck v2'), 'launched');
      await submit('z-fresh.service', sleepUnit('fresh'), 'launched'); // sorts after a-stuck: its tasks run later in the pass
      await until('z-fresh active', async () => (await show('z-fresh.service')).ActiveState === 'active');
      expect(await journal()).toMatch(/task failed; its unit is held back/);
      expect((await show('a-stuck.service')).MainPID).toBe(stuckPid); // held back: untouched, still the old body
    } finally {
      await host.exec(['umount', file]);
    }
    await until('a-stuck rewritten once it can be', async () => (await host.exec(['cat', file])).stdout.includes('stuck v2'), 20_000);
    for (const name of ['a-stuck.service', 'z-fresh.service']) await etcd.delete().key(keys.schedule(host.machineId, name));
    await until('test units removed', async () => (await host.exec(['ls', '/run/systemd/system'])).stdout.match(/a-stuck|z-fresh/) === null);
  }, 45_000);

  it('keeps units running while etcd is down and reconciles when it returns', async () => {
    const pid = (await show('web.service')).MainPID;
    await stopEtcd(etcdSpec.dataDir);
    await new Promise((r) => setTimeout(r, (3 * TTL + 1) * 1000)); // long enough for the lease to be lost
    expect(await show('web.service')).toMatchObject({ ActiveState: 'active', MainPID: pid });
    expect((await show('probe.service')).ActiveState).toBe('active');

    await startEtcd(etcdSpec);
    // re-registered (new lease) and states rewritten
    await until('machine back', async () => (await etcd.get(keys.machine(host.machineId)).string()) ?? undefined, 20_000);
    await until('state back', async () => (await stateRecord('web.service'))?.mainPid === Number(pid), 20_000);
    // and the schedule is acted on again
    await etcd.delete().key(keys.schedule(host.machineId, 'probe.service'));
    await until('probe removed', async () => (await host.exec(['test', '-e', '/run/systemd/system/probe.service'])).code !== 0, 20_000);
    expect(await show('web.service')).toMatchObject({ ActiveState: 'active', MainPID: pid });
  }, 60_000);

  it('removed: the unit is stopped, its file and state record are gone', async () => {
    await etcd.delete().key(keys.schedule(host.machineId, 'side.service'));
    await until('side file gone', async () => (await host.exec(['test', '-e', '/run/systemd/system/side.service'])).code !== 0);
    expect((await show('side.service')).ActiveState).toBe('inactive');
    expect((await host.exec(['test', '-e', '/run/systemd/system/multi-user.target.wants/side.service'])).code).not.toBe(0);
    await until('side state deleted', async () => (await stateRecord('side.service')) === null);
  });

  it('SIGTERM leaves units running by default', async () => {
    const pid = (await show('web.service')).MainPID;
    const t0 = Date.now();
    expect((await host.exec(['systemctl', 'stop', 'fleetx-agent'])).code).toBe(0);
    expect(Date.now() - t0, await journal()).toBeLessThan(5000);
    expect(await show('web.service')).toMatchObject({ ActiveState: 'active', MainPID: pid });
    expect((await host.exec(['test', '-f', '/run/systemd/system/web.service'])).code).toBe(0);
  });

  it('--purge-on-exit: SIGTERM stops and removes the units and revokes the lease', async () => {
    const before = (await etcd.get(keys.machine(host.machineId)).exec()).kvs[0]?.lease;
    expect((await host.exec(['systemctl', 'start', 'fleetx-agent-purge'])).code).toBe(0);
    const lease = await until('purging agent registered', async () => {
      const l = (await etcd.get(keys.machine(host.machineId)).exec()).kvs[0]?.lease;
      return l !== undefined && l !== before ? l : undefined;
    }, 20_000);
    await until('states reported under the new lease', async () => (await etcd.get(keys.state(host.machineId, 'web.service')).exec()).kvs[0]?.lease === lease);
    expect((await host.exec(['systemctl', 'stop', 'fleetx-agent-purge'])).code).toBe(0);
    expect((await show('web.service')).ActiveState).toBe('inactive');
    expect((await host.exec(['test', '-e', '/run/systemd/system/web.service'])).code).not.toBe(0);
    expect(await etcd.get(keys.machine(host.machineId)).string()).toBeNull();
    expect(await stateRecord('web.service')).toBeNull();
  }, 40_000);
});
