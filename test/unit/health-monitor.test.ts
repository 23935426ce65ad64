/**
 * HealthMonitor with its own ports filled in: an in-memory sink (the writer's
 * port, not etcd) and a probe function whose outcome the test sets.
 */
import { describe, expect, it } from 'vitest';
import { HealthMonitor, NO_CHECK, type HealthSink } from '../../src/health/monitor.js';
import type { Probe } from '../../src/health/probes.js';
import type { HealthRecord } from '../../src/health/types.js';
import { keyspace } from '../../src/registry/keys.js';
import type { HealthCheck } from '../../src/service/types.js';
import { waitForWith } from '../helpers/wait.js';

const keys = keyspace('/p');
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const http: HealthCheck = { type: 'http', port: 8080, path: '/', intervalMs: 30, timeoutMs: 20, threshold: 2, failureThreshold: 2 };

function setup(opts: { probeMs?: number } = {}) {
  const store = new Map<string, HealthRecord>();
  const writes: string[] = [];
  let failing = false;
  const sink: HealthSink = {
    async write(changes) {
      if (failing) throw new Error('etcd down');
      for (const { key: k, value: v } of changes) {
        if (v === undefined) {
          writes.push(`delete ${k}`);
          store.delete(k);
        } else {
          writes.push(`put ${k} ${(JSON.parse(v) as HealthRecord).status}`);
          store.set(k, JSON.parse(v) as HealthRecord);
        }
      }
    },
  };
  let ok = true;
  let inflight = 0;
  let maxInflight = 0;
  let calls = 0;
  let aborted = 0;
  const probe: Probe = async (_c, ctx) => {
    calls++;
    inflight++;
    maxInflight = Math.max(maxInflight, inflight);
    await new Promise<void>((r) => {
      let ended = false;
      const t = setTimeout(() => ((ended = true), r()), opts.probeMs ?? 1);
      // counts probes cut short (the signal may be shared by every check of the monitor)
      ctx.signal?.addEventListener('abort', () => {
        if (ended) return;
        ended = true;
        aborted++;
        clearTimeout(t);
        r();
      });
    });
    inflight--;
    return { ok, message: ok ? 'HTTP 200' : 'HTTP 503' };
  };
  const m = new HealthMonitor({ machineId: 'm1', keys, sink, now: () => new Date(), probe, coalesceMs: 1, retryMs: 10 });
  return {
    m, store, writes,
    setOk: (v: boolean) => (ok = v),
    fail: (v: boolean) => (failing = v),
    stats: () => ({ calls, maxInflight, inflight, aborted }),
    rec: (u: string) => store.get(keys.health('m1', u)),
  };
}

/** the monitor runs in this process on a fast clock: look often */
const until = waitForWith({ intervalMs: 5 });

