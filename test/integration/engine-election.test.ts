/**
 * Engine leadership against a real etcd: one leader among several engines,
 * fail-over when the leader's lease dies, and the fence refusing a deposed
 * leader's reads and writes.
 */
import { execFileSync } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import type { Keyspace } from '../../src/registry/keys.js';
import { Engine, type EngineOptions } from '../../src/engine/engine.js';
import { Election } from '../../src/engine/election.js';
import { backoffDelay } from '../../src/registry/backoff.js';
import { isFencedOut, type Fence } from '../../src/registry/fence.js';
import { EngineStore } from '../../src/engine/store.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { announceMachine, submitUnit } from '../helpers/records.js';
import { sleep, waitFor } from '../helpers/wait.js';

const etcd = useEtcd();
let client: Etcd3;
const running: Engine[] = [];

beforeAll(() => {
  client = etcd.client;
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.stop()));
});

/** Each test gets its own keyspace, so tests share one etcd without seeing each other. */
function freshKeys(): Keyspace {
  return etcd.freshKeys('t');
}

function engine(keys: Keyspace, machineId: string, extra: Partial<EngineOptions> = {}): Engine {
  const e = new Engine({ client, keys, machineId, leaseTtlSeconds: 2, retryMs: 200, electionPollMs: 2000, ...extra });
  running.push(e);
  e.start();
  return e;
}

const submit = (keys: Keyspace, name: string, text: string) => submitUnit(client, keys, name, text);

const addMachine = (keys: Keyspace, id: string) => announceMachine(client, keys, id);

async function scheduleKeys(keys: Keyspace): Promise<string[]> {
  return (await client.getAll().prefix(keys.schedules()).keys()).map((k) => k.slice(keys.schedules().length)).sort();
}

const leaders = (es: Engine[]) => es.filter((e) => e.state === 'leader');

const SIMPLE = '[Service]\nExecStart=/bin/true\n';

