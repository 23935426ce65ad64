/**
 * The rollout controller against a real etcd, with a real Engine for
 * leadership and scheduling, and a fake cluster (agents + presence syncer
 * writing their records into etcd) reacting to the engine's schedule keys.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import { RolloutController, type ControllerPassReport } from '../../src/controller/controller.js';
import { Engine } from '../../src/engine/engine.js';
import type { Keyspace } from '../../src/registry/keys.js';
import type { UnitRecord, UnitStateRecord } from '../../src/registry/records.js';
import type { RolloutControl, RolloutRecord } from '../../src/rollout/types.js';
import type { RevisionRecord, ServiceRecord } from '../../src/service/types.js';
import { body, FakeCluster, POLICY, rolloutRecord, submitService } from '../helpers/controller-cluster.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { sleep, waitFor } from '../helpers/wait.js';

const etcd = useEtcd();
let client: Etcd3;
const cleanups: (() => Promise<void>)[] = [];

const NAMES = ['app@1.service', 'app@2.service', 'app@3.service'];
const V1 = body('1');
const V2 = body('2');

beforeAll(() => {
  client = etcd.client;
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fresh keyspace with the service on V1 everywhere, a leading engine, the controller and the fake cluster. */
async function setup(opts: { badHashes?: Set<string>; services?: Record<string, string[]> } = {}) {
  const keys = etcd.freshKeys('c');
  const services = opts.services ?? { app: NAMES };
  for (const [svc, names] of Object.entries(services)) await submitService(client, keys, V1, names, `${svc}@.service`);
  const engine = new Engine({ client, keys, machineId: 'm1', leaseTtlSeconds: 2, retryMs: 200, debounceMs: 20 });
  engine.start();
  cleanups.push(() => engine.stop());
  const cluster = new FakeCluster({ client, keys, machines: ['m1', 'm2', 'm3'], services: Object.fromEntries(Object.keys(services).map((s) => [s, `${s}@`])), badHashes: opts.badHashes });
  await cluster.start();
  cleanups.push(() => cluster.stop());
  const controller = new RolloutController({ client, keys, engine, tickMs: 100, debounceMs: 30, retryMs: 200 });
  const warnings: string[] = [];
  controller.on('warning', (e) => warnings.push(e.message));
  const passes: ControllerPassReport[] = [];
  controller.on('pass', (p) => passes.push(p));
  controller.start();
  cleanups.push(() => controller.stop());
  // every instance up and in the balancer before the rollout starts
  for (const [svc, names] of Object.entries(services)) {
    await waitFor(`${svc} instances active and in`, async () => {
      const st = await client.getAll().prefix(keys.presenceStatuses(svc)).strings();
      return Object.values(st).filter((v) => JSON.parse(v).state === 'in').length === names.length;
    });
  }
  await waitFor('controller active', () => controller.state === 'active');
  return { keys, engine, cluster, controller, warnings, passes };
}

async function history(keys: Keyspace, id: string, svc = 'app'): Promise<RolloutRecord> {
  return waitFor(`rollout ${id} in history`, () => etcd.json<RolloutRecord>(keys.rolloutHistory(svc, id)), 30_000);
}

