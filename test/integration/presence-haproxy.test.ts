/**
 * The presence syncer against a REAL HAProxy and a REAL etcd: health,
 * holds and machines written straight into etcd, the syncer in-process,
 * HAProxy's own view (`show stat`) and real requests through its frontend
 * as the proof.
 *
 * The three instances "run" on three machines whose IPs are 127.0.0.1-3
 * (all loopback on Linux), so they share the service's port as instances on
 * real machines would.
 */
import type { Etcd3, Watcher } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthRecord, HealthStatus } from '../../src/health/types.js';
import { HaproxyDriver } from '../../src/presence/drivers/haproxy.js';
import { PresenceSyncer } from '../../src/presence/syncer.js';
import type { PresenceHold, PresenceStatusRecord } from '../../src/presence/types.js';
import { connect } from '../../src/registry/client.js';
import { resolveConnection, type ConnectionOptions } from '../../src/registry/connection.js';
import { keyspace } from '../../src/registry/keys.js';
import type { MachineRecord } from '../../src/registry/records.js';
import type { ServiceRecord } from '../../src/service/types.js';
import { freePort } from '../helpers/etcd.js';
import { startBackend, startHaproxy, type HaproxyServer, type TestBackend } from '../helpers/haproxy.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { waitForWith } from '../helpers/wait.js';

const keys = keyspace('/fleetx');
const UNITS = ['app@1.service', 'app@2.service', 'app@3.service'];

const etcd = useEtcd();
let lb: HaproxyServer;
let client: Etcd3;
let conn: ConnectionOptions;
let syncer: PresenceSyncer | undefined;
let statusWatch: Watcher | undefined;
const backends: TestBackend[] = [];
const problems: string[] = [];
/** every presence-status put/delete, in order */
const history: Array<{ unit: string; state: PresenceStatusRecord['state'] | 'deleted'; sessions?: number }> = [];

const json = (k: string, v: unknown) => client.put(k).value(JSON.stringify(v)).exec();
const machine = (i: number): MachineRecord => ({ id: `m${i}`, ip: `127.0.0.${i}`, metadata: {}, version: 'test', startedAt: new Date().toISOString() });
const health = (i: number, status: HealthStatus): HealthRecord => ({
  unit: `app@${i}.service`, machine: `m${i}`, hash: 'h1', status, since: new Date().toISOString(), checkedAt: new Date().toISOString(), consecutive: 2,
});
const hold = (unit: string): PresenceHold => ({ service: 'app', unit, rollout: 'r-test', since: new Date().toISOString() });

async function statuses(): Promise<Map<string, PresenceStatusRecord>> {
  const raw = await client.getAll().prefix(keys.presenceStatuses('app')).strings();
  return new Map(Object.values(raw).map((v) => JSON.parse(v) as PresenceStatusRecord).map((r) => [r.unit, r]));
}

const waitFor = waitForWith({ explain: () => `problems: ${problems.slice(-5).join(' | ')}` });
const stateOf = async (unit: string) => (await statuses()).get(unit)?.state;
const waitState = (unit: string, state: string, ms = 10_000) => waitFor(`${unit} ${state}`, async () => (await stateOf(unit)) === state, ms);