describe('engine election', () => {
  it('elects exactly one of several engines and writes its id to the leader key', async () => {
    const keys = freshKeys();
    const es = [engine(keys, 'm1'), engine(keys, 'm2'), engine(keys, 'm3')];
    const leader = await waitFor('a leader', () => leaders(es)[0]);
    await new Promise((r) => setTimeout(r, 300));
    expect(leaders(es)).toEqual([leader]);
    expect(es.filter((e) => e.state === 'follower')).toHaveLength(2);
    expect(await client.get(keys.leader()).string()).toBe(leader.machineId);
  });

  it('hands leadership over when the leader lease is revoked, and the new leader schedules', async () => {
    const keys = freshKeys();
    await addMachine(keys, 'm1');
    const es = [engine(keys, 'm1'), engine(keys, 'm2')];
    const first = await waitFor('a leader', () => leaders(es)[0]);
    const deposed = new Promise<string>((resolve) => first.once('deposed', (_f, reason) => resolve(reason)));

    const kv = await client.get(keys.leader()).exec();
    const leaseId = kv.kvs[0]!.lease;
    const t0 = Date.now();
    await client.leaseClient.leaseRevoke({ ID: leaseId });

    const second = await waitFor('the other engine to lead', () => es.find((e) => e !== first && e.state === 'leader'), 5000);
    const handover = Date.now() - t0;
    expect(await deposed).toBeTruthy();
    console.log(`handover after a revoked lease: ${handover} ms`);
    expect(leaders(es)).toEqual([second]);

    await submit(keys, 'after.service', SIMPLE);
    await waitFor('after.service scheduled', async () => (await scheduleKeys(keys)).includes('m1/after.service'));
  });

  it('a resigning leader (stop) lets a follower take over at once', async () => {
    const keys = freshKeys();
    const a = engine(keys, 'a');
    await waitFor('a leads', () => a.state === 'leader');
    const b = engine(keys, 'b');
    await waitFor('b follows', () => b.state === 'follower');
    await a.stop();
    // resigned: its key is gone when stop() returns, so b need not wait out a's lease
    expect(await client.get(keys.leader()).string()).not.toBe('a');
    await waitFor('b leads', () => b.state === 'leader', 10_000);
    expect(a.state).toBe('stopped');
  });

  it('refuses reads and writes of a deposed leader after another machine recreated the key', async () => {
    const keys = freshKeys();
    await addMachine(keys, 'm1');
    const victim = engine(keys, 'victim');
    const fence: Fence = await waitFor('victim leads', () => victim.fence);
    const deposed = new Promise<void>((resolve) => victim.once('deposed', () => resolve()));

    // steal the key: delete it and create it again without a lease
    await client.delete().key(keys.leader()).exec();
    await client.put(keys.leader()).value('intruder').exec();
    await deposed;
    await waitFor('victim follows', () => victim.state === 'follower');

    // the old term's pass, were it still in flight, reads and writes nothing
    await submit(keys, 'late.service', SIMPLE);
    await expect(victim.passOnce(fence)).rejects.toSatisfy(isFencedOut);
    await expect(new EngineStore(client, keys).apply(fence, [putOp('m1', 'late.service')])).rejects.toSatisfy(isFencedOut);
    expect(await scheduleKeys(keys)).toEqual([]);

    // it does not campaign its way back while the key exists
    await sleep(500);
    expect(victim.state).toBe('follower');
    // once the stolen key goes away it leads again, in a new term, and schedules
    await client.delete().key(keys.leader()).exec();
    const next = await waitFor('victim leads again', () => victim.fence);
    expect(next.createRevision).not.toBe(fence.createRevision);
    await waitFor('late.service scheduled', async () => (await scheduleKeys(keys)).includes('m1/late.service'));
  });

  it('refuses the old term of a leader re-elected under a new lease (same id, same value)', async () => {
    const keys = freshKeys();
    await addMachine(keys, 'm1');
    const e = engine(keys, 'solo');
    const first: Fence = await waitFor('first term', () => e.fence);
    const kv = await client.get(keys.leader()).exec();
    await client.leaseClient.leaseRevoke({ ID: kv.kvs[0]!.lease });
    const second = await waitFor('second term', () => (e.fence && e.fence.createRevision !== first.createRevision ? e.fence : undefined));
    expect(second.id).toBe(first.id);
    expect(await client.get(keys.leader()).string()).toBe('solo');

    const store = new EngineStore(client, keys);
    await expect(store.apply(first, [putOp('m1', 'stale.service')])).rejects.toSatisfy(isFencedOut);
    await expect(store.readView(first)).rejects.toSatisfy(isFencedOut);
    expect(await scheduleKeys(keys)).toEqual([]);
    // the new term reads and writes as usual
    await expect(store.readView(second)).resolves.toBeTruthy();
    await submit(keys, 'fresh.service', SIMPLE);
    await waitFor('fresh.service scheduled', async () => (await scheduleKeys(keys)).includes('m1/fresh.service'));
  });

  it('deposes itself one TTL after its last renewal when etcd stops answering, before etcd3 reports the lease lost', async () => {
    const keys = freshKeys();
    const e = engine(keys, 'paused');
    await waitFor('leads', () => e.fence);
    let lost = false;
    const deposed = new Promise<string>((resolve) => e.once('deposed', (_f, reason) => resolve(reason)));
    const pid = etcdPid(etcd.server.dataDir);
    const t0 = Date.now();
    process.kill(pid, 'SIGSTOP'); // etcd freezes: no keepalive answers, no writes
    try {
      const reason = await Promise.race([deposed, sleep(6000).then(() => 'timeout')]);
      const elapsed = Date.now() - t0;
      lost = reason === 'lease lost';
      // its own TTL clock, not etcd3's 'lost' (which comes at ~2 × TTL), deposed it
      expect(reason).toMatch(/not renewed within its TTL/);
      console.log(`deposed ${elapsed} ms after etcd froze (TTL 2 s)`);
      expect(e.state).toBe('follower');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(lost).toBe(false);
    // etcd is back: it leads again, in a new term if etcd expired the lease
    // meanwhile (it does: the pause outlasted the TTL), else in the same one
    const next = await waitFor('leads again', () => e.fence, 20_000);
    expect(next.id).toBe('paused');
    expect(await client.get(keys.leader()).string()).toBe('paused');
  }, 40_000);
});

/** pid of the etcd this file started (found by its own data dir), to pause and resume it. */
function etcdPid(dataDir: string): number {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.includes('/usr/bin/etcd') && l.includes(`--data-dir=${dataDir}/`));
  if (line === undefined) throw new Error(`no etcd with data dir ${dataDir}`);
  return Number(line.trim().split(/\s+/)[0]);
}

