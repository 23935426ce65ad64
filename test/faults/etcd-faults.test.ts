/**
 * The fault matrix's etcd cells (docs/RELIABILITY.md): faults of a real
 * 3-member etcd cluster (`sandbox up --etcd-members 3`) during a rolling
 * restart or deploy of the demo service under load through HAProxy,
 * the invariant checker running. All cells share one sandbox and leave the
 * cluster healthy: every member running and agreeing on a leader, no alarm
 * (EtcdFaults.waitHealthy), which the next cell builds on.
 *
 * Beyond the checker's invariants every cell asserts that no fleetx agent
 * restarted (same main process, NRestarts unchanged): agents and the engine
 * ride out etcd faults, they never crash-loop through them.
 */
import { expect } from 'vitest';
import { DEMO_SERVICE } from '../../src/demo/demo.js';
import type { Host } from '../../src/sandbox/host.js';
import { agentMembers, cutAgentConnections, EtcdFaults, type Member } from '../helpers/etcd-faults.js';
import type { SandboxFixture } from '../helpers/sandbox.js';
import { sleep } from '../helpers/wait.js';
import { useFaultCluster, type CellContext } from './harness/cell.js';
import type { RunningCli } from '../helpers/demo.js';
import { hostRunning } from './harness/faults.js';
import { expectEveryRestarted, instancePids } from './harness/restarts.js';

const fc = useFaultCluster({ tag: 'etcd', hosts: 3, etcdMembers: 3 });
const demo = fc.demo;
const faults = () => new EtcdFaults(demo.sb.stateDir);
const OUTAGE_MS = 30_000;
// The first instance may drain for up to its drain timeout under load before the phases the faults aim at.
const PHASE_WAIT_MS = 90_000;
const RESTART = ['rolling-restart', `${DEMO_SERVICE}@`];

/** host -> the agent's MainPID and NRestarts: unchanged means it never crashed or restarted. */
async function agents(sb: SandboxFixture): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of sb.runningHosts()) {
    const s = await sb.show(h, 'fleetx-agent.service', ['MainPID', 'NRestarts']);
    out[h.name] = `pid ${s.MainPID} restarts ${s.NRestarts}`;
  }
  return out;
}

/**
 * Freezes `members` for OUTAGE_MS; nothing that ran may be stopped meanwhile (same main PIDs).
 * An instance still starting when etcd froze (main PID 0: its start job had not reached ExecStart)
 * had no process to keep; systemd finishing its start meanwhile is not a restart.
 */
async function frozenFor30s(sb: SandboxFixture, f: EtcdFaults, members: Member[]): Promise<void> {
  f.freeze(...members);
  const serving = Object.fromEntries(Object.entries(await instancePids(sb)).filter(([, pid]) => pid !== '0'));
  await sleep(OUTAGE_MS);
  const still = await instancePids(sb);
  f.thaw(...members);
  expect(Object.fromEntries(Object.entries(still).filter(([k]) => k in serving))).toEqual(serving);
}

/** The rollout's end and the CLI's; then the cluster healthy again, no agent restarted, every instance restarted. */
async function settled(c: CellContext, cli: RunningCli, f: EtcdFaults, before: Record<string, string>, pids: Record<string, string>) {
  const end = await c.rolloutEnd(cli);
  const done = await cli.done;
  await f.waitHealthy();
  expect(await agents(c.sb)).toEqual(before);
  await expectEveryRestarted(c.sb, pids, end);
  return { end, done };
}

/** What a CLI run that follows a rollout said, for the table. */
const exit = (r: { code: number; stderr: string }) => (r.code === 0 ? 'exit 0' : `exit ${r.code}: ${r.stderr.trim().split('\n').at(-1)}`);

fc.cell('etcd leader member SIGKILLed mid rolling-restart', async (c) => {
  const f = faults();
  const before = await agents(c.sb);
  const pids = await instancePids(c.sb);
  const cli = demo.start(RESTART);
  await c.untilPhase(['stopping', 'starting', 'checking'], PHASE_WAIT_MS);
  const leader = await f.leader();
  c.injected(`SIGKILL of etcd member ${leader.name} (the raft leader)`);
  await f.kill(leader);
  const end = await c.rolloutEnd(cli);
  const done = await cli.done;
  await f.restart(leader);
  await f.waitHealthy();
  expect(await agents(c.sb)).toEqual(before);
  await expectEveryRestarted(c.sb, pids, end);
  expect(done.code, done.stdout + done.stderr).toBe(0);
  return { rollout: `${end} (CLI ${exit(done)})`, note: `${leader.name} restarted after the rollout; it rejoined` };
});

