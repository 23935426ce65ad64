/**
 * The rollout controller when leadership changes or the controller dies:
 * a deposed leader's fence is refused by etcd, and whoever leads next
 * carries the rollout on from etcd alone.
 */
import { execFileSync } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import { RolloutController } from '../../src/controller/controller.js';
import { ControllerStore } from '../../src/controller/store.js';
import { Engine } from '../../src/engine/engine.js';
import { isFencedOut } from '../../src/registry/fence.js';
import { isFleetxError } from '../../src/errors/errors.js';
import type { Keyspace } from '../../src/registry/keys.js';
import type { RolloutRecord } from '../../src/rollout/types.js';
import { body, FakeCluster, rolloutRecord, submitService } from '../helpers/controller-cluster.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { sleep, waitFor } from '../helpers/wait.js';

const etcd = useEtcd();
let client: Etcd3;
let cleanups: (() => Promise<void>)[] = [];

const NAMES = ['app@1.service', 'app@2.service', 'app@3.service'];
const V1 = body('1');

beforeAll(() => {
  client = etcd.client;
});

afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** The pid of the test etcd (the process listening on its client port). */
function etcdPid(): number {
  const port = new URL(etcd.server.endpoints[0]!).port;
  const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(out);
  if (m === null) throw new Error(`no process listens on ${port}: ${out}`);
  return Number(m[1]);
}

function engine(keys: Keyspace, id: string): Engine {
  const e = new Engine({ client, keys, machineId: id, leaseTtlSeconds: 2, retryMs: 200, debounceMs: 20, electionPollMs: 2000 });
  e.start();
  cleanups.push(() => e.stop());
  return e;
}

function controller(keys: Keyspace, e: Engine): RolloutController {
  const c = new RolloutController({ client, keys, engine: e, tickMs: 100, debounceMs: 30, retryMs: 200 });
  c.start();
  cleanups.push(() => c.stop());
  return c;
}

async function cluster(keys: Keyspace): Promise<FakeCluster> {
  await submitService(client, keys, V1, NAMES);
  const c = new FakeCluster({ client, keys, machines: ['m1', 'm2', 'm3'], services: { app: 'app@' } });
  await c.start();
  cleanups.push(() => c.stop());
  await waitFor('instances in', async () => {
    const st = await client.getAll().prefix(keys.presenceStatuses('app')).strings();
    return Object.values(st).filter((v) => JSON.parse(v).state === 'in').length === 3;
  });
  return c;
}

/** Starts a slow restart (600 ms healthy per instance) and waits until one instance is in flight. */
async function startRollout(keys: Keyspace, id: string): Promise<RolloutRecord> {
  const rec = rolloutRecord({ id, kind: 'restart', toHash: V1.hash, names: NAMES, policy: { minHealthyMs: 600 } });
  await client.put(keys.rollout('app')).value(JSON.stringify(rec)).exec();
  return waitFor('an instance in checking', async () => {
    const r = await etcd.json<RolloutRecord>(keys.rollout('app'));
    return r !== undefined && Object.values(r.instances).some((p) => p.phase === 'checking') && r;
  });
}

async function finished(keys: Keyspace, id: string): Promise<RolloutRecord> {
  return waitFor(`rollout ${id} in history`, () => etcd.json<RolloutRecord>(keys.rolloutHistory('app', id)), 30_000);
}

