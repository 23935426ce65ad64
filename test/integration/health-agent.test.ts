/**
 * Health checks run by the real agent on a real systemd host: one nspawn
 * host on a test bridge runs `fleetx agent` as a systemd service against an
 * etcd on the bridge address. The test plays the engine (schedule keys and
 * bodies written straight into etcd) and the CLI (the service record).
 * The instance is the demo web server; the agent checks it over HTTP on
 * 127.0.0.1:8080 inside the host.
 */
import type { Watcher } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthRecord } from '../../src/health/types.js';
import type { ServiceRecord } from '../../src/service/types.js';
import { useAgentHost } from '../helpers/agent-host.js';
import { REPO } from '../helpers/cli.js';
import { sleep, waitForWith } from '../helpers/wait.js';

/** the agent's default: long enough for a restarted agent (Node start-up) to take over before its old lease expires */
const TTL = 10;
const agent = useAgentHost({ tag: 'health', name: 'fxt-health', ipSuffix: 21, ttl: TTL });
const { keys, submit } = agent;

const service: ServiceRecord = {
  name: 'web',
  template: 'web@.service',
  values: {},
  instances: 1,
  health: { type: 'http', port: 8080, path: '/healthz', intervalMs: 300, timeoutMs: 250, threshold: 2, failureThreshold: 2 },
  presence: { driver: 'none', drainTimeoutMs: 1000 },
  rollout: { maxUnavailable: 1, surge: 0, minHealthyMs: 1000, deadlineMs: 60_000, autoRevert: false },
  revision: 1,
  updatedAt: new Date().toISOString(),
};

const webBody = (extra = '') =>
  ['[Unit]', 'Description=demo web', '[Service]', `ExecStart=/usr/bin/node ${REPO}demo/web.mjs --port 8080 --start-delay 1000${extra}`, ''].join('\n');

let watcher: Watcher | undefined;
/** every health record put, in order (deletes as null) */
const seen: Array<{ unit: string; rec: HealthRecord | null }> = [];

async function health(unit: string): Promise<HealthRecord | null> {
  return (await agent.etcd.get(keys.health(agent.host.machineId, unit)).json()) as HealthRecord | null;
}

const until = waitForWith({
  explain: async () => `seen: ${JSON.stringify(seen.slice(-8))}\n--- agent journal ---\n${await agent.journal()}` });

const statusesOf = (unit: string, from: number) => seen.slice(from).filter((s) => s.unit === unit).map((s) => s.rec?.status ?? 'deleted');

