/**
 * The agent's etcd side against a real etcd (no systemd needed): the
 * schedule list+watch loop, lease registration with state records, and
 * recovery from an etcd restart, a compaction and a revoked lease.
 * etcd runs from a fixed data dir so the test can stop and restart it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registration } from '../../src/agent/registration.js';
import { StateReporter } from '../../src/agent/reporter.js';
import { ScheduleSource } from '../../src/agent/schedule.js';
import { StopSignal } from '../../src/agent/util.js';
import { connect } from '../../src/registry/client.js';
import { keyspace } from '../../src/registry/keys.js';
import type { MachineRecord, UnitStateRecord } from '../../src/registry/records.js';
import { startEtcd, stopEtcd } from '../../src/sandbox/etcd.js';
import { freePort } from '../helpers/etcd.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor as until } from '../helpers/wait.js';

const keys = keyspace('/fx-agent-test');
const ME = 'machine-a';
let dir: string;
let spec: { dataDir: string; logFile: string; clientUrl: string; peerUrl: string };
let client: Etcd3; // the agent's, through a TCP proxy the test can cut
let proxy: TcpProxy;
let admin: Etcd3; // the test's, playing engine and operator

const sched = (name: string, hash = 'h1', targetState = 'launched') => JSON.stringify({ name, hash, targetState });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleetx-agent-etcd-'));
  const [cp, pp] = [await freePort(), await freePort()];
  spec = { dataDir: join(dir, 'data'), logFile: join(dir, 'etcd.log'), clientUrl: `http://127.0.0.1:${cp}`, peerUrl: `http://127.0.0.1:${pp}` };
  await startEtcd(spec);
  proxy = await TcpProxy.start(cp);
  client = connect({ endpoints: [proxy.url], requestTimeoutMs: 2000, prefix: keys.prefix });
  admin = connect({ endpoints: [spec.clientUrl], requestTimeoutMs: 2000, prefix: keys.prefix });
});

afterAll(async () => {
  client?.close();
  await proxy?.cut();
  admin?.close();
  await stopEtcd(spec.dataDir);
  await rm(dir, { recursive: true, force: true });
});

describe('ScheduleSource: list, then watch only this machine', () => {
  it('follows puts and deletes, ignores other machines and malformed records', async () => {
    await admin.put(keys.schedule(ME, 'a.service')).value(sched('a.service'));
    await admin.put(keys.schedule('other', 'x.service')).value(sched('x.service'));
    const problems: string[] = [];
    let changes = 0;
    const src = new ScheduleSource(client, keys, ME, { changed: () => changes++, connection: () => undefined, problem: (m) => problems.push(m) });
    void src.start();
    try {
      await until('listed', () => src.isSynced && src.isLive);
      expect(src.snapshot()).toEqual([{ name: 'a.service', hash: 'h1', targetState: 'launched' }]);

      await admin.put(keys.schedule(ME, 'b.service')).value(sched('b.service', 'h2', 'loaded'));
      await admin.put(keys.schedule(ME, 'bad.service')).value('{not json');
      await admin.delete().key(keys.schedule(ME, 'a.service'));
      await until('watched', () => src.snapshot().length === 1 && src.snapshot()[0]!.name === 'b.service');
      expect(src.snapshot()).toEqual([{ name: 'b.service', hash: 'h2', targetState: 'loaded' }]);
      expect(problems.some((p) => p.includes('malformed') && p.includes('bad.service'))).toBe(true);
      expect(changes).toBeGreaterThanOrEqual(3);
    } finally {
      await src.stop();
    }
    await admin.delete().prefix(keys.schedules());
  });

  // probeMs: the agent's own "is etcd back?" probe (fast path, re-lists at once) or, when
  // effectively disabled, etcd3's reconnect, whose compacted start revision fails the watch ('error' path)
  it.each([
    ['the probe re-lists as soon as etcd answers', 500, 15_000],
    ['etcd3 reconnects, the watch fails on the compacted revision, the agent re-lists', 600_000, 30_000],
  ])('recovers from a cut to etcd with compaction in between: %s', async (_, probeMs, withinMs) => {
    await admin.put(keys.schedule(ME, 'c.service')).value(sched('c.service'));
    const problems: string[] = [];
    // a client of its own: each case starts with fresh gRPC channels and circuit breakers
    const own = connect({ endpoints: [proxy.url], requestTimeoutMs: 2000, prefix: keys.prefix });
    const src = new ScheduleSource(own, keys, ME, { changed: () => undefined, connection: () => undefined, problem: (m) => problems.push(m) }, probeMs);
    void src.start();
    try {
      await until('listed', () => src.isLive && src.snapshot().length === 1);
      await proxy.cut(); // the agent is cut off from etcd, the operator is not
      await until('cut off', () => !src.isLive);
      // changes, then compaction past them, while the agent cannot see them
      await admin.put(keys.schedule(ME, 'd.service')).value(sched('d.service'));
      await admin.delete().key(keys.schedule(ME, 'c.service'));
      const put = await admin.put(keys.schedule(ME, 'e.service')).value(sched('e.service'));
      await admin.kv.compact({ revision: put.header.revision, physical: true });
      await new Promise((r) => setTimeout(r, 1000));
      expect(src.snapshot().map((r) => r.name)).toEqual(['c.service']); // last known, kept
      await proxy.restore();
      await until('caught up', () => src.isLive && src.snapshot().map((r) => r.name).sort().join() === 'd.service,e.service', withinMs);
      if (probeMs > 100_000) expect(problems).toContain(`watch on ${keys.machineSchedule(ME)} failed; listing again`);
    } finally {
      await src.stop();
      own.close();
    }
    await admin.delete().prefix(keys.schedules());
  }, 90_000);
});

describe('Registration and StateReporter: one lease for presence and states', () => {
  it('registers, reports, and after the lease is revoked re-registers and rewrites the states', async () => {
    const identity = { id: ME, ip: '10.0.0.5', hostname: 'a', metadata: { region: 'eu' } };
    const leases: string[] = [];
    let reporter!: StateReporter;
    const reg = new Registration(client, keys, identity, { ttlSec: 3, version: 'test', startedAt: '2026-01-01T00:00:00.000Z' }, {
      registered: (id) => {
        leases.push(id);
        reporter.rewriteAll();
      },
      lost: () => undefined,
      problem: () => undefined,
    });
    reporter = new StateReporter({ machineId: ME, keys, sink: reg, now: () => new Date('2026-01-01T00:00:00Z'), coalesceMs: 10, retryMs: 100 });
    const stop = new StopSignal();
    const loops = [reg.run(stop), reg.watchMeta()];
    try {
      const machine = await until('machine record', async () => (await admin.get(keys.machine(ME)).json()) as MachineRecord | null ?? undefined);
      expect(machine).toMatchObject({ id: ME, ip: '10.0.0.5', metadata: { region: 'eu' }, version: 'test' });

      reporter.setManaged(new Map([['web.service', 'h1']]));
      reporter.observe({ name: 'web.service', loadState: 'loaded', activeState: 'active', subState: 'running', mainPid: 42 });
      reporter.observe({ name: 'other.service', loadState: 'loaded', activeState: 'active', subState: 'running' });
      const state = await until('state record', async () => (await admin.get(keys.state(ME, 'web.service')).json()) as UnitStateRecord | null ?? undefined);
      expect(state).toEqual({ name: 'web.service', machine: ME, hash: 'h1', loadState: 'loaded', activeState: 'active', subState: 'running', mainPid: 42, updatedAt: '2026-01-01T00:00:00.000Z' });
      expect(await admin.get(keys.state(ME, 'other.service')).string()).toBeNull();
      const lease1 = (await admin.get(keys.state(ME, 'web.service')).exec()).kvs[0]!.lease;
      expect(lease1).toBe((await admin.get(keys.machine(ME)).exec()).kvs[0]!.lease);

      // machine-meta set later (fleetx set-metadata) is merged into the record
      await admin.put(keys.machineMeta(ME)).value(JSON.stringify({ disk: 'ssd' }));
      await until('meta merged', async () => ((await admin.get(keys.machine(ME)).json()) as MachineRecord).metadata.disk === 'ssd');

      // the lease disappears (expired during a partition, or revoked): both records go, then come back
      await admin.leaseClient.leaseRevoke({ ID: lease1 });
      await until('re-registered', () => leases.length === 2, 15_000);
      await until('state rewritten', async () => (await admin.get(keys.state(ME, 'web.service')).exec()).kvs[0]?.lease === leases[1]);
      expect((await admin.get(keys.machine(ME)).exec()).kvs[0]!.lease).toBe(leases[1]);

      // a unit no longer managed: its record is deleted
      reporter.setManaged(new Map());
      await until('state deleted', async () => (await admin.get(keys.state(ME, 'web.service')).string()) === null);
    } finally {
      stop.stop();
      await Promise.all([...loops, reg.stopWatchingMeta()]);
      reporter.close();
      await reg.revoke();
    }
    expect(await admin.get(keys.machine(ME)).string()).toBeNull();
  }, 40_000);
});
