/**
 * `fleetx presence` as the CLI runs it (in-process, ended by an AbortSignal
 * instead of SIGTERM) against a real etcd, with the etcd driver.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { beforeAll, describe, expect, it } from 'vitest';
import { bufferIo } from '../../src/cli/io.js';
import { runCommand } from '../../src/cli/main.js';
import { presenceCommand } from '../../src/cli/commands/presence.js';
import { keyspace } from '../../src/registry/keys.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { waitFor } from '../helpers/wait.js';

const keys = keyspace('/fx');
const BIN = fileURLToPath(new URL('../../bin/fleetx.mjs', import.meta.url));
const etcd = useEtcd();
let client: Etcd3;

beforeAll(async () => {
  client = etcd.client;
  const now = new Date().toISOString();
  const put = (k: string, v: unknown) => client.put(k).value(JSON.stringify(v)).exec();
  await put(keys.service('web'), {
    name: 'web', template: 'web@.service', values: {}, instances: 1,
    health: { type: 'none', intervalMs: 1000, timeoutMs: 1000, threshold: 1, failureThreshold: 1 },
    presence: { driver: 'etcd', port: 80, etcdPrefix: '/lb/web', drainTimeoutMs: 1000 },
    rollout: { maxUnavailable: 1, surge: 0, minHealthyMs: 0, deadlineMs: 1000, autoRevert: false },
    revision: 1, updatedAt: now,
  });
  await put(keys.machine('m1'), { id: 'm1', ip: '10.1.0.1', metadata: {}, version: 't', startedAt: now });
  await put(keys.health('m1', 'web@a.service'), { unit: 'web@a.service', machine: 'm1', hash: 'h', status: 'healthy', since: now, checkedAt: now, consecutive: 1 });
});

describe('fleetx presence', () => {
  it('runs until stopped: drives the LB, reports statuses, logs JSON to stderr, and its statuses vanish on exit', async () => {
    const io = bufferIo({});
    const ac = new AbortController();
    const done = presenceCommand({ endpoint: etcd.server.endpoints[0], etcdKeyPrefix: '/fx', service: 'web', ttl: 5, signal: ac.signal }, io);
    await waitFor('lb key', async () => (await client.get('/lb/web/web@a.service').string()) === '10.1.0.1:80');
    const statusKey = keys.presenceStatus('web', 'web@a.service');
    await waitFor('status in', async () => JSON.parse((await client.get(statusKey).string()) ?? '{}').state === 'in');
    ac.abort();
    await done;
    expect(await client.get(statusKey).string()).toBeNull();
    const logs = io.err.map((l) => JSON.parse(l) as { msg: string; svc: string; service: string });
    expect(logs.every((l) => l.svc === 'fleetx-presence' && l.service === 'web')).toBe(true);
    expect(logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['presence syncer starting', 'web@a.service in', 'presence syncer stopped']));
    expect(io.out).toEqual([]);
  });

  it('as a process: SIGTERM stops it cleanly (exit 0) and its statuses vanish at once', async () => {
    const child = spawn(process.execPath, [BIN, 'presence', '--service', 'web', '--endpoint', etcd.server.endpoints[0]!, '--etcd-key-prefix', '/fx'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, FLEETX_ENDPOINT: '' },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const statusKey = keys.presenceStatus('web', 'web@a.service');
      await waitFor('status in', async () => JSON.parse((await client.get(statusKey).string()) ?? '{}').state === 'in', 20_000);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(await client.get(statusKey).string()).toBeNull();
      expect(stderr).toMatch(/"msg":"signal received"/);
      expect(stderr).toMatch(/"msg":"presence syncer stopped"/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('without --service it is a usage error', async () => {
    const io = bufferIo({});
    expect(await runCommand(['presence'], io)).toBe(2);
    expect(io.err.join('\n')).toMatch(/--service/);
  });
});