async function get(path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${lb.frontendPort}${path}`, { headers: { connection: 'close' } });
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  lb = await startHaproxy({ backend: 'app', slots: ['app-1', 'app-2', 'app-3', 'app-4'] });
  const port = await freePort();
  for (const i of [1, 2, 3]) backends.push(await startBackend(`b${i}`, `127.0.0.${i}`, port));
  ({ conn, client } = etcd);
  const service: ServiceRecord = {
    name: 'app',
    template: 'app@.service',
    values: {},
    instances: 3,
    health: { type: 'http', port, path: '/healthz', intervalMs: 1000, timeoutMs: 1000, threshold: 1, failureThreshold: 1 },
    presence: { driver: 'haproxy', port, socket: lb.socket, backend: 'app', drainTimeoutMs: 10_000 },
    rollout: { maxUnavailable: 1, surge: 0, minHealthyMs: 0, deadlineMs: 60_000, autoRevert: false },
    revision: 1,
    updatedAt: new Date().toISOString(),
  };
  await json(keys.service('app'), service);
  for (const i of [1, 2, 3]) {
    await json(keys.machine(`m${i}`), machine(i));
    await json(keys.health(`m${i}`, `app@${i}.service`), health(i, 'healthy'));
  }
  statusWatch = await client.watch().prefix(keys.presenceStatuses('app')).create();
  statusWatch.on('put', (kv) => {
    const r = JSON.parse(kv.value.toString()) as PresenceStatusRecord;
    history.push({ unit: r.unit, state: r.state, sessions: r.sessions });
  });
  statusWatch.on('delete', (kv) => history.push({ unit: kv.key.toString().split('/').pop()!, state: 'deleted' }));
  syncer = new PresenceSyncer({ client, keys, service: 'app', connection: conn, leaseTtlSec: 5 });
  syncer.on('problem', (msg, err) => problems.push(`${msg}${err instanceof Error ? `: ${err.message}` : ''}`));
  await syncer.start();
});

afterAll(async () => {
  await syncer?.stop();
  await statusWatch?.cancel().catch(() => undefined);
  await Promise.all(backends.map((b) => b.close()));
  await lb?.stop();
});

describe('presence syncer with HAProxy', () => {
  it('puts healthy instances in: HAProxy says UP and requests reach all three', async () => {
    for (const u of UNITS) await waitState(u, 'in');
    const s = await lb.servers();
    for (const i of [1, 2, 3]) expect(s.get(`app-${i}`)).toMatchObject({ status: 'UP', addr: `127.0.0.${i}:${backends[0]!.port}` });
    expect(s.get('app-4')!.status).toBe('MAINT'); // a slot nobody runs stays parked
    expect((await statuses()).get('app@2.service')).toMatchObject({ service: 'app', state: 'in', address: '127.0.0.2' });
    const seen = new Set<string>();
    for (let i = 0; i < 9; i++) seen.add((await get('/')).body);
    expect([...seen].sort()).toEqual(['b1', 'b2', 'b3']);
  });

  it('a hold drains the instance: draining while a request is open, out once it finished, and the request succeeds', async () => {
    // three slow requests, round robin: one lands on each server
    const slow = [0, 1, 2].map(() => get('/slow?ms=2500'));
    await waitFor('a session on app-2', async () => ((await lb.servers()).get('app-2')!.scur > 0 ? true : undefined), 3000);
    const mark = history.length;
    await json(keys.presenceHold('app', 'app@2.service'), hold('app@2.service'));

    await waitFor('app@2 draining', async () => history.slice(mark).some((h) => h.unit === 'app@2.service' && h.state === 'draining' && (h.sessions ?? 0) > 0) || undefined, 3000);
    expect(await stateOf('app@2.service')).toBe('draining');
    expect((await lb.servers()).get('app-2')!.status).toMatch(/^DRAIN/);
    // new requests do not reach a draining instance
    const before = backends[1]!.hits;
    for (let i = 0; i < 4; i++) expect((await get('/')).status).toBe(200);
    expect(backends[1]!.hits).toBe(before);

    const results = await Promise.all(slow);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(results.map((r) => r.body).sort()).toEqual(['b1', 'b2', 'b3']);
    await waitState('app@2.service', 'out', 3000);
    const mine = history.slice(mark).filter((h) => h.unit === 'app@2.service').map((h) => h.state);
    expect(mine[0]).toBe('draining');
    expect(mine.at(-1)).toBe('out');
    // DRAIN with no session already counts as out (it takes no new request); the syncer's next step puts it in MAINT
    await waitFor('app-2 in MAINT', async () => ((await lb.servers()).get('app-2')!.status === 'MAINT' ? true : undefined), 3000);
    expect((await lb.servers()).get('app-2')).toMatchObject({ status: 'MAINT', scur: 0 });
    expect(await stateOf('app@1.service')).toBe('in');
  });

  it('an unhealthy instance goes out without any hold', async () => {
    await json(keys.health('m3', 'app@3.service'), health(3, 'unhealthy'));
    await waitState('app@3.service', 'out');
    expect((await lb.servers()).get('app-3')!.status).toBe('MAINT');
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await get('/')).body);
    expect([...seen]).toEqual(['b1']);
  });

  it('released holds and health back to healthy bring both back in, but only once HAProxy\'s own checks say UP', async () => {
    const mark = history.length;
    backends[1]!.healthy = false; // app@2 is "healthy" in etcd, but HAProxy's check will fail
    const hitsBefore = backends[1]!.hits;
    await client.delete().key(keys.presenceHold('app', 'app@2.service')).exec();
    await json(keys.health('m3', 'app@3.service'), health(3, 'healthy'));
    await waitState('app@3.service', 'in');
    // the slot left maintenance but waits for its checks (HAProxy alone would put it UP unchecked)
    for (let i = 0; i < 8; i++) {
      expect((await lb.servers()).get('app-2')!.status).toMatch(/^DOWN/);
      expect(await stateOf('app@2.service')).toBe('out');
      await get('/');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(backends[1]!.hits).toBe(hitsBefore);
    backends[1]!.healthy = true;
    for (const u of UNITS) await waitState(u, 'in');
    const s = await lb.servers();
    for (const i of [1, 2, 3]) expect(s.get(`app-${i}`)!.status).toBe('UP');
    expect(history.slice(mark).filter((h) => h.unit === 'app@2.service').map((h) => h.state)).toEqual(['in']);
    const seen = new Set<string>();
    for (let i = 0; i < 9; i++) seen.add((await get('/')).body);
    expect([...seen].sort()).toEqual(['b1', 'b2', 'b3']);
  });

  it('an instance HAProxy\'s checks find down is not reported in', async () => {
    backends[0]!.healthy = false;
    await waitFor('app-1 DOWN', async () => ((await lb.servers()).get('app-1')!.status.startsWith('DOWN') ? true : undefined), 5000);
    // health in etcd still says healthy (an agent's check lags); HAProxy knows better
    await waitState('app@1.service', 'out', 3000);
    backends[0]!.healthy = true;
    await waitState('app@1.service', 'in', 5000);
  });

  it('a machine whose record is gone takes its instance out', async () => {
    await client.delete().key(keys.machine('m1')).exec();
    await waitState('app@1.service', 'out');
    expect((await lb.servers()).get('app-1')!.status).toBe('MAINT');
    await json(keys.machine('m1'), machine(1));
    await waitState('app@1.service', 'in');
  });

  it('the driver over the TCP runtime socket; an instance without a slot is a per-instance error', async () => {
    const driver = new HaproxyDriver({ template: 'app@.service', socket: lb.tcpSocket, backend: 'app' });
    const got = await driver.apply([
      { unit: 'app@1.service', address: '127.0.0.1', port: backends[0]!.port, want: 'in', reason: 't' },
      { unit: 'app@9.service', address: '127.0.0.9', port: backends[0]!.port, want: 'in', reason: 't' },
    ]);
    expect(got[0]).toEqual({ unit: 'app@1.service', state: 'in', sessions: 0, address: '127.0.0.1' });
    expect(got[1]).toMatchObject({ unit: 'app@9.service', state: 'unknown', error: expect.stringMatching(/no server slot app-9/) });
    // slots of instances it was not asked about but that are in are reported, so they get taken out
    expect(got.slice(2).map((o) => o.unit).sort()).toEqual(['app@2.service', 'app@3.service']);
    const wrong = new HaproxyDriver({ template: 'app@.service', socket: lb.tcpSocket, backend: 'nope' });
    await expect(wrong.apply([])).rejects.toMatchObject({ kind: 'usage' });
    const closed = new HaproxyDriver({ template: 'app@.service', socket: `ipv4@127.0.0.1:${await freePort()}`, backend: 'app' });
    await expect(closed.apply([])).rejects.toMatchObject({ kind: 'unavailable', message: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('HAProxy down: statuses withdrawn; restarted with its config (all slots parked): instances put back in', async () => {
    const problemsBefore = problems.length;
    const restarted = lb.restart(2500);
    await waitFor('statuses withdrawn', async () => ((await statuses()).size === 0 ? true : undefined), 5000);
    expect(problems.slice(problemsBefore).some((p) => /presence driver haproxy failed/.test(p) && /not reachable/.test(p))).toBe(true);
    await restarted;
    for (const u of UNITS) await waitState(u, 'in', 10_000);
    const s = await lb.servers();
    for (const i of [1, 2, 3]) expect(s.get(`app-${i}`)!.status).toBe('UP');
  });

  it('stop() revokes the lease: statuses vanish, HAProxy keeps its state', async () => {
    await syncer!.stop();
    expect(syncer!.state).toBe('stopped');
    expect((await statuses()).size).toBe(0);
    expect((await lb.servers()).get('app-2')!.status).toBe('UP');
  });

  it('a new syncer takes out a slot left UP for an instance nobody reports any more', async () => {
    await client.delete().key(keys.health('m3', 'app@3.service')).exec();
    syncer = new PresenceSyncer({ client, keys, service: 'app', connection: conn, leaseTtlSec: 5 });
    syncer.on('problem', (msg) => problems.push(msg));
    await syncer.start();
    await waitState('app@1.service', 'in');
    await waitFor('app-3 parked', async () => ((await lb.servers()).get('app-3')!.status === 'MAINT' ? true : undefined));
    // taken out, then forgotten: no status for an instance that no longer exists
    await waitFor('app@3 status gone', async () => ((await statuses()).has('app@3.service') ? undefined : true));
    expect([...(await statuses()).keys()].sort()).toEqual(['app@1.service', 'app@2.service']);
  });
});
