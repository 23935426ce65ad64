/**
 * Health checks run by the real agent on a real systemd host: one nspawn
 * host on a test bridge runs `fleetx agent` as a systemd service against an
 * etcd on the bridge address. The test plays the engine (schedule keys and
 * bodies written straight into etcd) and the CLI (the service record).
 * The instance is the demo web server; the agent checks it over HTTP on
 * 127.0.0.1:8080 inside the host.
 */
import type { Etcd3, Watcher } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthRecord } from '../../src/health/types.js';
import { connect } from '../../src/registry/client.js';
import { keyspace } from '../../src/registry/keys.js';
import type { ScheduleRecord, TargetState } from '../../src/registry/records.js';
import { startEtcd, stopEtcd } from '../../src/sandbox/etcd.js';
import { bootHost, type Host } from '../../src/sandbox/host.js';
import { createBridge, deleteBridge } from '../../src/sandbox/network.js';
import type { ServiceRecord } from '../../src/service/types.js';
import { unitHash } from '../../src/unit/hash.js';
import { parseUnit } from '../../src/unit/parse.js';
import { leftovers, testNet, testStateDir } from '../helpers/hosts.js';

const net = testNet();
const base = testStateDir('health');
const etcdUrl = `http://${net.prefix}.1:2379`;
const etcdSpec = { dataDir: `${base}/etcd`, logFile: `${base}/etcd.log`, clientUrl: etcdUrl, peerUrl: `http://${net.prefix}.1:2380` };
const keys = keyspace('/fleetx');
const repo = process.cwd();
/** the agent's default: long enough for a restarted agent (Node start-up) to take over before its old lease expires */
const TTL = 10;

const agentUnit = [
  '[Unit]',
  'Description=fleetx agent (health test)',
  '[Service]',
  `ExecStart=/usr/bin/node ${repo}/bin/fleetx.mjs --endpoint ${etcdUrl} agent --ip ${net.prefix}.21 --ttl ${TTL} --no-engine`,
  'Restart=always',
  'RestartSec=1',
  '',
].join('\n');

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
  ['[Unit]', 'Description=demo web', '[Service]', `ExecStart=/usr/bin/node ${repo}/demo/web.mjs --port 8080 --start-delay 1000${extra}`, ''].join('\n');

let host: Host;
let etcd: Etcd3;
let watcher: Watcher | undefined;
/** every health record put, in order (deletes as null) */
const seen: Array<{ unit: string; rec: HealthRecord | null }> = [];

async function submit(name: string, body: string, targetState: TargetState): Promise<string> {
  const hash = unitHash(parseUnit(body, name));
  await etcd.put(keys.body(hash)).value(body);
  const rec: ScheduleRecord = { name, hash, targetState };
  await etcd.put(keys.schedule(host.machineId, name)).value(JSON.stringify(rec));
  return hash;
}