describe('HealthMonitor', () => {
  it('an instance of a service goes unknown → healthy; a plain unit gets type none', async () => {
    const h = setup();
    h.m.setManaged(new Map([['app@1.service', 'h1'], ['plain.service', 'h2']]));
    h.m.observe({ name: 'app@1.service', activeState: 'active', mainPid: 10 });
    h.m.observe({ name: 'plain.service', activeState: 'active', mainPid: 11 });
    await wait(50);
    expect(h.writes).toEqual([]); // services not listed yet: nothing is known, nothing is written
    h.m.setServices(new Map([['app@.service', http]]));
    await until('healthy', () => h.rec('app@1.service')?.status === 'healthy' && h.rec('plain.service')?.status === 'healthy');
    expect(h.rec('app@1.service')).toMatchObject({ unit: 'app@1.service', machine: 'm1', hash: 'h1', consecutive: 2, message: 'HTTP 200' });
    expect(h.rec('plain.service')?.message).toBe('unit is active');
    await h.m.stop();
    h.m.close();
  });

  it('writes only changes, and failures make it unhealthy', async () => {
    const h = setup();
    h.m.setServices(new Map([['app@.service', http]]));
    h.m.setManaged(new Map([['app@1.service', 'h1']]));
    h.m.observe({ name: 'app@1.service', activeState: 'active', mainPid: 10 });
    await until('healthy', () => h.rec('app@1.service')?.status === 'healthy');
    await wait(150);
    expect(h.writes).toEqual(['put /p/health/m1/app@1.service unknown', 'put /p/health/m1/app@1.service healthy']);
    expect(h.stats().calls).toBeGreaterThanOrEqual(4);
    h.setOk(false);
    await until('unhealthy', () => h.rec('app@1.service')?.status === 'unhealthy');
    await h.m.stop();
  });

  it('never runs two checks of one instance at once, even when they overrun the interval', async () => {
    const h = setup({ probeMs: 60 });
    h.m.setServices(new Map([['app@.service', http]]));
    h.m.setManaged(new Map([['app@1.service', 'h1']]));
    h.m.observe({ name: 'app@1.service', activeState: 'active', mainPid: 10 });
    // a restart and a check change while a check runs
    await wait(30);
    h.m.observe({ name: 'app@1.service', activeState: 'active', mainPid: 12 });
    h.m.setServices(new Map([['app@.service', { ...http, intervalMs: 20 }]]));
    await wait(300);
    expect(h.stats().maxInflight).toBe(1);
    await until('a check running', () => h.stats().inflight === 1);
    const aborted = h.stats().aborted;
    await h.m.stop(); // aborts the running check: it does not wait for it to end
    expect(h.stats()).toMatchObject({ inflight: 0, aborted: aborted + 1 });
  });

  it('a stopped unit is unhealthy and is not checked; a restart resets since', async () => {
    const h = setup();
    h.m.setServices(new Map([['app@.service', http]]));
    h.m.setManaged(new Map([['app@1.service', 'h1']]));
    h.m.observe({ name: 'app@1.service', activeState: 'active', mainPid: 10 });
    await until('healthy', () => h.rec('app@1.service')?.status === 'healthy');
    const healthySince = h.rec('app@1.service')!.since;
    h.m.observe({ name: 'app@1.service', activeState: 'inactive' });
    await until('unhealthy', () => h.rec('app@1.service')?.status === 'unhealthy');
    const calls = h.stats().calls;
    await wait(100);
    expect(h.stats().calls).toBe(calls);
    await wait(2);
    h.m.observe({ name: 'app@1.service', activeState: 'active', mainPid: 20 });
    await until('healthy again', () => h.rec('app@1.service')?.status === 'healthy' && h.rec('app@1.service')!.since > healthySince);
    await h.m.stop();
  });

  it('a new hash resets to unknown; leaving the machine deletes the record', async () => {
    const h = setup();
    h.m.setServices(new Map([['app@.service', http]]));
    h.m.setManaged(new Map([['app@1.service', 'h1']]));
    h.m.observe({ name: 'app@1.service', activeState: 'active', mainPid: 10 });
    await until('healthy', () => h.rec('app@1.service')?.status === 'healthy');
    h.m.manage('app@1.service', 'h2');
    await until('unknown on h2', () => h.rec('app@1.service')?.hash === 'h2');
    expect(h.rec('app@1.service')?.status).toBe('unknown');
    h.m.setManaged(new Map());
    await until('deleted', () => h.rec('app@1.service') === undefined);
    expect(h.writes.at(-1)).toBe('delete /p/health/m1/app@1.service');
    await h.m.stop();
  });

  it('a service with an unusable check keeps its instances unknown; a removed service falls back to none', async () => {
    const h = setup();
    h.m.setServices(new Map([['app@.service', undefined]]));
    h.m.setManaged(new Map([['app@1.service', 'h1']]));
    h.m.observe({ name: 'app@1.service', activeState: 'active', mainPid: 10 });
    await until('unknown', () => h.rec('app@1.service')?.status === 'unknown');
    h.m.setServices(new Map());
    await until('healthy (none)', () => h.rec('app@1.service')?.status === 'healthy');
    expect(NO_CHECK.type).toBe('none');
    await h.m.stop();
  });

  it('takes over a previous process\'s record for an instance with the same hash and PID; not after a restart', async () => {
    const h = setup();
    const old = (unit: string, mainPid: number): HealthRecord => ({
      unit, machine: 'm1', hash: 'h1', status: 'healthy', since: '2026-01-01T00:00:00.000Z', checkedAt: '2026-01-01T00:00:05.000Z', consecutive: 5, message: 'HTTP 200', mainPid,
    });
    h.m.seed([old('app@1.service', 10), old('app@2.service', 99)]);
    h.m.setManaged(new Map([['app@1.service', 'h1'], ['app@2.service', 'h1']]));
    h.m.observe({ name: 'app@1.service', activeState: 'active', mainPid: 10 });
    h.m.observe({ name: 'app@2.service', activeState: 'active', mainPid: 20 });
    h.m.setServices(new Map([['app@.service', http]]));
    await until('both healthy', () => h.rec('app@1.service')?.status === 'healthy' && h.rec('app@2.service')?.status === 'healthy');
    expect(h.rec('app@1.service')?.since).toBe('2026-01-01T00:00:00.000Z');
    expect(h.rec('app@2.service')!.since > '2026-01-02').toBe(true);
    expect(h.writes.filter((w) => w.includes('app@1.service'))).toEqual(['put /p/health/m1/app@1.service healthy']);
    expect(h.writes.filter((w) => w.includes('app@2.service'))[0]).toBe('put /p/health/m1/app@2.service unknown');
    await h.m.stop();
  });

  it('retries failed writes and rewrites everything after a new lease', async () => {
    const h = setup();
    h.fail(true);
    h.m.setServices(new Map());
    h.m.setManaged(new Map([['a.service', 'h1']]));
    h.m.observe({ name: 'a.service', activeState: 'active', mainPid: 10 });
    await wait(30);
    expect(h.writes).toEqual([]);
    h.fail(false);
    await until('written after retry', () => h.rec('a.service')?.status === 'healthy');
    h.store.clear(); // the old lease expired
    h.m.rewriteAll();
    await until('rewritten', () => h.rec('a.service')?.status === 'healthy');
    await h.m.stop();
    h.m.close();
  });
});
