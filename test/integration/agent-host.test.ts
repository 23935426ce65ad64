/**
 * The agent against the real things: one nspawn host (real systemd as PID 1)
 * on a test bridge runs `fleetx agent` as a systemd service; etcd runs on the
 * machine, listening only on the bridge address. The test plays the engine:
 * it writes schedule keys and bodies straight into etcd.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { MachineRecord, UnitStateRecord } from '../../src/registry/records.js';
import { startEtcd, stopEtcd } from '../../src/sandbox/etcd.js';
import { useAgentHost } from '../helpers/agent-host.js';
import { sleep } from '../helpers/wait.js';

const TTL = 3;
const agent = useAgentHost({
  tag: 'agent',
  name: 'fxt-agent',
  ipSuffix: 11,
  ttl: TTL,
  agents: { 'fleetx-agent': ['--metadata', 'role=test'], 'fleetx-agent-purge': ['--metadata', 'role=test', '--purge-on-exit'] },
});
const { keys, submit, show } = agent;
const until = agent.waitFor;

const sleepUnit = (tag: string, install = false) =>
  [
    '[Unit]',
    `Description=agent test ${tag}`,
    '[Service]',
    'ExecStart=/bin/sleep infinity',
    ...(install ? ['[Install]', 'WantedBy=multi-user.target'] : []),
    '',
  ].join('\n');

async function stateRecord(unit: string): Promise<UnitStateRecord | null> {
  return (await agent.etcd.get(keys.state(agent.host.machineId, unit)).json()) as UnitStateRecord | null;
}

async function agentPid(): Promise<number> {
  return Number((await agent.host.exec(['systemctl', 'show', '-p', 'MainPID', '--value', 'fleetx-agent'])).stdout.trim());
}

describe('fleetx agent on a real systemd host', () => {
  it('registers the machine under a lease with its IP and metadata', async () => {
    const m = await until('machine record', async () => (await agent.etcd.get(keys.machine(agent.host.machineId)).json()) as MachineRecord | null ?? undefined, 20_000);
    expect(m).toMatchObject({ id: agent.host.machineId, ip: agent.ip, hostname: agent.name, metadata: { role: 'test' } });
    const lease = (await agent.etcd.get(keys.machine(agent.host.machineId)).exec()).kvs[0]!.lease;
    expect(lease).not.toBe('0');
  }, 30_000);

  it('launched: the unit becomes active and its state is reported', async () => {
    const hash = await submit('web.service', sleepUnit('web'), 'launched');
    await until('web active', async () => (await show('web.service')).ActiveState === 'active');
    const s = await show('web.service');
    expect(s.FragmentPath).toBe('/run/systemd/system/web.service');
    const rec = await until('state record', async () => {
      const r = await stateRecord('web.service');
      return r?.activeState === 'active' && r.mainPid ? r : undefined;
    });
    expect(rec).toMatchObject({ name: 'web.service', machine: agent.host.machineId, hash, loadState: 'loaded', subState: 'running', mainPid: Number(s.MainPID) });
  });

  it('loaded: the unit is stopped but its file stays', async () => {
    await submit('web.service', sleepUnit('web'), 'loaded');
    await until('web inactive', async () => (await show('web.service')).ActiveState === 'inactive');
    expect((await agent.host.exec(['test', '-f', '/run/systemd/system/web.service'])).code).toBe(0);
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
    const runs = async (u: string) => (await agent.host.exec(['cat', `/run/${u}.count`])).stdout.split('\n').filter(Boolean).length;
    await until('crash failed and reported', async () => (await stateRecord('crash.service'))?.activeState === 'failed');
    await until('once ran', async () => (await runs('once')) === 1);
    await sleep(2500);
    expect({ once: await runs('once'), crash: await runs('crash') }).toEqual({ once: 1, crash: 1 });
    await agent.etcd.delete().key(keys.schedule(agent.host.machineId, 'once.service'));
    await agent.etcd.delete().key(keys.schedule(agent.host.machineId, 'crash.service'));
    await until('removed', async () => (await agent.host.exec(['test', '-e', '/run/systemd/system/crash.service'])).code !== 0);
  }, 30_000);

  it('never disturbs running units when the agent is SIGKILLed and restarted', async () => {
    await submit('web.service', sleepUnit('web'), 'launched');
    await until('web active', async () => (await show('web.service')).ActiveState === 'active');
    const before = { web: (await show('web.service')).MainPID, side: (await show('side.service')).MainPID };
    const oldAgent = await agentPid();
    // SIGKILL every process of the agent (and any child it has). `systemctl kill -s KILL`
    // does the same but reports EIO inside nspawn for the cgroup-wide kill.
    const killed = await agent.host.exec(['sh', '-c', 'p=$(systemctl show -p MainPID --value fleetx-agent); pkill -9 -P "$p"; kill -9 "$p"']);
    expect(killed.code, `${killed.stderr}\n${await agent.journal()}`).toBe(0);
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
    expect((await agent.host.exec(['cat', '/run/systemd/system/web.service'])).stdout).toContain('Description=agent test web v2');
    await until('state hash', async () => (await stateRecord('web.service'))?.hash === hash);
  });

  it('one unit whose file cannot be written does not hold back the other units on its host', async () => {
    await submit('a-stuck.service', sleepUnit('stuck v1'), 'launched');
    await until('a-stuck active', async () => (await show('a-stuck.service')).ActiveState === 'active');
    const stuckPid = (await show('a-stuck.service')).MainPID;
    // A mount point cannot be renamed over: every rewrite of this file now fails (EBUSY),
    // a real write failure like the 243-256 character names that could not be written.
    const file = '/run/systemd/system/a-stuck.service';
    const mounted = await agent.host.exec(['mount', '--bind', file, file]);
    expect(mounted.code, mounted.stderr).toBe(0);
    try {
      await submit('a-stuck.service', sleepUnit('stuck v2'), 'launched');
      await submit('z-fresh.service', sleepUnit('fresh'), 'launched'); // sorts after a-stuck: its tasks run later in the pass
      await until('z-fresh active', async () => (await show('z-fresh.service')).ActiveState === 'active');
      expect(await agent.journal()).toMatch(/task failed; its unit is held back/);
      expect((await show('a-stuck.service')).MainPID).toBe(stuckPid); // held back: untouched, still the old body
    } finally {
      // Unmount every layer: with shared propagation a bind mount can be stacked (it once stayed mounted after one umount).
      for (let i = 0; i < 5 && (await agent.host.exec(['findmnt', '-n', '--mountpoint', file])).code === 0; i++) {
        const r = await agent.host.exec(['umount', file]);
        if (r.code !== 0) console.error(`umount ${file}: ${r.stderr}`);
      }
    }
    expect((await agent.host.exec(['findmnt', '-n', '--mountpoint', file])).code, `${file} still a mount point`).not.toBe(0);
    await until('a-stuck rewritten once it can be', async () => (await agent.host.exec(['cat', file])).stdout.includes('stuck v2'), 20_000);
    for (const name of ['a-stuck.service', 'z-fresh.service']) await agent.etcd.delete().key(keys.schedule(agent.host.machineId, name));
    await until('test units removed', async () => (await agent.host.exec(['ls', '/run/systemd/system'])).stdout.match(/a-stuck|z-fresh/) === null);
  }, 45_000);

  it('keeps units running while etcd is down and reconciles when it returns', async () => {
    const pid = (await show('web.service')).MainPID;
    await stopEtcd(agent.etcdSpec.dataDir);
    await sleep((3 * TTL + 1) * 1000); // long enough for the lease to be lost
    expect(await show('web.service')).toMatchObject({ ActiveState: 'active', MainPID: pid });
    expect((await show('probe.service')).ActiveState).toBe('active');

    await startEtcd(agent.etcdSpec);
    // re-registered (new lease) and states rewritten
    await until('machine back', async () => (await agent.etcd.get(keys.machine(agent.host.machineId)).string()) ?? undefined, 20_000);
    await until('state back', async () => (await stateRecord('web.service'))?.mainPid === Number(pid), 20_000);
    // and the schedule is acted on again
    await agent.etcd.delete().key(keys.schedule(agent.host.machineId, 'probe.service'));
    await until('probe removed', async () => (await agent.host.exec(['test', '-e', '/run/systemd/system/probe.service'])).code !== 0, 20_000);
    expect(await show('web.service')).toMatchObject({ ActiveState: 'active', MainPID: pid });
  }, 60_000);

  it('removed: the unit is stopped, its file and state record are gone', async () => {
    await agent.etcd.delete().key(keys.schedule(agent.host.machineId, 'side.service'));
    await until('side file gone', async () => (await agent.host.exec(['test', '-e', '/run/systemd/system/side.service'])).code !== 0);
    expect((await show('side.service')).ActiveState).toBe('inactive');
    expect((await agent.host.exec(['test', '-e', '/run/systemd/system/multi-user.target.wants/side.service'])).code).not.toBe(0);
    await until('side state deleted', async () => (await stateRecord('side.service')) === null);
  });

  it('SIGTERM leaves units running by default', async () => {
    const pid = (await show('web.service')).MainPID;
    expect((await agent.host.exec(['systemctl', 'stop', 'fleetx-agent'])).code).toBe(0);
    // it ended on SIGTERM by itself: systemd did not have to time out and SIGKILL it
    expect((await show('fleetx-agent')).Result, await agent.journal()).toBe('success');
    expect(await show('web.service')).toMatchObject({ ActiveState: 'active', MainPID: pid });
    expect((await agent.host.exec(['test', '-f', '/run/systemd/system/web.service'])).code).toBe(0);
  });

  it('--purge-on-exit: SIGTERM stops and removes the units and revokes the lease', async () => {
    const before = (await agent.etcd.get(keys.machine(agent.host.machineId)).exec()).kvs[0]?.lease;
    expect((await agent.host.exec(['systemctl', 'start', 'fleetx-agent-purge'])).code).toBe(0);
    const lease = await until('purging agent registered', async () => {
      const l = (await agent.etcd.get(keys.machine(agent.host.machineId)).exec()).kvs[0]?.lease;
      return l !== undefined && l !== before ? l : undefined;
    }, 20_000);
    await until('states reported under the new lease', async () => (await agent.etcd.get(keys.state(agent.host.machineId, 'web.service')).exec()).kvs[0]?.lease === lease);
    expect((await agent.host.exec(['systemctl', 'stop', 'fleetx-agent-purge'])).code).toBe(0);
    expect((await show('web.service')).ActiveState).toBe('inactive');
    expect((await agent.host.exec(['test', '-e', '/run/systemd/system/web.service'])).code).not.toBe(0);
    expect(await agent.etcd.get(keys.machine(agent.host.machineId)).string()).toBeNull();
    expect(await stateRecord('web.service')).toBeNull();
  }, 40_000);
});