async function health(unit: string): Promise<HealthRecord | null> {
  return (await etcd.get(keys.health(host.machineId, unit)).json()) as HealthRecord | null;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not reached in ${timeoutMs} ms\nseen: ${JSON.stringify(seen.slice(-8))}\n--- agent journal ---\n${await journal()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function journal(): Promise<string> {
  return (await host.exec(['journalctl', '-u', 'fleetx-agent', '-n', '40', '--no-pager', '-o', 'cat'])).stdout;
}

const statusesOf = (unit: string, from: number) => seen.slice(from).filter((s) => s.unit === unit).map((s) => s.rec?.status ?? 'deleted');

describe('health checks by the agent on a real systemd host', () => {
  beforeAll(async () => {
    await createBridge(net.bridge, `${net.prefix}.1/24`);
    await startEtcd(etcdSpec);
    etcd = connect({ endpoints: [etcdUrl], requestTimeoutMs: 3000, prefix: '/fleetx' });
    host = await bootHost({
      name: 'fxt-health',
      stateDir: `${base}/host`,
      bridge: { name: net.bridge, address: `${net.prefix}.21/24` },
      files: { '/etc/systemd/system/fleetx-agent.service': agentUnit },
    });
    watcher = await etcd.watch().prefix(keys.healths()).create();
    watcher.on('put', (kv) => seen.push({ unit: kv.key.toString().split('/').pop()!, rec: JSON.parse(kv.value.toString()) as HealthRecord }));
    watcher.on('delete', (kv) => seen.push({ unit: kv.key.toString().split('/').pop()!, rec: null }));
    watcher.on('error', () => undefined);
    await etcd.put(keys.service('web')).value(JSON.stringify(service));
    const started = await host.exec(['systemctl', 'start', 'fleetx-agent']);
    expect(started.code, started.stderr).toBe(0);
    await until('machine registered', async () => (await etcd.get(keys.machine(host.machineId)).string()) ?? undefined, 30_000);
  }, 120_000);

  afterAll(async () => {
    await watcher?.cancel().catch(() => undefined);
    etcd?.close();
    await host?.stop().catch(() => undefined);
    await stopEtcd(etcdSpec.dataDir);
    await deleteBridge(net.bridge).catch(() => undefined);
    const { rm } = await import('node:fs/promises');
    await rm(base, { recursive: true, force: true });
    expect(await leftovers(base, net.bridge, [{ name: 'fxt-health', dir: `${base}/host` }])).toEqual([]);
  });

  it('an instance of a service goes unknown → healthy, since after its start, under the machine lease', async () => {
    const from = seen.length;
    const t0 = Date.now();
    const hash = await submit('web@1.service', webBody(), 'launched');
    const rec = await until('healthy', async () => {
      const r = await health('web@1.service');
      return r?.status === 'healthy' ? r : undefined;
    });
    expect(rec).toMatchObject({ unit: 'web@1.service', machine: host.machineId, hash, status: 'healthy', message: 'HTTP 200' });
    expect(Date.parse(rec.since)).toBeGreaterThanOrEqual(t0 + 1000); // the server listens after --start-delay 1000
    const statuses = statusesOf('web@1.service', from);
    expect(statuses[0]).toBe('unknown');
    expect(statuses.at(-1)).toBe('healthy');
    expect(statuses).not.toContain('deleted');
    const machineLease = (await etcd.get(keys.machine(host.machineId)).exec()).kvs[0]!.lease;
    expect((await etcd.get(keys.health(host.machineId, 'web@1.service')).exec()).kvs[0]!.lease).toBe(machineLease);
  }, 30_000);

  it('healthy and unchanged: no more writes while checks keep passing', async () => {
    const from = seen.length;
    await new Promise((r) => setTimeout(r, 1500)); // ~5 checks
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
    await new Promise((r) => setTimeout(r, 1500));
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
    await etcd.delete().key(keys.schedule(host.machineId, 'side.service'));
    await until('side health deleted', async () => (await health('side.service')) === null);
  }, 30_000);

  it('a restarted agent takes over: a running instance stays healthy with the same since', async () => {
    const before = (await health('web@1.service'))!;
    expect(before.status).toBe('healthy');
    const oldLease = (await etcd.get(keys.health(host.machineId, 'web@1.service')).exec()).kvs[0]!.lease;
    const from = seen.length;
    expect((await host.exec(['systemctl', 'restart', 'fleetx-agent'])).code).toBe(0);
    await until('record rewritten under the new lease', async () => {
      const kv = (await etcd.get(keys.health(host.machineId, 'web@1.service')).exec()).kvs[0];
      return kv !== undefined && kv.lease !== oldLease;
    }, 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(statusesOf('web@1.service', from)).toEqual(['healthy']);
    expect((await health('web@1.service'))?.since).toBe(before.since);
  }, 30_000);

  it('a restart by systemd (same hash, new PID) resets to unknown with a newer since', async () => {
    const before = (await health('web@1.service'))!;
    const from = seen.length;
    const t0 = Date.now();
    expect((await host.exec(['systemctl', 'restart', 'web@1.service'])).code).toBe(0);
    const rec = await until('healthy again', async () => {
      const r = await health('web@1.service');
      return r?.status === 'healthy' && r.since !== before.since ? r : undefined;
    });
    expect(statusesOf('web@1.service', from)[0]).not.toBe('healthy');
    expect(rec.mainPid).not.toBe(before.mainPid);
    expect(Date.parse(rec.since)).toBeGreaterThanOrEqual(t0 + 1000);
  }, 30_000);

  it('the agent stops cleanly, leaving the records to its lease', async () => {
    const t0 = Date.now();
    expect((await host.exec(['systemctl', 'stop', 'fleetx-agent'])).code).toBe(0);
    expect(Date.now() - t0, await journal()).toBeLessThan(5000);
    // the lease expires and the health of a dead machine disappears with it
    await until('health gone with the lease', async () => (await health('web@1.service')) === null, (TTL + 10) * 1000);
  }, (TTL + 20) * 1000);
});
