/**
 * fleet #1289 on real parts: one nspawn host (real systemd) runs `fleetx
 * agent` WITH its engine; etcd runs on the machine. etcd is frozen (SIGSTOP)
 * for three lease TTLs, so every lease (the machine's, the engine's) lapses
 * and the agent re-registers when etcd is back. The unit must keep running
 * through it: same MainPID, its schedule key never deleted and rewritten.
 *
 * Before the fix the engine's first pass after the outage found the machine
 * gone and deleted its schedule; the agent stopped the unit ("unit loaded
 * but not scheduled here") and started it again once it was rescheduled.
 */
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyspace } from '../../src/registry/keys.js';
import type { UnitRecord } from '../../src/registry/records.js';
import { etcdPids } from '../../src/sandbox/etcd.js';
import type { Host } from '../../src/sandbox/host.js';
import { unitHash } from '../../src/unit/hash.js';
import { parseUnit } from '../../src/unit/parse.js';
import { startAgentHost, type AgentHost } from '../helpers/agent-host.js';
import { sleep, waitForWith } from '../helpers/wait.js';

const keys = keyspace('/fleetx');
const TTL = 3;
const UNIT = 'paused.service';
const BODY = ['[Unit]', 'Description=survives an etcd pause', '[Service]', 'ExecStart=/bin/sleep infinity', ''].join('\n');

let fixture: AgentHost;
let host: Host;
let etcd: Etcd3;

const journal = () => fixture.journal();
const until = waitForWith({ timeoutMs: 30_000, intervalMs: 100, explain: async () => `--- agent journal ---\n${await journal()}` });

async function mainPid(): Promise<number> {
  return Number((await host.exec(['systemctl', 'show', '-p', 'MainPID', '--value', UNIT])).stdout.trim());
}

async function scheduleKey(): Promise<{ create: string; lease: string } | undefined> {
  const kv = (await etcd.get(keys.schedule(host.machineId, UNIT)).exec()).kvs[0];
  return kv && { create: kv.create_revision, lease: kv.lease };
}

async function machineLease(): Promise<string | undefined> {
  return (await etcd.get(keys.machine(host.machineId)).exec()).kvs[0]?.lease;
}

describe('an etcd pause longer than the lease TTL (fleet #1289)', () => {
  beforeAll(async () => {
    // with its engine: the engine's decisions after the outage are what fleet got wrong
    fixture = await startAgentHost({ tag: 'pause', name: 'fxt-pause', agentArgs: ['--ttl', String(TTL)] });
    ({ host, etcd } = fixture);
  }, 120_000);

  afterAll(async () => {
    expect(await fixture?.stop()).toEqual([]);
  });

  it('keeps the unit running: same MainPID, its schedule never deleted', async () => {
    // submit as the CLI does: body + unit record; the engine in the agent schedules it
    const hash = unitHash(parseUnit(BODY, UNIT));
    await etcd.put(keys.body(hash)).value(BODY);
    const rec: UnitRecord = { name: UNIT, hash, targetState: 'launched' };
    await etcd.put(keys.unit(UNIT)).value(JSON.stringify(rec));
    const pid = await until('unit running', async () => (await mainPid()) || undefined, 60_000);
    const schedBefore = await until('scheduled', scheduleKey);
    const leaseBefore = await until('registered', machineLease);

    const [etcdPid] = etcdPids(fixture.etcdSpec.dataDir);
    expect(etcdPid).toBeDefined();
    process.kill(etcdPid!, 'SIGSTOP');
    try {
      await sleep(3 * TTL * 1000); // every lease lapses meanwhile
    } finally {
      process.kill(etcdPid!, 'SIGCONT');
    }
    // the agent re-registers under a new lease, and an engine leads again
    await until('re-registered', async () => ((await machineLease()) ?? leaseBefore) !== leaseBefore);
    await until('an engine leads again', async () => (await etcd.get(keys.leader()).string()) ?? undefined);
    await sleep(3 * TTL * 1000); // time for a wrong stop, move or restart to show (it came within a second)

    expect(await scheduleKey()).toEqual(schedBefore);
    expect(await mainPid()).toBe(pid);
    const j = await journal();
    expect(j).not.toMatch(/not scheduled here/);
  }, 180_000);
});