function putOp(machine: string, name: string) {
  return { type: 'put-schedule' as const, machine, record: { name, hash: 'h', targetState: 'launched' as const }, reason: 'test' };
}

describe('a restarted agent on the leader machine', () => {
  it('takes its own leader key back from its dead previous process instead of waiting for the lease', async () => {
    const keys = freshKeys();
    // The previous agent process of machine m1 led under a lease that is
    // still alive (it was SIGKILLed a moment ago; etcd expires it after 30 s).
    const stale = client.lease(30);
    await stale.put(keys.leader()).value('m1').exec();
    const staleId = await stale.grant();
    const staleCreate = (await client.get(keys.leader()).exec()).kvs[0]!.create_revision;
    const e = engine(keys, 'm1');
    await waitFor('m1 to lead again', () => e.state === 'leader');
    // it did not wait for etcd to expire the old lease: that lease still lives
    expect(Number((await client.leaseClient.leaseTimeToLive({ ID: staleId })).TTL)).toBeGreaterThan(0);
    expect(e.fence!.createRevision).not.toBe(staleCreate); // a new term, so the old one stays fenced out
    await stale.revoke().catch(() => undefined);
  });

  it('never takes a key that another machine holds', async () => {
    const keys = freshKeys();
    const other = client.lease(30);
    await other.put(keys.leader()).value('m2').exec();
    const e = engine(keys, 'm1');
    await waitFor('m1 to settle as follower', () => e.state === 'follower');
    await sleep(500);
    expect(e.state).toBe('follower');
    expect((await client.get(keys.leader()).string())).toBe('m2');
    await other.revoke().catch(() => undefined);
  });
});

describe('campaigning while etcd is frozen', () => {
  it('backs off between failed campaigns and warns once, not once per attempt', async () => {
    const keys = freshKeys();
    // pinned draws: every delay is the backoff's floor, so the bound below is exact
    const backoff = { initialMs: 100, maxMs: 1600, random: () => 0 };
    const election = new Election({ client, key: keys.leader(), id: 'frozen', ttlSeconds: 2, retryMs: 100, callTimeoutMs: 300, backoff });
    const warnings: string[] = [];
    election.on('warning', (w) => warnings.push(w.message));
    election.start();
    try {
      await waitFor('leads', () => election.leaderFence);
      const pid = etcdPid(etcd.server.dataDir);
      const before = election.campaignFailures;
      const warningsBefore = warnings.length;
      const t0 = Date.now();
      process.kill(pid, 'SIGSTOP');
      try {
        // long enough for the lease to lapse and campaigns to fail many times over
        await waitFor('several failed campaigns', () => election.campaignFailures - before >= 4, 20_000);
        await sleep(3000);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      const elapsed = Date.now() - t0;
      const failures = election.campaignFailures - before;
      // each failure waited at least its backoff floor: no more failures fit in the pause
      expect(failures).toBeLessThanOrEqual(maxFailuresWithin(elapsed, backoff) + 1);
      // one warning for the whole run of failures (the hot loop logged one per attempt)
      expect(warnings.length - warningsBefore).toBeLessThanOrEqual(1);
      await waitFor('leads again', () => election.leaderFence, 30_000);
    } finally {
      await election.stop();
    }
  }, 60_000);
});

/** How many consecutive failures can have happened in `ms` when each is followed by at least backoffDelay(n) with the floor draw. */
function maxFailuresWithin(ms: number, o: { initialMs: number; maxMs: number }): number {
  let n = 0;
  let spent = 0;
  for (;;) {
    spent += backoffDelay(n + 1, { ...o, random: () => 0 });
    if (spent > ms) return n + 1;
    n++;
  }
}
