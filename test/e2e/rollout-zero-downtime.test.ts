/**
 * The proof of fleetx's heart, end to end on real systemd hosts: HAProxy in
 * front of the demo web service (demo/web.mjs, 1.5 s start-up, drains on
 * SIGTERM), the presence syncer driving it, and steady HTTP load through it
 * while fleetx restarts and redeploys every instance. Not one request may
 * fail. The fleetctl way (stop, then start, each instance) runs under the
 * same load as the baseline; its failures are printed next to fleetx's.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inService } from '../../src/demo/instances.js';
import { startLoad, type LoadReport } from '../../src/loadgen/load.js';
import { useDemo } from '../helpers/demo.js';

const demo = useDemo({ tag: 'zdt', hosts: 3 });

type Counters = Awaited<ReturnType<typeof demo.lbCounters>>;

/** Load through the LB while `fn` runs; bounded in count and time. Also HAProxy's retries meanwhile. */
async function underLoad<T>(fn: () => Promise<T>): Promise<{ result: T; load: LoadReport; lb: Counters }> {
  const c0 = await demo.lbCounters();
  const load = startLoad({ url: demo.lbUrl, concurrency: 6, maxRequests: 400_000, maxDurationMs: 150_000, timeoutMs: 5_000 });
  // Let the load settle first, so the rollout starts under it.
  await new Promise((r) => setTimeout(r, 500));
  try {
    const result = await fn();
    const report = await load.stop();
    const c1 = await demo.lbCounters();
    const lb = Object.fromEntries(Object.entries(c1).map(([k, v]) => [k, v - c0[k as keyof Counters]])) as Counters;
    return { result, load: report, lb };
  } catch (e) {
    await load.stop();
    throw e;
  }
}

const summary = (what: string, l: LoadReport, lb: Counters) =>
  `${what}: ${l.requests} requests in ${(l.durationMs / 1000).toFixed(1)} s, ${l.failures} failed ${JSON.stringify(l.failuresByKind)}, ` +
  `versions ${JSON.stringify(l.versions)}, p99 ${l.p99Ms} ms; HAProxy retried ${lb.retries} (redispatched ${lb.redispatches}, connection errors ${lb.connErrors}, response errors ${lb.respErrors})`;

const fleetxFailures: number[] = [];
const fleetxRetries: number[] = [];

