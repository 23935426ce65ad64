/**
 * The leader's scheduling against a real etcd. Machines are simulated the
 * way agents announce themselves: a {p}/machine/{id} record under a lease of
 * their own, so revoking that lease is a machine dying.
 */
import { execFileSync } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3, Lease } from 'etcd3';
import type { Keyspace } from '../../src/registry/keys.js';
import type { ScheduleRecord, UnitRecord, UnschedulableRecord } from '../../src/registry/records.js';
import { Engine, type PassReport } from '../../src/engine/engine.js';
import { ViewCache, VIEW_PARTS, type ViewPart } from '../../src/engine/view-cache.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { announceMachine, submitUnit } from '../helpers/records.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { parseUnit } from '../../src/unit/parse.js';
import { unitHash } from '../../src/unit/hash.js';

const etcd = useEtcd();
let client: Etcd3;
const running: Engine[] = [];
const leases: Lease[] = [];

beforeAll(() => {
  client = etcd.client;
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.stop()));
  await Promise.all(leases.splice(0).map((l) => l.revoke().catch(() => undefined)));
});

interface Cluster {
  keys: Keyspace;
  engine: Engine;
  passes: PassReport[];
}

/** A vanished machine keeps its units this long (fleet #1289; short here, so moves are quick). */
const GRACE_MS = 300;

async function cluster(machineGraceMs = GRACE_MS): Promise<Cluster> {
  const keys = etcd.freshKeys('s');
  const engine = new Engine({ client, keys, machineId: 'engine-1', leaseTtlSeconds: 2, retryMs: 200, machineGraceMs });
  const passes: PassReport[] = [];
  engine.on('pass', (p) => passes.push(p));
  running.push(engine);
  engine.start();
  await waitFor('leadership', () => engine.state === 'leader');
  return { keys, engine, passes };
}

const submit = (keys: Keyspace, name: string, text: string, targetState?: UnitRecord['targetState']) => submitUnit(client, keys, name, text, targetState);

/** An agent's presence: its record under its own lease. Revoke the lease to kill the machine. */
async function machine(keys: Keyspace, id: string, metadata: Record<string, string> = {}, ttl = 30): Promise<Lease> {
  const lease = await announceMachine(client, keys, id, { metadata, ttl });
  leases.push(lease);
  return lease;
}

/** machine -> sorted unit names */
async function placements(keys: Keyspace): Promise<Record<string, string[]>> {
  const all = await client.getAll().prefix(keys.schedules()).keys();
  const out: Record<string, string[]> = {};
  for (const k of all.sort()) {
    const [m, name] = k.slice(keys.schedules().length).split('/') as [string, string];
    (out[m] ??= []).push(name);
  }
  return out;
}

async function record(keys: Keyspace, machineId: string, name: string): Promise<ScheduleRecord | undefined> {
  const v = await client.get(keys.schedule(machineId, name)).string();
  return v === null ? undefined : (JSON.parse(v) as ScheduleRecord);
}

const flat = (p: Record<string, string[]>) => Object.entries(p).flatMap(([m, ns]) => ns.map((x) => `${m}/${x}`)).sort();

const WEB = '[Unit]\nDescription=web %i\n\n[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nConflicts=web@*.service\n';
const PLAIN = '[Service]\nExecStart=/bin/true\n';
const GLOBAL = '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\n';

