/**
 * `sandbox up --etcd-members 3`: three etcd members, each its own process,
 * data dir and ports on the bridge address; every fleetx process is given
 * all of them; an agent keeps working when the member it talks to is
 * SIGKILLed (etcd3's client fails over between endpoints); `up` brings a
 * dead member back into the cluster; `down` (useSandbox's afterAll) leaves
 * nothing behind.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { bufferIo } from '../../src/cli/io.js';
import { sandboxCommand } from '../../src/cli/commands/sandbox.js';
import type { SandboxStatus } from '../../src/sandbox/sandbox.js';
import { agentMembers, EtcdFaults } from '../helpers/etcd-faults.js';
import { useSandbox } from '../helpers/sandbox.js';

const sb = useSandbox({ tag: 'etcd3', hosts: 2, etcdMembers: 3 });
const faults = () => new EtcdFaults(sb.stateDir);

const GLOBAL = ['[Unit]', 'Description=e2e global', '[Service]', 'ExecStart=/bin/sleep infinity', '[X-Fleet]', 'Global=true', ''].join('\n');

/** Local addresses a process listens on, from `ss`. */
function listenAddrs(pid: number): string[] {
  const out = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => l.trim().split(/\s+/)[3]!)
    .sort();
}

/** The lease (hex) an agent's machine record lives under, read with etcdctl. */
async function machineLease(f: EtcdFaults, machineId: string): Promise<string> {
  const r = await f.etcdctl(['get', sb.keys.machine(machineId), '-w', 'json']);
  const lease = /"lease":(\d+)/.exec(r.stdout)?.[1];
  if (!lease) throw new Error(`no lease on ${sb.keys.machine(machineId)}: ${r.stdout}${r.stderr}`);
  return BigInt(lease).toString(16);
}

/** Seconds left on a lease. */
async function leaseTtl(f: EtcdFaults, lease: string): Promise<number> {
  const r = await f.etcdctl(['lease', 'timetolive', lease]);
  const ttl = /remaining\((-?\d+)s\)/.exec(r.stdout)?.[1];
  if (ttl === undefined) throw new Error(`etcdctl lease timetolive ${lease}: ${r.stdout}${r.stderr}`);
  return Number(ttl);
}

async function statusJson(): Promise<SandboxStatus> {
  const io = bufferIo({}, process.cwd());
  await sandboxCommand({ action: 'status', output: 'json', stateDir: sb.stateDir }, io);
  return JSON.parse(io.out.join('')) as SandboxStatus;
}

describe('a sandbox with a 3-member etcd', () => {
  it('status -o json lists each member with its pid and client URL; each listens on its own ports on the bridge only', async () => {
    const s = await statusJson();
    expect(s.healthy).toBe(true);
    const a = `${sb.subnet}.1`;
    expect(s.etcd!.endpoints).toEqual([`http://${a}:2379`, `http://${a}:2381`, `http://${a}:2383`]);
    expect(s.etcd!.members.map((m) => [m.name, m.clientUrl, m.running])).toEqual([
      ['fleetx-sandbox', `http://${a}:2379`, true],
      ['fleetx-sandbox-2', `http://${a}:2381`, true],
      ['fleetx-sandbox-3', `http://${a}:2383`, true],
    ]);
    const pids = s.etcd!.members.map((m) => m.pid!);
    expect(new Set(pids).size).toBe(3);
    expect(new Set(s.etcd!.members.map((m) => m.dataDir)).size).toBe(3);
    expect(pids.map(listenAddrs)).toEqual([
      [`${a}:2379`, `${a}:2380`],
      [`${a}:2381`, `${a}:2382`],
      [`${a}:2383`, `${a}:2384`],
    ]);
    // One cluster, not three: every member knows the other two.
    const list = await faults().etcdctl(['member', 'list', '-w', 'simple']);
    expect(list.stdout.trim().split('\n').map((l) => l.split(', ')[2]).sort()).toEqual(['fleetx-sandbox', 'fleetx-sandbox-2', 'fleetx-sandbox-3']);
    await faults().leader();
  });

  it('the env file and every agent unit carry all endpoints; hosts reach each member', async () => {
    const s = await statusJson();
    const env = execFileSync('sh', ['-c', '. "$1" && printf %s "$FLEETX_ENDPOINT"', 'sh', s.envFile!], { encoding: 'utf8' });
    expect(env).toBe(s.etcd!.endpoints.join(','));
    for (const h of sb.runningHosts()) {
      const unit = (await h.exec(['systemctl', 'cat', 'fleetx-agent.service'])).stdout;
      expect(unit).toContain(s.etcd!.endpoints.map((e) => `  --endpoint "${e}" \\\n`).join(''));
      for (const e of s.etcd!.endpoints) {
        const r = await h.exec(['/usr/bin/node', '-e', `fetch('${e}/health').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
        expect(r.stdout, r.stderr).toContain('"health":"true"');
      }
    }
  });

  it('an agent keeps working when the member it is connected to is SIGKILLed', async () => {
    const f = faults();
    const host = sb.runningHosts()[0]!;
    const before = await sb.show(host, 'fleetx-agent.service', ['MainPID', 'NRestarts']);
    const used = await sb.until(`${host.name}'s agent connected to a member`, async () => {
      const m = await agentMembers(host, f.members());
      return m.length > 0 ? m : undefined;
    });
    const victim = used[0]!;
    await f.kill(victim);
    // Its lease is renewed through another member: the remaining TTL goes back up. The reads
    // are retried: when the victim led, they wait for an election and may time out meanwhile.
    const lease = await sb.until(`${host.name}'s machine record readable after the kill`, () => machineLease(f, host.machineId).catch(() => undefined), 30_000, 250);
    let last = (await sb.until(`the TTL of ${host.name}'s lease readable`, () => leaseTtl(f, lease).then((ttl) => ({ ttl }), () => undefined), 30_000, 250)).ttl;
    await sb.until(`a renewal of ${host.name}'s lease after the kill`, async () => {
      const ttl = await leaseTtl(f, lease).catch(() => undefined);
      if (ttl === undefined) return false;
      const renewed = ttl > last;
      last = ttl;
      return renewed;
    }, 30_000, 250);

    // The agent follows the schedule through the other members: a new global unit reaches its host.
    sb.writeUnit('g.service', GLOBAL);
    await sb.cliOk(['start', '--no-block', 'g.service']);
    for (const h of sb.runningHosts()) await sb.until(`g.service running on ${h.name}`, async () => (await sb.runningUnits(h, 'g.service')).length === 1, 60_000);
    // Its machine record (lease kept alive elsewhere) is there, and the CLI works without the dead member.
    expect((await sb.machines()).map((m) => m.id)).toContain(host.machineId);
    const listed = await sb.cliOk(['list-machines', '--no-legend']);
    expect(listed.stdout).toContain(host.machineId.slice(0, 8));
    // Same process, never restarted: it failed over instead of crashing.
    expect(await sb.show(host, 'fleetx-agent.service', ['MainPID', 'NRestarts'])).toEqual(before);
    expect((await agentMembers(host, f.members())).map((m) => m.name)).not.toContain(victim.name);
    await sb.cliOk(['destroy', 'g.service']);
  });

  it('up brings a dead member back into the cluster', async () => {
    const f = faults();
    expect(await f.healthy()).toBe(false);
    const s = await sb.up();
    expect(s.etcd!.members.every((m) => m.running)).toBe(true);
    await f.waitHealthy();
    const list = await f.etcdctl(['member', 'list']);
    expect(list.stdout.trim().split('\n').filter((l) => l.includes(', started, '))).toHaveLength(3);
  });
});
