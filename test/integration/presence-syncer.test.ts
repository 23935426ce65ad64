/**
 * The syncer's own behaviour against a real etcd, with an in-memory driver
 * (our interface, not a library mock): waiting for the service, retries
 * when the LB is down, config changes, write-on-change, lease loss, and the
 * least-privilege etcd role the README documents.
 */
import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { PresenceSyncer, type PassResult } from '../../src/presence/syncer.js';
import type { Desired, Observed, PresenceDriver, PresenceStatusRecord } from '../../src/presence/types.js';
import { connect } from '../../src/registry/client.js';
import { resolveConnection, type ConnectionOptions } from '../../src/registry/connection.js';
import { keyspace } from '../../src/registry/keys.js';
import type { PresenceConfig, ServiceRecord } from '../../src/service/types.js';
import { etcdctlOn } from '../helpers/etcd.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { waitForWith } from '../helpers/wait.js';

const keys = keyspace('/fleetx');
const now = () => new Date().toISOString();

/** An LB that does what it is told at once, optionally failing. */
class MemoryDriver implements PresenceDriver {
  readonly kind = 'memory';
  calls: Desired[][] = [];
  attempts = 0;
  failNext = 0;
  closed = false;
  constructor(readonly cfg: PresenceConfig) {}
  async apply(desired: readonly Desired[]): Promise<Observed[]> {
    this.attempts++;
    if (this.failNext > 0) {
      this.failNext--;
      throw new FleetxError('unavailable', 'memory LB is down');
    }
    this.calls.push([...desired]);
    return desired.map((d) => ({ unit: d.unit, state: d.want, ...(d.address ? { address: d.address } : {}) }));
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

const service = (port: number): ServiceRecord => ({
  name: 'app', template: 'app@.service', values: {}, instances: 2,
  health: { type: 'none', intervalMs: 1000, timeoutMs: 1000, threshold: 1, failureThreshold: 1 },
  presence: { driver: 'command', command: ['/bin/true'], port, drainTimeoutMs: 1000 },
  rollout: { maxUnavailable: 1, surge: 0, minHealthyMs: 0, deadlineMs: 1000, autoRevert: false },
  revision: 1, updatedAt: now(),
});

const etcd = useEtcd({ auth: true });
let client: Etcd3;
let conn: ConnectionOptions;
let syncer: PresenceSyncer | undefined;
const drivers: MemoryDriver[] = [];
/** how many applies the next driver created fails */
let failFirst = 0;
const problems: string[] = [];
const passes: PassResult[] = [];

const waitFor = waitForWith({ explain: () => `problems: ${problems.slice(-4).join(' | ')}` });
const put = (k: string, v: unknown) => client.put(k).value(JSON.stringify(v)).exec();
const health = (unit: string, m: string, status = 'healthy') => ({ unit, machine: m, hash: 'h', status, since: now(), checkedAt: now(), consecutive: 1 });

async function statuses(c = client): Promise<Record<string, PresenceStatusRecord>> {
  const raw = await c.getAll().prefix(keys.presenceStatuses('app')).strings();
  return Object.fromEntries(Object.values(raw).map((v) => JSON.parse(v) as PresenceStatusRecord).map((r) => [r.unit, r]));
}

function newSyncer(c: Etcd3, cn: ConnectionOptions, ttl = 10, pollMs = 300): PresenceSyncer {
  const s = new PresenceSyncer({
    client: c, keys, service: 'app', connection: cn, leaseTtlSec: ttl, retryMs: 200, tickMs: 100, pollMs,
    createDriver: (cfg) => {
      const d = new MemoryDriver(cfg);
      d.failNext = failFirst;
      failFirst = 0;
      drivers.push(d);
      return d;
    },
  });
  s.on('problem', (msg, err) => problems.push(`${msg}${err instanceof Error ? `: ${err.message}` : ''}`));
  s.on('pass', (p) => passes.push(p));
  return s;
}

beforeAll(() => {
  ({ conn, client } = etcd);
});
afterEach(async () => {
  await syncer?.stop();
  syncer = undefined;
});

describe('PresenceSyncer', () => {
  it('waits for its service, then applies and reports; retries while the LB is down', async () => {
    syncer = newSyncer(client, conn);
    await syncer.start();
    expect(syncer.state).toBe('running');
    await waitFor('not-found problem', () => problems.some((p) => /service app not found/.test(p)));
    await put(keys.machine('m1'), { id: 'm1', ip: '10.0.0.1', metadata: {}, version: 't', startedAt: now() });
    await put(keys.health('m1', 'app@1.service'), health('app@1.service', 'm1'));
    await put(keys.health('m1', 'web@1.service'), health('web@1.service', 'm1'));
    failFirst = 2;
    await put(keys.service('app'), service(8080));
    await waitFor('driver', () => drivers.length === 1);
    await waitFor('status in', async () => (await statuses())['app@1.service']?.state === 'in');
    expect(drivers[0]!.attempts).toBeGreaterThanOrEqual(3);
    expect(problems.filter((p) => /memory LB is down/.test(p))).toHaveLength(1); // an outage is logged once
    expect((await statuses())['app@1.service']).toMatchObject({ service: 'app', unit: 'app@1.service', state: 'in', address: '10.0.0.1' });
    expect(drivers[0]!.calls.at(-1)).toEqual([{ unit: 'app@1.service', address: '10.0.0.1', port: 8080, want: 'in', reason: 'healthy on m1' }]);
  });

  it('writes a status only when it changes, rebuilds the driver when the presence config changes', async () => {
    syncer = newSyncer(client, conn);
    const writes: string[] = [];
    const w = await client.watch().prefix(keys.presenceStatuses('app')).create();
    w.on('put', (kv) => writes.push(kv.value.toString()));
    try {
      await syncer.start();
      const first = drivers.length;
      await waitFor('in', async () => (await statuses())['app@1.service']?.state === 'in');
      const passesBefore = passes.length;
      await waitFor('three idle polls', () => passes.length >= passesBefore + 3);
      expect(writes).toHaveLength(1); // the new lease's first write only

      await put(keys.service('app'), service(9090));
      await waitFor('new driver', () => drivers.length === first + 1);
      expect(drivers[first - 1]!.closed).toBe(true);
      await waitFor('port 9090 applied', () => drivers.at(-1)!.calls.at(-1)?.[0]?.port === 9090);
      await put(keys.presenceHold('app', 'app@1.service'), { service: 'app', unit: 'app@1.service', rollout: 'r1', since: now() });
      await waitFor('out', async () => (await statuses())['app@1.service']?.state === 'out');
      expect(drivers.at(-1)!.calls.at(-1)![0]).toMatchObject({ want: 'out', reason: 'held out by rollout r1' });
      await client.delete().key(keys.presenceHold('app', 'app@1.service')).exec();
      await waitFor('in again', async () => (await statuses())['app@1.service']?.state === 'in');
    } finally {
      await w.cancel();
    }
  });

  it('health records rewritten by every check (same verdict), and other services\' records, do not call the LB again', async () => {
    syncer = newSyncer(client, conn, 10, 60_000);
    await syncer.start();
    await waitFor('in', async () => (await statuses())['app@1.service']?.state === 'in');
    const d = drivers.at(-1)!;
    const attempts = d.attempts;
    const passCount = passes.length;
    for (let i = 0; i < 20; i++) {
      await put(keys.health('m1', 'app@1.service'), health('app@1.service', 'm1'));
      await put(keys.health('m1', 'web@1.service'), health('web@1.service', 'm1'));
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(d.attempts).toBe(attempts);
    expect(passes.length).toBe(passCount);
    // a different verdict does
    await put(keys.health('m1', 'app@1.service'), health('app@1.service', 'm1', 'unhealthy'));
    await waitFor('out', async () => (await statuses())['app@1.service']?.state === 'out');
    expect(d.attempts).toBe(attempts + 1);
    await put(keys.health('m1', 'app@1.service'), health('app@1.service', 'm1'));
    await waitFor('in', async () => (await statuses())['app@1.service']?.state === 'in');
  });

  it('a revoked lease: statuses vanish, the syncer takes a new lease and rewrites them', async () => {
    syncer = newSyncer(client, conn, 3);
    await syncer.start();
    await waitFor('in', async () => (await statuses())['app@1.service']?.state === 'in');
    const kv = (await client.get(keys.presenceStatus('app', 'app@1.service')).exec()).kvs[0]!;
    const leaseId = BigInt(kv.lease).toString(16);
    await etcdctlOn(etcd.server, ['lease', 'revoke', leaseId]);
    expect(await statuses()).toEqual({});
    await waitFor('status back under a new lease', async () => (await statuses())['app@1.service']?.state === 'in', 15_000);
    const again = (await client.get(keys.presenceStatus('app', 'app@1.service')).exec()).kvs[0]!;
    expect(again.lease).not.toBe(kv.lease);
    expect(problems.some((p) => /lease lost/.test(p))).toBe(true);
  });

  it('stop() waits for the loop, closes the driver and revokes the lease', async () => {
    syncer = newSyncer(client, conn);
    await syncer.start();
    await waitFor('in', async () => (await statuses())['app@1.service']?.state === 'in');
    const d = drivers.at(-1)!;
    const states: string[] = [];
    syncer.on('state', (s) => states.push(s));
    await syncer.stop();
    expect(states).toEqual(['stopping', 'stopped']);
    expect(d.closed).toBe(true);
    expect(await statuses()).toEqual({});
  });

  it('runs with the least-privilege etcd role of the README', async () => {
    const ctl = (...args: string[]) => etcdctlOn(etcd.server, args);
    await ctl('role', 'add', 'fleetx-presence-app');
    await ctl('role', 'grant-permission', 'fleetx-presence-app', 'read', '/fleetx/service/app');
    await ctl('role', 'grant-permission', 'fleetx-presence-app', 'read', '--prefix', '/fleetx/health/');
    await ctl('role', 'grant-permission', 'fleetx-presence-app', 'read', '--prefix', '/fleetx/presence-hold/app/');
    await ctl('role', 'grant-permission', 'fleetx-presence-app', 'read', '--prefix', '/fleetx/machine/');
    await ctl('role', 'grant-permission', 'fleetx-presence-app', 'readwrite', '--prefix', '/fleetx/presence-status/app/');
    await ctl('user', 'add', 'presence', '--new-user-password=presence-pw');
    await ctl('user', 'grant-role', 'presence', 'fleetx-presence-app');
    const pconn = resolveConnection({ endpoint: etcd.server.endpoints[0], etcdUsername: 'presence', etcdPassword: 'presence-pw' }, {});
    const pclient = connect(pconn);
    try {
      await expect(pclient.put('/fleetx/service/app').value('{}').exec()).rejects.toThrow(/permission denied/);
      syncer = newSyncer(pclient, pconn);
      const before = problems.length;
      await syncer.start();
      await put(keys.health('m1', 'app@2.service'), health('app@2.service', 'm1', 'unhealthy'));
      await waitFor('statuses', async () => {
        const s = await statuses();
        return s['app@1.service']?.state === 'in' && s['app@2.service']?.state === 'out';
      });
      await syncer.stop();
      syncer = undefined;
      expect(await statuses()).toEqual({});
      expect(problems.slice(before)).toEqual([]);
    } finally {
      pclient.close();
    }
  });
});