fc.cell("one etcd member's space quota exceeded (NOSPACE alarm) mid rolling-restart, then disarmed", async (c) => {
  const f = faults();
  const before = await agents(c.sb);
  const victim = f.members().find((m) => m.name !== 'fleetx-sandbox') ?? f.members()[0]!;
  const pids = await instancePids(c.sb);
  const cli = demo.start(RESTART);
  await c.untilPhase(['stopping', 'starting', 'checking'], PHASE_WAIT_MS);
  c.injected(`NOSPACE alarm raised by ${victim.name} (quota 1 byte): every write refused`);
  await f.armNoSpace(victim);
  // Writes fail with a clear error; reads and the running instances go on.
  c.sb.writeUnit('nospace-probe.service', ['[Service]', 'ExecStart=/bin/sleep infinity', ''].join('\n'));
  const refused = await c.sb.cli(['submit', 'nospace-probe.service']);
  expect(refused.code, refused.stdout + refused.stderr).toBe(6);
  const serving = await instancePids(c.sb);
  await sleep(10_000);
  expect(await instancePids(c.sb)).toEqual(serving);
  await f.disarmNoSpace(victim);
  const { end, done } = await settled(c, cli, f, before, pids);
  return { rollout: `${end} (CLI ${exit(done)})`, note: `10 s of NOSPACE; a write meanwhile: ${exit(refused)}` };
});

fc.cell('etcd quorum lost for 30 s (two members SIGSTOPped) mid rolling-restart, then back', async (c) => {
  const f = faults();
  const before = await agents(c.sb);
  const pids = await instancePids(c.sb);
  const cli = demo.start(RESTART);
  await c.untilPhase(['starting', 'checking'], PHASE_WAIT_MS);
  const leader = await f.leader();
  const other = f.members().find((m) => m.name !== leader.name)!;
  c.injected(`SIGSTOP of etcd members ${leader.name} (leader) and ${other.name} for 30 s`);
  await frozenFor30s(c.sb, f, [leader, other]);
  const { end, done } = await settled(c, cli, f, before, pids);
  return { rollout: `${end} (CLI ${exit(done)})`, note: 'leader and one more frozen; one member left without quorum' };
});

fc.cell('etcd fully unreachable for 30 s (all members SIGSTOPped) mid rolling-restart', async (c) => {
  const f = faults();
  const before = await agents(c.sb);
  const pids = await instancePids(c.sb);
  const cli = demo.start(RESTART);
  await c.untilPhase(['starting', 'checking'], PHASE_WAIT_MS);
  const all = f.members();
  c.injected('SIGSTOP of every etcd member for 30 s');
  await frozenFor30s(c.sb, f, all);
  const { end, done } = await settled(c, cli, f, before, pids);
  return { rollout: `${end} (CLI ${exit(done)})`, note: 'instances kept serving, nothing stopped; agents and engine resumed by themselves' };
});

fc.cell('a watch compacted away under an agent (frozen, revisions compacted, connections reset)', async (c) => {
  const f = faults();
  const pids = await instancePids(c.sb);
  const cli = demo.start(RESTART);
  const r = await c.untilPhase(['leaving', 'draining', 'stopping'], PHASE_WAIT_MS);
  // The agent of an instance the rollout has yet to reach: it must learn of it after the compaction.
  const waiting = Object.values(r.instances).find((i) => i.phase === 'pending')?.unit ?? `${DEMO_SERVICE}@3.service`;
  const host: Host = (await hostRunning(c.sb, waiting)) ?? c.sb.runningHosts()[0]!;
  const before = await agents(c.sb);
  const pid = before[host.name]!.split(' ')[1]!;
  const used = await agentMembers(host, f.members());
  c.injected(`agent on ${host.name} SIGSTOPped; etcd compacted past its watch; its connections reset`);
  await host.exec(['kill', '-STOP', pid]);
  await sleep(3_000); // the rollout moves on meanwhile: revisions the agent has not seen
  const compactedAt = await f.compact();
  await cutAgentConnections(host, f.members());
  await host.exec(['kill', '-CONT', pid]);
  const end = await c.rolloutEnd(cli);
  const done = await cli.done;
  expect(await agents(c.sb)).toEqual(before);
  expect(done.code, done.stdout + done.stderr).toBe(0);
  await expectEveryRestarted(c.sb, pids, end);
  return { rollout: `${end} (CLI ${exit(done)})`, note: `${host.name} (runs ${waiting}) frozen 3 s; compacted at revision ${compactedAt}; it was connected to ${used.map((m) => m.name).join(', ') || 'no member'}` };
});