describe('health checks by the agent on a real systemd host', () => {
  beforeAll(async () => {
    watcher = await agent.etcd.watch().prefix(keys.healths()).create();
    watcher.on('put', (kv) => seen.push({ unit: kv.key.toString().split('/').pop()!, rec: JSON.parse(kv.value.toString()) as HealthRecord }));
    watcher.on('delete', (kv) => seen.push({ unit: kv.key.toString().split('/').pop()!, rec: null }));
    watcher.on('error', () => undefined);
    await agent.etcd.put(keys.service('web')).value(JSON.stringify(service));
  });

  afterAll(async () => {
    await watcher?.cancel().catch(() => undefined);
  });

  it('an instance of a service goes unknown → healthy, since after its start, under the machine lease', async () => {
    const from = seen.length;
    const t0 = Date.now();
    const hash = await submit('web@1.service', webBody(), 'launched');
    const rec = await until('healthy', async () => {
      const r = await health('web@1.service');
      return r?.status === 'healthy' ? r : undefined;
    });
    expect(rec).toMatchObject({ unit: 'web@1.service', machine: agent.host.machineId, hash, status: 'healthy', message: 'HTTP 200' });
    expect(Date.parse(rec.since)).toBeGreaterThanOrEqual(t0 + 1000); // the server listens after --start-delay 1000
    const statuses = statusesOf('web@1.service', from);
    // The agent may see the unit loaded and still inactive before its start job runs: then
    // 'unhealthy: unit is inactive' comes first, and the start resets it to 'unknown'.
    const start = statuses.indexOf('unknown');
    expect(start, JSON.stringify(statuses)).toBeGreaterThanOrEqual(0);
    const before = seen.slice(from).filter((s) => s.unit === 'web@1.service').slice(0, start);
    expect(before.map((s) => `${s.rec?.status}: ${s.rec?.message}`)).toEqual(before.map(() => 'unhealthy: unit is inactive'));
    expect(statuses.at(-1)).toBe('healthy');
    expect(statuses).not.toContain('deleted');
    const machineLease = (await agent.etcd.get(keys.machine(agent.host.machineId)).exec()).kvs[0]!.lease;
    expect((await agent.etcd.get(keys.health(agent.host.machineId, 'web@1.service')).exec()).kvs[0]!.lease).toBe(machineLease);
  }, 30_000);

  it('healthy and unchanged: no more writes while checks keep passing', async () => {
    const from = seen.length;
    await sleep(1500); // ~5 checks
    expect(statusesOf('web@1.service', from)).toEqual([]);
  });

  it('a stopped unit (schedule loaded) is unhealthy', async () => {
    await submit('web@1.service', webBody(), 'loaded');
    const rec = await until('unhealthy', async () => {
      const r = await health('web@1.service');
      return r?.status === 'unhealthy' ? r : undefined;
    });
    expect(rec.message).toMatch(/^unit is (inactive|deactivating|failed)$/);
  }, 30_000);

  it('a server that answers 503 never becomes healthy', async () => {
    const from = seen.length;
    const hash = await submit('web@1.service', webBody(' --unhealthy'), 'launched');
    const rec = await until('failing checks', async () => {
      const r = await health('web@1.service');
      return r?.hash === hash && r.message === 'HTTP 503' ? r : undefined;
    });
    expect(rec.status).toBe('unhealthy');
    await sleep(1500);
    expect(statusesOf('web@1.service', from)).not.toContain('healthy');
    expect((await health('web@1.service'))?.status).toBe('unhealthy');
  }, 30_000);

  it('a restart on a new hash resets to unknown with a newer since, then healthy', async () => {
    const before = (await health('web@1.service'))!;
    const from = seen.length;
    const t0 = Date.now();
    const hash = await submit('web@1.service', webBody(' --version v2'), 'launched');
    const rec = await until('healthy on the new hash', async () => {
      const r = await health('web@1.service');
      return r?.hash === hash && r.status === 'healthy' ? r : undefined;
    });
    const onNewHash = seen.slice(from).filter((s) => s.unit === 'web@1.service' && s.rec?.hash === hash).map((s) => s.rec!);
    expect(onNewHash[0]!.status).toBe('unknown');
    expect(Date.parse(onNewHash[0]!.since)).toBeGreaterThanOrEqual(t0);
    expect(Date.parse(onNewHash[0]!.since)).toBeGreaterThan(Date.parse(before.since));
    expect(Date.parse(rec.since)).toBeGreaterThanOrEqual(t0 + 1000);
  }, 30_000);

  it('a unit without a service gets type none: healthy once active; removed, its record is deleted', async () => {
    const hash = await submit('side.service', '[Service]\nExecStart=/bin/sleep infinity\n', 'launched');
    const rec = await until('side healthy', async () => {
      const r = await health('side.service');
      return r?.status === 'healthy' ? r : undefined;
    });
    expect(rec).toMatchObject({ hash, message: 'unit is active' });
    await agent.etcd.delete().key(keys.schedule(agent.host.machineId, 'side.service'));
    await until('side health deleted', async () => (await health('side.service')) === null);
  }, 30_000);

  it('a restarted agent takes over: a running instance stays healthy with the same since', async () => {
    const before = (await health('web@1.service'))!;
    expect(before.status).toBe('healthy');
    const oldLease = (await agent.etcd.get(keys.health(agent.host.machineId, 'web@1.service')).exec()).kvs[0]!.lease;
    const from = seen.length;
    expect((await agent.host.exec(['systemctl', 'restart', 'fleetx-agent'])).code).toBe(0);
    await until('record rewritten under the new lease', async () => {
      const kv = (await agent.etcd.get(keys.health(agent.host.machineId, 'web@1.service')).exec()).kvs[0];
      return kv !== undefined && kv.lease !== oldLease;
    }, 20_000);
    await sleep(1000);
    expect(statusesOf('web@1.service', from)).toEqual(['healthy']);
    expect((await health('web@1.service'))?.since).toBe(before.since);
  }, 30_000);

  it('a restart by systemd (same hash, new PID) resets to unknown with a newer since', async () => {
    const before = (await health('web@1.service'))!;
    const from = seen.length;
    const t0 = Date.now();
    expect((await agent.host.exec(['systemctl', 'restart', 'web@1.service'])).code).toBe(0);
    const rec = await until('healthy again', async () => {
      const r = await health('web@1.service');
      return r?.status === 'healthy' && r.since !== before.since ? r : undefined;
    });
    expect(statusesOf('web@1.service', from)[0]).not.toBe('healthy');
    expect(rec.mainPid).not.toBe(before.mainPid);
    expect(Date.parse(rec.since)).toBeGreaterThanOrEqual(t0 + 1000);
  }, 30_000);

  it('the agent stops cleanly, leaving the records to its lease', async () => {
    expect((await agent.host.exec(['systemctl', 'stop', 'fleetx-agent'])).code).toBe(0);
    // it ended on SIGTERM by itself: systemd did not have to time out and SIGKILL it
    expect((await agent.show('fleetx-agent')).Result, await agent.journal()).toBe('success');
    // the lease expires and the health of a dead machine disappears with it
    await until('health gone with the lease', async () => (await health('web@1.service')) === null, (TTL + 10) * 1000);
  }, (TTL + 20) * 1000);
});