describe('rollout controller', () => {
  it('rolls a restart through 3 instances one at a time and archives it', async () => {
    const { keys, cluster, controller, engine, warnings, passes } = await setup();
    const start = cluster.events.length;
    await client.put(keys.rollout('app')).value(JSON.stringify(rolloutRecord({ id: 'r1', kind: 'restart', toHash: V1.hash, names: NAMES }))).exec();

    const done = await history(keys, 'r1');
    expect(done.state).toBe('succeeded');
    expect(done.finishedAt).toBeDefined();
    expect(Object.values(done.instances).map((p) => p.phase)).toEqual(['done', 'done', 'done']);
    expect(await client.get(keys.rollout('app')).string()).toBeNull();
    expect(await client.get(keys.rolloutControl('app')).string()).toBeNull();
    expect(await client.getAll().prefix(keys.presenceHolds('app')).keys()).toEqual([]);
    expect(cluster.maxDown).toBe(1);

    const events = cluster.events.slice(start);
    for (const name of NAMES) {
      // hold -> unit loaded -> unit launched -> release, in etcd's order
      const seq: string[] = [];
      for (const e of events) {
        if (e.key === keys.presenceHold('app', name)) seq.push(e.type === 'put' ? 'hold' : 'release');
        if (e.key === keys.unit(name) && e.type === 'put') seq.push((JSON.parse(e.value) as UnitRecord).targetState);
      }
      expect(seq, name).toEqual(['hold', 'loaded', 'launched', 'release']);
      // the phases the record went through, without repeats
      const phases: string[] = [];
      for (const e of events) {
        // the last step may go straight to history (done and finished in one pass)
        if ((e.key !== keys.rollout('app') && e.key !== keys.rolloutHistory('app', 'r1')) || e.type !== 'put') continue;
        const p = (JSON.parse(e.value) as RolloutRecord).instances[name]!.phase;
        if (phases.at(-1) !== p) phases.push(p);
      }
      // (a pass that comes after the minimum healthy time moves starting -> checking -> joining at once)
      const seen = phases.filter((p) => ['stopping', 'starting', 'checking', 'done'].includes(p));
      expect(seen.filter((p) => p !== 'checking'), name).toEqual(['stopping', 'starting', 'done']);
      if (seen.includes('checking')) expect(seen, name).toEqual(['stopping', 'starting', 'checking', 'done']);
      expect(phases[0], name).toBe('pending');
    }
    // instances went one after another: each was done before the next one was held
    const holdAt = (name: string) => events.find((e) => e.key === keys.presenceHold('app', name) && e.type === 'put')!.revision;
    const releaseAt = (name: string) => events.find((e) => e.key === keys.presenceHold('app', name) && e.type === 'delete')!.revision;
    const order = [...NAMES].sort((a, b) => Number(holdAt(a) - holdAt(b)));
    expect(releaseAt(order[0]!) < holdAt(order[1]!)).toBe(true);
    expect(releaseAt(order[1]!) < holdAt(order[2]!)).toBe(true);

    // cost: 1 read without rollouts, 2 with, plus one transaction per write batch
    expect(passes.filter((p) => p.rollouts > 0).length).toBeGreaterThan(5);
    for (const p of passes) expect(p.requests).toBe((p.rollouts > 0 ? 2 : 1) + p.steps.reduce((s, x) => s + x.transactions, 0));
    expect(passes.every((p) => p.steps.every((s) => s.transactions <= 1))).toBe(true);
    // with nothing running, a pass is one request
    const idle = await controller.passOnce(await waitFor('fence', () => engine.fence));
    expect(idle.rollouts).toBe(0);
    expect(idle.requests).toBe(1);
    expect(warnings).toEqual([]);
  }, 60_000);

  it('fails a deploy whose body never gets healthy after the deadline and reverts every instance', async () => {
    const { keys, cluster } = await setup({ badHashes: new Set([V2.hash]) });
    // what `fleetx deploy` writes: body, revision 2, service on it, template on V2, the rollout
    const rev1: RevisionRecord = { service: 'app', revision: 1, hash: V1.hash, values: { greeting: 'hi' }, createdAt: '', createdBy: 't', healthy: true };
    const rev2: RevisionRecord = { ...rev1, revision: 2, hash: V2.hash, values: { greeting: 'hola' }, healthy: false };
    const svc = { name: 'app', template: 'app@.service', values: { greeting: 'hola' }, instances: 3, rollout: POLICY, revision: 2, updatedAt: '' } as unknown as ServiceRecord;
    await client.put(keys.body(V2.hash)).value(V2.text).exec();
    await client.put(keys.revision('app', 1)).value(JSON.stringify(rev1)).exec();
    await client.put(keys.revision('app', 2)).value(JSON.stringify(rev2)).exec();
    await client.put(keys.service('app')).value(JSON.stringify(svc)).exec();
    await client.put(keys.unit('app@.service')).value(JSON.stringify({ name: 'app@.service', hash: V2.hash, targetState: 'inactive' })).exec();
    const rec = rolloutRecord({
      id: 'r2', kind: 'deploy', toHash: V2.hash, toRevision: 2, names: NAMES,
      revertTo: { revision: 1, hash: V1.hash }, policy: { deadlineMs: 1500 },
    });
    const t0 = Date.now();
    await client.put(keys.rollout('app')).value(JSON.stringify(rec)).exec();

    const done = await history(keys, 'r2');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expect(done.state).toBe('failed');
    expect(done.message).toMatch(/reverted to revision 1/);
    expect(Object.values(done.instances).map((p) => [p.phase, p.targetHash])).toEqual(NAMES.map(() => ['done', V1.hash]));
    for (const name of NAMES) {
      const u = (await etcd.json<UnitRecord>(keys.unit(name)))!;
      expect([u.hash, u.targetState]).toEqual([V1.hash, 'launched']);
    }
    // only one instance ever ran the bad body
    const triedBad = NAMES.filter((name) => cluster.eventsOf(keys.unit(name)).some((e) => (JSON.parse(e.value) as UnitRecord).hash === V2.hash));
    expect(triedBad).toHaveLength(1);
    expect(cluster.maxDown).toBe(1);
    expect((await etcd.json<RevisionRecord>(keys.revision('app', 2)))!.healthy).toBe(false);
    // the service and its template say what runs again
    // with revision 1's values, so the next plan or deploy does not carry the failed ones
    expect(await etcd.json<ServiceRecord>(keys.service('app'))).toMatchObject({ revision: 1, values: { greeting: 'hi' } });
    expect((await etcd.json<UnitRecord>(keys.unit('app@.service')))!.hash).toBe(V1.hash);
    expect(await client.get(keys.rollout('app')).string()).toBeNull();
    expect(await client.getAll().prefix(keys.presenceHolds('app')).keys()).toEqual([]);
    // everything is back in the balancer
    await waitFor('all in', async () => {
      const st = await client.getAll().prefix(keys.presenceStatuses('app')).strings();
      return Object.values(st).filter((v) => JSON.parse(v).state === 'in').length === 3;
    });
  }, 60_000);

  it('marks the revision healthy when a deploy succeeds', async () => {
    const { keys } = await setup();
    const rev2: RevisionRecord = { service: 'app', revision: 2, hash: V2.hash, values: {}, createdAt: '', createdBy: 't', healthy: false };
    await client.put(keys.body(V2.hash)).value(V2.text).exec();
    await client.put(keys.revision('app', 2)).value(JSON.stringify(rev2)).exec();
    await client.put(keys.rollout('app')).value(JSON.stringify(rolloutRecord({ id: 'r3', kind: 'deploy', toHash: V2.hash, toRevision: 2, names: NAMES, presence: false }))).exec();
    const done = await history(keys, 'r3');
    expect(done.state).toBe('succeeded');
    expect((await etcd.json<RevisionRecord>(keys.revision('app', 2)))!.healthy).toBe(true);
    for (const name of NAMES) expect((await etcd.json<UnitRecord>(keys.unit(name)))!.hash).toBe(V2.hash);
  }, 60_000);

  it('surge 1: an extra instance comes up first, two old ones may go at once, the extra one is destroyed before the rollout succeeds', async () => {
    const { keys, cluster, warnings } = await setup();
    const start = cluster.events.length;
    const SURGE = 'app@4.service';
    const rev2: RevisionRecord = { service: 'app', revision: 2, hash: V2.hash, values: {}, createdAt: '', createdBy: 't', healthy: false };
    const rec = rolloutRecord({ id: 'rs', kind: 'deploy', toHash: V2.hash, toRevision: 2, names: NAMES, policy: { surge: 1, minHealthyMs: 300 } });
    // what `fleetx deploy` writes with rollout.surge 1: the surge unit, launched on the new body, with the record, in one transaction
    rec.instances[SURGE] = { unit: SURGE, phase: 'starting', since: rec.createdAt, startedAt: rec.createdAt, targetHash: V2.hash, surge: true };
    const surgeUnit: UnitRecord = { name: SURGE, hash: V2.hash, targetState: 'launched', template: 'app@.service' };
    await client.if(keys.rollout('app'), 'Create', '==', 0).then(
      client.put(keys.body(V2.hash)).value(V2.text),
      client.put(keys.revision('app', 2)).value(JSON.stringify(rev2)),
      client.put(keys.unit(SURGE)).value(JSON.stringify(surgeUnit)),
      client.put(keys.rollout('app')).value(JSON.stringify(rec)),
    ).commit();

    const done = await history(keys, 'rs');
    expect(done.state, done.message).toBe('succeeded');
    expect(done.instances[SURGE]).toMatchObject({ phase: 'done', surge: true, note: 'surge instance destroyed' });
    for (const name of NAMES) {
      expect(done.instances[name]?.phase).toBe('done');
      expect((await etcd.json<UnitRecord>(keys.unit(name)))!.hash).toBe(V2.hash);
    }
    expect((await etcd.json<RevisionRecord>(keys.revision('app', 2)))!.healthy).toBe(true);
    // the extra instance was really there: scheduled, active, in the balancer
    const events = cluster.events.slice(start);
    const surgeStates = events.filter((e) => e.key.startsWith(keys.states()) && e.key.endsWith(`/${SURGE}`));
    expect(surgeStates.some((e) => e.type === 'put' && (JSON.parse(e.value) as UnitStateRecord).activeState === 'active')).toBe(true);
    expect(events.some((e) => e.key === keys.presenceStatus('app', SURGE) && e.type === 'put' && JSON.parse(e.value).state === 'in')).toBe(true);
    // ... and is gone: no unit record, no hold; the engine unschedules it and the agent's state goes
    expect(await client.get(keys.unit(SURGE)).string()).toBeNull();
    expect(await client.getAll().prefix(keys.presenceHolds('app')).keys()).toEqual([]);
    await waitFor('surge instance unscheduled', async () => {
      const left = (await client.getAll().prefix(keys.schedules()).keys()).filter((k) => k.endsWith(`/${SURGE}`));
      const states = (await client.getAll().prefix(keys.states()).keys()).filter((k) => k.endsWith(`/${SURGE}`));
      return left.length === 0 && states.length === 0;
    });
    // its unit record was deleted (by the controller) only after it left the balancer
    const destroyedAt = events.find((e) => e.key === keys.unit(SURGE) && e.type === 'delete')!.revision;
    const outAt = events.filter((e) => e.key === keys.presenceStatus('app', SURGE) && e.type === 'put' && JSON.parse(e.value).state === 'out').at(-1)!.revision;
    expect(outAt < destroyedAt).toBe(true);
    // the surge widened the budget: two old instances were held out at once at some point
    let held = 0;
    let most = 0;
    for (const e of events) {
      if (!NAMES.some((n) => e.key === keys.presenceHold('app', n))) continue;
      held += e.type === 'put' ? 1 : -1;
      most = Math.max(most, held);
    }
    expect(most).toBe(2);
    expect(warnings).toEqual([]);
  }, 60_000);

  it('pause starts no new instance, resume carries on', async () => {
    const { keys } = await setup();
    const rec = rolloutRecord({ id: 'r4', kind: 'restart', toHash: V1.hash, names: NAMES, policy: { minHealthyMs: 600 } });
    await client.put(keys.rollout('app')).value(JSON.stringify(rec)).exec();
    await waitFor('an instance in flight', async () => {
      const r = await etcd.json<RolloutRecord>(keys.rollout('app'));
      return r !== undefined && Object.values(r.instances).some((p) => p.phase !== 'pending');
    });
    const pause: RolloutControl = { command: 'pause', by: 'tester', at: new Date().toISOString() };
    await client.put(keys.rolloutControl('app')).value(JSON.stringify(pause)).exec();

    // the one in flight finishes, nothing else starts
    const paused = await waitFor('paused with the first instance done', async () => {
      const r = await etcd.json<RolloutRecord>(keys.rollout('app'));
      return r?.state === 'paused' && Object.values(r.instances).some((p) => p.phase === 'done') && r;
    });
    expect(Object.values(paused.instances).filter((p) => p.phase === 'pending')).toHaveLength(2);
    await sleep(1500);
    const still = (await etcd.json<RolloutRecord>(keys.rollout('app')))!;
    expect(still.state).toBe('paused');
    expect(Object.values(still.instances).map((p) => p.phase).sort()).toEqual(['done', 'pending', 'pending']);

    const resume: RolloutControl = { command: 'resume', by: 'tester', at: new Date().toISOString() };
    await client.put(keys.rolloutControl('app')).value(JSON.stringify(resume)).exec();
    const done = await history(keys, 'r4');
    expect(done.state).toBe('succeeded');
    expect(done.control?.command).toBe('resume');
    expect(await client.get(keys.rolloutControl('app')).string()).toBeNull();
  }, 60_000);

  it('abort lets the instance in flight finish, leaves the rest and archives the rollout aborted', async () => {
    const { keys, cluster } = await setup();
    const rec = rolloutRecord({ id: 'r5', kind: 'restart', toHash: V1.hash, names: NAMES, policy: { minHealthyMs: 600 } });
    await client.put(keys.rollout('app')).value(JSON.stringify(rec)).exec();
    await waitFor('an instance checking', async () => {
      const r = await etcd.json<RolloutRecord>(keys.rollout('app'));
      return r !== undefined && Object.values(r.instances).some((p) => p.phase === 'checking');
    });
    const abort: RolloutControl = { command: 'abort', by: 'tester', at: new Date().toISOString() };
    await client.put(keys.rolloutControl('app')).value(JSON.stringify(abort)).exec();
    const done = await history(keys, 'r5');
    expect(done.state).toBe('aborted');
    expect(Object.values(done.instances).map((p) => p.phase).sort()).toEqual(['done', 'pending', 'pending']);
    expect(await client.get(keys.rollout('app')).string()).toBeNull();
    expect(await client.get(keys.rolloutControl('app')).string()).toBeNull();
    expect(await client.getAll().prefix(keys.presenceHolds('app')).keys()).toEqual([]);
    // the two left pending were never touched
    const touched = NAMES.filter((name) => cluster.eventsOf(keys.unit(name)).length > 0);
    expect(touched).toHaveLength(1);
  }, 60_000);

  it('rolls two services at once, each within its own budget', async () => {
    const web = ['web@1.service', 'web@2.service'];
    const { keys, cluster, passes } = await setup({ services: { app: NAMES, web } });
    await client.put(keys.rollout('app')).value(JSON.stringify(rolloutRecord({ id: 'ra', kind: 'restart', toHash: V1.hash, names: NAMES }))).exec();
    await client.put(keys.rollout('web')).value(JSON.stringify(rolloutRecord({ id: 'rw', service: 'web', template: 'web@.service', kind: 'restart', toHash: V1.hash, names: web }))).exec();
    expect((await history(keys, 'ra')).state).toBe('succeeded');
    expect((await history(keys, 'rw', 'web')).state).toBe('succeeded');
    expect(cluster.maxDownOf.get('app')).toBe(1);
    expect(cluster.maxDownOf.get('web')).toBe(1);
    // both rollouts were read in the same passes: still 2 reads a pass
    const both = passes.filter((p) => p.rollouts === 2);
    expect(both.length).toBeGreaterThan(0);
    for (const p of both) expect(p.requests).toBe(2 + p.steps.reduce((s, x) => s + x.transactions, 0));
  }, 60_000);

  it('splits a step larger than one transaction into batches and still finishes', async () => {
    const many = Array.from({ length: 110 }, (_, i) => `big@${String(i + 1).padStart(3, '0')}.service`);
    const { keys, passes } = await setup({ services: { big: many } });
    const rec = rolloutRecord({ id: 'rb', service: 'big', template: 'big@.service', kind: 'restart', toHash: V1.hash, names: many, presence: false, policy: { maxUnavailable: 110, minHealthyMs: 100 } });
    await client.put(keys.rollout('big')).value(JSON.stringify(rec)).exec();
    const done = await history(keys, 'rb', 'big');
    expect(done.state, done.message).toBe('succeeded');
    expect(Object.values(done.instances).every((p) => p.phase === 'done')).toBe(true);
    // 110 set-unit + the record: more than one transaction
    const steps = passes.flatMap((p) => p.steps);
    expect(steps.some((s) => s.transactions > 1)).toBe(true);
    expect(Math.max(...steps.map((s) => s.writes.length))).toBeGreaterThan(100);
    expect(await client.getAll().prefix(keys.presenceHolds('big')).keys()).toEqual([]);
  }, 60_000);
});