describe('engine scheduling', () => {
  it('spreads conflicting instances over machines and records why the 4th fits nowhere', async () => {
    const { keys } = await cluster();
    for (const m of ['m1', 'm2', 'm3']) await machine(keys, m);
    for (const i of [1, 2, 3, 4]) await submit(keys, `web@${i}.service`, WEB);

    const unsched = await waitFor('an unschedulable record', async () => {
      const v = await client.get(keys.unschedulable('web@4.service')).string();
      return v === null ? undefined : (JSON.parse(v) as UnschedulableRecord);
    });
    const p = await placements(keys);
    expect(Object.keys(p).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(Object.values(p).map((ns) => ns.length)).toEqual([1, 1, 1]);
    expect(flat(p).some((k) => k.endsWith('/web@4.service'))).toBe(false);
    expect(Object.keys(unsched.machines).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const why of Object.values(unsched.machines)) expect(why).toMatch(/Conflicts/);
    expect(unsched.reason).not.toBe('');

    // a 4th machine: the 4th instance is placed there and its record goes away
    await machine(keys, 'm4');
    await waitFor('web@4 on m4', async () => (await placements(keys)).m4?.includes('web@4.service'));
    await waitFor('unschedulable record removed', async () => (await client.get(keys.unschedulable('web@4.service')).string()) === null);
    const rec = await record(keys, 'm4', 'web@4.service');
    expect(rec).toEqual({ name: 'web@4.service', hash: unitHash(parseUnit(WEB)), targetState: 'launched' });
  });

  it('moves the units of a machine whose lease lapsed and deletes its schedule keys, once its grace is over', async () => {
    const { keys } = await cluster();
    const dying = await machine(keys, 'm1');
    await machine(keys, 'm2');
    await machine(keys, 'm3');
    for (const i of [1, 2]) await submit(keys, `web@${i}.service`, WEB);
    for (const x of ['a', 'b', 'c']) await submit(keys, `${x}.service`, PLAIN);
    await waitFor('5 placements', async () => flat(await placements(keys)).length === 5);
    const before = await placements(keys);
    const onDying = before.m1 ?? [];
    expect(onDying.length).toBeGreaterThan(0);

    const t0 = Date.now();
    await dying.revoke();
    const after = await waitFor('rescheduled', async () => {
      const p = await placements(keys);
      return p.m1 === undefined && flat(p).length === 5 ? p : undefined;
    });
    const elapsed = Date.now() - t0;
    for (const name of onDying) expect([...(after.m2 ?? []), ...(after.m3 ?? [])]).toContain(name);
    // units that were not on the dead machine did not move
    for (const m of ['m2', 'm3']) for (const name of before[m] ?? []) expect(after[m]).toContain(name);
    // conflicts still hold
    for (const ns of Object.values(after)) expect(ns.filter((x) => x.startsWith('web@')).length).toBeLessThanOrEqual(1);
    console.info(`[engine] dead machine's ${onDying.length} units rescheduled ${elapsed} ms after its lease was revoked (grace ${GRACE_MS} ms)`);
  });

  it('reschedules when a machine stops renewing its lease (a real lapse, not a revoke)', async () => {
    const { keys } = await cluster();
    const ttl = 2;
    const silent = await machine(keys, 'm1', {}, ttl);
    await machine(keys, 'm2');
    await submit(keys, 'only.service', '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineID=m1\n');
    await submit(keys, 'free.service', PLAIN);
    await submit(keys, 'other.service', PLAIN);
    await waitFor('3 placements', async () => flat(await placements(keys)).length === 3);
    const onM1 = (await placements(keys)).m1 ?? [];
    expect(onM1).toContain('only.service');

    const t0 = Date.now();
    silent.release(); // stop keepalives: etcd expires the lease after its TTL
    await waitFor('m1 emptied', async () => (await placements(keys)).m1 === undefined);
    const elapsed = Date.now() - t0;
    const p = await placements(keys);
    for (const name of onM1.filter((x) => x !== 'only.service')) expect(p.m2).toContain(name);
    // pinned to the dead machine: nowhere to go, and the record says why
    const why = await waitFor('only.service unschedulable', () => client.get(keys.unschedulable('only.service')).string().then((v) => v ?? undefined));
    expect(why).toMatch(/MachineID/);
    console.info(`[engine] lease of TTL ${ttl}s lapsed: m1 rescheduled ${elapsed} ms after its last keepalive stopped`);
  });

  it('a machine that re-registers within its grace keeps its units: nothing is moved or deleted (fleet #1289)', async () => {
    const { keys, passes } = await cluster(60_000);
    const m1 = await machine(keys, 'm1');
    await machine(keys, 'm2');
    for (const i of [1, 2]) await submit(keys, `web@${i}.service`, WEB);
    await waitFor('2 placements', async () => flat(await placements(keys)).length === 2);
    const before = await placements(keys);
    await m1.revoke(); // m1's record vanishes, as when etcd expired every lease after a pause
    await waitFor('a pass that holds m1', () => passes.some((p) => p.held.includes('m1')));
    await machine(keys, 'm1'); // and re-registers
    await waitFor('a pass that sees m1 back', () => passes.at(-1)!.held.length === 0 && passes.some((p) => p.held.includes('m1')));
    expect(await placements(keys)).toEqual(before);
    const touchedM1 = passes.flatMap((p) => p.ops).filter((o) => 'machine' in o && o.machine === 'm1' && o.type === 'delete-schedule');
    expect(touchedM1).toEqual([]);
  });

  it('after an etcd freeze longer than every TTL, a machine that re-registers late keeps its units (fleet #1289)', async () => {
    // defaults: no grace for a machine that dies while the engine is fine, 2 x TTL after the engine itself was cut off
    const { keys, passes } = await cluster(0);
    await machine(keys, 'm1', {}, 2);
    await machine(keys, 'm2');
    await submit(keys, 'a.service', PLAIN);
    await submit(keys, 'b.service', PLAIN);
    await waitFor('2 placements', async () => flat(await placements(keys)).length === 2);
    const before = await client.getAll().prefix(keys.schedules()).exec();
    const pid = etcdPid(etcd.server.dataDir);
    process.kill(pid, 'SIGSTOP');
    try {
      await sleep(6000); // 3 x TTL: the machine's and the engine's leases lapse
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const resumed = passes.length;
    // the engine leads again and passes while m1 has not re-registered yet: m1 is held, nothing deleted
    const first = await waitFor('a pass that sees m1 missing', () => passes.slice(resumed).find((p) => p.held.includes('m1')), 30_000);
    expect(first.ops.filter((o) => o.type === 'delete-schedule')).toEqual([]);
    await machine(keys, 'm1', {}, 2); // the agent re-registers
    await waitFor('a pass with m1 back', () => passes.length > resumed && passes.at(-1)!.held.length === 0 && passes.slice(resumed).some((p) => p.held.includes('m1')));
    const after = await client.getAll().prefix(keys.schedules()).exec();
    // the same keys, never deleted and rewritten (same create revisions)
    expect(after.kvs.map((kv) => [kv.key.toString(), kv.create_revision])).toEqual(before.kvs.map((kv) => [kv.key.toString(), kv.create_revision]));
    expect(passes.slice(resumed).flatMap((p) => p.ops).filter((o) => o.type === 'delete-schedule')).toEqual([]);
  }, 60_000);

  it('puts a global unit on a machine that registers later, and takes it off when the machine dies', async () => {
    const { keys } = await cluster();
    await machine(keys, 'm1');
    await submit(keys, 'agent.service', GLOBAL);
    await waitFor('global on m1', async () => (await placements(keys)).m1?.includes('agent.service'));
    const late = await machine(keys, 'm2');
    await waitFor('global on m2', async () => (await placements(keys)).m2?.includes('agent.service'));
    await late.revoke();
    await waitFor('gone from m2', async () => (await placements(keys)).m2 === undefined);
    expect((await placements(keys)).m1).toEqual(['agent.service']);
  });

  it('follows target state and body changes of placed units, and removes destroyed units', async () => {
    const { keys } = await cluster();
    await machine(keys, 'm1');
    const h1 = await submit(keys, 'app.service', PLAIN);
    await waitFor('app placed', async () => (await record(keys, 'm1', 'app.service'))?.targetState === 'launched');

    await submit(keys, 'app.service', PLAIN, 'loaded');
    await waitFor('loaded', async () => (await record(keys, 'm1', 'app.service'))?.targetState === 'loaded');

    const h2 = await submit(keys, 'app.service', PLAIN + 'Restart=always\n', 'loaded');
    expect(h2).not.toBe(h1);
    await waitFor('new hash', async () => (await record(keys, 'm1', 'app.service'))?.hash === h2);

    await submit(keys, 'app.service', PLAIN, 'inactive');
    await waitFor('inactive: unscheduled', async () => (await record(keys, 'm1', 'app.service')) === undefined);

    await submit(keys, 'app.service', PLAIN, 'launched');
    await waitFor('placed again', async () => (await record(keys, 'm1', 'app.service')) !== undefined);
    await client.delete().key(keys.unit('app.service')).exec();
    await waitFor('destroyed: unscheduled', async () => flat(await placements(keys)).length === 0);
  });

  it('honours machine metadata, including metadata set later with set-metadata', async () => {
    const { keys } = await cluster();
    await machine(keys, 'm1', { role: 'web' });
    await machine(keys, 'm2', { role: 'db' });
    await submit(keys, 'db.service', '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineMetadata=role=db\n');
    await submit(keys, 'cache.service', '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineMetadata=role=cache\n');
    await waitFor('db on m2', async () => (await placements(keys)).m2?.includes('db.service'));
    await waitFor('cache unschedulable', async () => (await client.get(keys.unschedulable('cache.service')).string()) !== null);
    await client.put(keys.machineMeta('m1')).value(JSON.stringify({ role: 'cache' })).exec();
    await waitFor('cache on m1', async () => (await placements(keys)).m1?.includes('cache.service'));
  });

  it('costs one etcd request for a pass that changes nothing, and few for a big one', async () => {
    const { keys, engine, passes } = await cluster();
    for (let m = 1; m <= 20; m++) await machine(keys, `m${String(m).padStart(2, '0')}`);
    // 200 units written in a few transactions, as a bulk submit would
    const texts = Array.from({ length: 200 }, (_, i) => `[Service]\nExecStart=/bin/echo ${i}\n`);
    for (let i = 0; i < 200; i += 50) {
      const ops = texts.slice(i, i + 50).flatMap((t, j) => {
        const hash = unitHash(parseUnit(t));
        const rec: UnitRecord = { name: `u${i + j}.service`, hash, targetState: 'launched' };
        return [client.put(keys.body(hash)).value(t), client.put(keys.unit(rec.name)).value(JSON.stringify(rec))];
      });
      await client.if(keys.unit('none'), 'Version', '==', 0).then(...ops).commit(); // always true: a plain batch
    }
    await waitFor('200 placements', async () => flat(await placements(keys)).length === 200);
    await sleep(300);
    const busy = passes.filter((p) => p.ops.length > 0);
    const totals = busy.reduce((a, p) => ({ ops: a.ops + p.ops.length, req: a.req + p.requests, ms: Math.max(a.ms, p.durationMs) }), { ops: 0, req: 0, ms: 0 });
    expect(totals.ops).toBeGreaterThanOrEqual(200);
    // per busy pass: 1 view read + at most 2 body reads (100 hashes each) + 1 write per 100 ops
    for (const p of busy) expect(p.requests).toBeLessThanOrEqual(1 + Math.ceil(p.bodiesFetched / 100) + Math.ceil(p.ops.length / 100));

    const quietBefore = engine.requests;
    const quiet = await engine.passOnce(engine.fence!, ['test']);
    expect(quiet.ops).toEqual([]);
    expect(quiet.requests).toBe(1);
    expect(engine.requests - quietBefore).toBe(1);
    console.info(
      `[engine] 200 units / 20 machines: ${busy.length} busy passes, ${totals.ops} ops in ${totals.req} requests, ` +
        `slowest pass ${totals.ms} ms; quiet pass: ${quiet.requests} request in ${quiet.durationMs} ms`,
    );
  });
});

describe('engine view cache', () => {
  /** A cache listed from etcd now, as the term's watches would have it. */
  async function listedCache(keys: Keyspace): Promise<ViewCache> {
    const prefixes: Record<ViewPart, string> = { units: keys.units(), machines: keys.machines(), machineMetas: keys.machineMetas(), schedules: keys.schedules(), unschedulable: keys.unschedulables() };
    const cache = new ViewCache();
    for (const part of VIEW_PARTS) {
      const res = await client.getAll().prefix(prefixes[part]).exec();
      cache.replace(part, res.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString(), modRevision: kv.mod_revision })), res.header.revision);
    }
    return cache;
  }

  it('plans from the cache without a request, and a write planned from a stale unit record is refused whole', async () => {
    const { keys, engine } = await cluster();
    await machine(keys, 'm1');
    await submit(keys, 'a.service', PLAIN);
    await waitFor('a on m1', async () => (await placements(keys)).m1?.includes('a.service'));

    const fresh = await listedCache(keys);
    const quiet = await engine.passOnce(engine.fence!, ['test'], undefined, fresh);
    expect(quiet).toMatchObject({ view: 'cache', ops: [], requests: 0 });

    // a unit the view still has but etcd no longer does (destroyed; its watch event not yet delivered)
    const stale = await listedCache(keys);
    const ghost: UnitRecord = { name: 'ghost.service', hash: unitHash(parseUnit(PLAIN)), targetState: 'launched' };
    const units = stale.raw().units.map((kv) => ({ key: kv.key, value: kv.value, modRevision: kv.modRevision! }));
    stale.replace('units', [...units, { key: keys.unit('ghost.service'), value: JSON.stringify(ghost), modRevision: '2' }], stale.raw().revision);
    await expect(engine.passOnce(engine.fence!, ['test'], undefined, stale)).rejects.toMatchObject({ kind: 'conflict' });
    expect(flat(await placements(keys))).toEqual(['m1/a.service']);
  });
});

/** pid of the etcd this file started (found by its own data dir), to freeze and resume it. */
function etcdPid(dataDir: string): number {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.includes('/usr/bin/etcd') && l.includes(`--data-dir=${dataDir}/`));
  if (line === undefined) throw new Error(`no etcd with data dir ${dataDir}`);
  return Number(line.trim().split(/\s+/)[0]);
}