describe('zero-downtime rollouts through HAProxy', () => {
  it('rolling-restart under load: no failed request, every instance restarted, healthy and back in the LB', async () => {
    const before = await demo.allInService();
    const { result, load, lb } = await underLoad(() => demo.run(['rolling-restart', 'web@']));
    console.log(summary('fleetx rolling-restart', load, lb));
    fleetxRetries.push(lb.retries + lb.redispatches);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(load.failures).toBe(0);
    expect(load.ok).toBeGreaterThan(100);
    fleetxFailures.push(load.failures);
    const after = await demo.allInService();
    for (const b of before) {
      const a = after.find((x) => x.unit === b.unit)!;
      expect(a.mainPid, `${b.unit} was not restarted`).not.toBe(b.mainPid);
      expect(a.hash).toBe(b.hash);
    }
    expect((await demo.history()).at(-1)).toMatchObject({ kind: 'restart', state: 'succeeded' });
  }, 120_000);

  it('deploy of version v2 under load: no failed request, every instance on the new revision', async () => {
    const before = await demo.allInService();
    const { result, load, lb } = await underLoad(() => demo.run(['deploy', '-f', demo.serviceFile, '--set', 'version=v2']));
    console.log(summary('fleetx deploy v1 -> v2', load, lb));
    fleetxRetries.push(lb.retries + lb.redispatches);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(load.failures).toBe(0);
    expect(load.versions.v2).toBeGreaterThan(0);
    fleetxFailures.push(load.failures);
    const after = await demo.allInService();
    const hashes = new Set(after.map((i) => i.hash));
    expect(hashes.size).toBe(1);
    expect(hashes.has(before[0]!.hash)).toBe(false);
    expect(new Set(await demo.sampleVersions(30))).toEqual(new Set(['v2']));
    const last = (await demo.history()).at(-1)!;
    expect(last).toMatchObject({ kind: 'deploy', state: 'succeeded' });
    expect(last.toRevision).toBe((last.fromRevision ?? 0) + 1);
  }, 120_000);

  it('baseline: fleetctl-style stop/start of each instance under the same load (failures reported beside fleetx\'s)', async () => {
    await demo.allInService();
    const { load, lb } = await underLoad(async () => {
      for (const unit of demo.units) {
        const stop = await demo.run(['stop', unit]);
        expect(stop.code, stop.stderr).toBe(0);
        const start = await demo.run(['start', unit]);
        expect(start.code, start.stderr).toBe(0);
      }
    });
    console.log(summary('baseline stop/start loop', load, lb));
    console.log(`failed requests: fleetx ${fleetxFailures.join(' + ')}, baseline stop/start ${load.failures}`);
    console.log(`requests HAProxy had to retry or send elsewhere (they hit a stopping instance): fleetx ${fleetxRetries.join(' + ')}, baseline stop/start ${lb.retries + lb.redispatches}`);
    expect(fleetxFailures.every((f) => f === 0)).toBe(true);
    if (load.failures === 0) console.log('note: the baseline lost no request to the client either: HAProxy retried what hit a stopped instance');
    await demo.allInService();
  }, 120_000);

  it('a deploy that never becomes healthy fails, reverts every instance, and loses no request', async () => {
    const before = await demo.allInService();
    const { result, load, lb } = await underLoad(() => demo.run(['deploy', '-f', demo.serviceFile, '--set', 'version=v3', '--set', 'unhealthy=true']));
    console.log(summary('fleetx deploy of an unhealthy v3 (reverted)', load, lb));
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout + result.stderr).toMatch(/reverted to revision/);
    expect(load.failures).toBe(0);
    expect(load.versions.v3 ?? 0).toBe(0);
    const after = await demo.allInService();
    expect(after.map((i) => i.hash)).toEqual(before.map((i) => i.hash));
    expect((await demo.history()).at(-1)).toMatchObject({ kind: 'deploy', state: 'failed' });
  }, 150_000);

  it('the CLI killed mid-rollout: the rollout completes and `rollout status --follow` reattaches', async () => {
    await demo.allInService();
    const { result, load, lb } = await underLoad(async () => {
      const cli = demo.start(['rolling-restart', 'web@']);
      await demo.sb.until('an instance past pending', async () => {
        const r = await demo.running();
        return r && Object.values(r.instances).some((i) => i.phase !== 'pending');
      }, 20_000, 50);
      cli.child.kill('SIGKILL');
      const killed = await cli.done;
      expect(killed.signal).toBe('SIGKILL');
      expect(await demo.running()).toBeDefined();
      return demo.run(['rollout', 'status', 'web', '--follow']);
    });
    console.log(summary('fleetx rolling-restart, CLI killed', load, lb));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout + result.stderr).toMatch(/succeeded/);
    expect(load.failures).toBe(0);
    expect((await demo.history()).at(-1)).toMatchObject({ kind: 'restart', state: 'succeeded' });
    expect((await demo.instances()).every(inService)).toBe(true);
  }, 120_000);

  it('surge: with a spare machine, a deploy first starts an extra instance, then retires it; no failed request', async () => {
    await demo.sb.up(4); // a fourth host: Conflicts=web@*.service leaves it spare
    await demo.allInService();
    const file = join(demo.sb.stateDir, 'demo', 'web-surge.yaml'); // demo down removes it
    writeFileSync(file, readFileSync(demo.serviceFile, 'utf8').replace(/^rollout:\n/m, 'rollout:\n  surge: 1\n'));
    const { result, load, lb } = await underLoad(() => demo.run(['deploy', '-f', file, '--set', 'version=v5']));
    console.log(summary('fleetx deploy v5 with surge 1', load, lb));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(load.failures).toBe(0);
    const last = (await demo.history()).at(-1)!;
    expect(last).toMatchObject({ kind: 'deploy', state: 'succeeded' });
    const surge = Object.values(last.instances).filter((i) => i.surge);
    expect(surge.map((i) => [i.unit, i.phase])).toEqual([['web@4.service', 'done']]);
    // it served meanwhile, and is gone now: unit record, schedule, process
    expect(load.versions.v5).toBeGreaterThan(0);
    expect(await demo.sb.etcd().get(demo.sb.keys.unit('web@4.service')).string()).toBeNull();
    const all = await demo.allInService();
    expect(all.map((i) => i.unit)).toEqual(['web@1.service', 'web@2.service', 'web@3.service']);
    expect(await demo.sampleVersions(6)).toEqual(Array(6).fill('v5'));
  }, 150_000);
});