describe('rollout controller fail-over', () => {
  it('a deposed leader cannot write; a second engine and controller take over and finish', async () => {
    const keys = etcd.freshKeys('f');
    const a = engine(keys, 'm1');
    await waitFor('m1 leads', () => a.state === 'leader');
    const ca = controller(keys, a);
    const fake = await cluster(keys);
    await startRollout(keys, 'r1');
    const fenceA = a.fence!;

    // someone else takes the leader key (same create revision, other value, no lease)
    await client.put(keys.leader()).value('intruder').exec();
    await waitFor('controller A stands by', () => ca.state === 'standby');
    const frozen = await client.get(keys.rollout('app')).exec();
    await expect(ca.passOnce(fenceA)).rejects.toSatisfy(isFencedOut);
    const store = new ControllerStore(client, keys);
    const mod = frozen.kvs[0]!.mod_revision;
    const write = store.commit(fenceA, keys.rollout('app'), mod, [{ guards: [], ops: [{ type: 'delete', key: keys.rollout('app'), reason: 'test' }] }]);
    await expect(write).rejects.toSatisfy(isFencedOut);
    await sleep(500);
    const still = await client.get(keys.rollout('app')).exec();
    expect(still.kvs[0]?.mod_revision).toBe(mod);

    // A goes away; B is elected once the intruder lets go, and finishes the rollout
    await ca.stop();
    await a.stop();
    const b = engine(keys, 'm2');
    const cb = controller(keys, b);
    await client.delete().key(keys.leader()).exec();
    await waitFor('m2 leads', () => b.state === 'leader');
    const done = await finished(keys, 'r1');
    expect(done.state).toBe('succeeded');
    expect(cb.state).toBe('active');
    expect(fake.maxDown).toBe(1);
    expect(await client.getAll().prefix(keys.presenceHolds('app')).keys()).toEqual([]);
  }, 60_000);

  it('a new term of the same engine (lease revoked) refuses the old fence and finishes the rollout', async () => {
    const keys = etcd.freshKeys('f');
    const a = engine(keys, 'm1');
    await waitFor('m1 leads', () => a.state === 'leader');
    const ca = controller(keys, a);
    const fake = await cluster(keys);
    await startRollout(keys, 'r2');
    const old = a.fence!;
    const kv = await client.get(keys.leader()).exec();
    await client.leaseClient.leaseRevoke({ ID: kv.kvs[0]!.lease });
    await waitFor('a new term', () => a.fence !== undefined && a.fence.createRevision !== old.createRevision);
    await expect(ca.passOnce(old)).rejects.toSatisfy(isFencedOut);
    const done = await finished(keys, 'r2');
    expect(done.state).toBe('succeeded');
    expect(fake.maxDown).toBe(1);
  }, 60_000);

  it('a controller stopped mid-rollout leaves it where it is; a new one continues from etcd', async () => {
    const keys = etcd.freshKeys('f');
    const a = engine(keys, 'm1');
    await waitFor('m1 leads', () => a.state === 'leader');
    const first = controller(keys, a);
    const fake = await cluster(keys);
    await startRollout(keys, 'r3');
    await first.stop();
    expect(first.state).toBe('stopped');
    const frozen = (await client.get(keys.rollout('app')).exec()).kvs[0]!.mod_revision;
    await sleep(1000);
    expect((await client.get(keys.rollout('app')).exec()).kvs[0]!.mod_revision).toBe(frozen);

    const second = controller(keys, a);
    await waitFor('second controller active', () => second.state === 'active');
    const done = await finished(keys, 'r3');
    expect(done.state).toBe('succeeded');
    expect(Object.values(done.instances).map((p) => p.phase)).toEqual(['done', 'done', 'done']);
    expect(fake.maxDown).toBe(1);
  }, 60_000);

  it('a stale write never clobbers a newer rollout record', async () => {
    const keys = etcd.freshKeys('f');
    const a = engine(keys, 'm1');
    const fence = await waitFor('m1 leads', () => a.fence);
    const old = rolloutRecord({ id: 'old', kind: 'restart', toHash: V1.hash, names: NAMES });
    await client.put(keys.rollout('app')).value(JSON.stringify(old)).exec();
    const mod = (await client.get(keys.rollout('app')).exec()).kvs[0]!.mod_revision;
    // the old one ended and a user started the next one meanwhile
    const next = rolloutRecord({ id: 'next', kind: 'restart', toHash: V1.hash, names: NAMES });
    await client.put(keys.rollout('app')).value(JSON.stringify(next)).exec();

    const store = new ControllerStore(client, keys);
    const stale = store.commit(fence, keys.rollout('app'), mod, [
      { guards: [], ops: [{ type: 'put', key: keys.rolloutHistory('app', 'old'), value: '{}', reason: 'test' }, { type: 'delete', key: keys.rollout('app'), reason: 'test' }] },
    ]);
    await expect(stale).rejects.toSatisfy((e: unknown) => isFleetxError(e) && e.kind === 'conflict' && !isFencedOut(e));
    expect((await etcd.json<RolloutRecord>(keys.rollout('app')))!.id).toBe('next');
    expect(await client.get(keys.rolloutHistory('app', 'old')).string()).toBeNull();
  }, 30_000);

  it('etcd unresponsive mid-rollout: warnings, no crash, the rollout finishes once it answers again', async () => {
    const keys = etcd.freshKeys('f');
    const a = engine(keys, 'm1');
    await waitFor('m1 leads', () => a.state === 'leader');
    const c = new RolloutController({ client, keys, engine: a, tickMs: 100, debounceMs: 30, retryMs: 200, callTimeoutMs: 500 });
    const warnings: string[] = [];
    c.on('warning', (e) => warnings.push(`${e.kind}: ${e.message}`));
    c.start();
    cleanups.push(() => c.stop());
    const fake = await cluster(keys);
    await startRollout(keys, 'r4');
    const pid = etcdPid();
    process.kill(pid, 'SIGSTOP');
    try {
      await sleep(1500);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const done = await finished(keys, 'r4');
    expect(done.state).toBe('succeeded');
    expect(warnings.some((w) => w.startsWith('unavailable'))).toBe(true);
    expect(fake.maxDown).toBe(1);
  }, 60_000);
});
