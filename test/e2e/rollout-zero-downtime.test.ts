/**
 * The proof of fleetx's heart, end to end on real systemd hosts: HAProxy in
 * front of the demo app, each instance a container of the seed's own unit
 * (units/app@.service.hbs with podman; the image runs demo/web.mjs: 1.5 s
 * start-up, drains on SIGTERM), the presence syncer driving it, and steady
 * HTTP load through it while fleetx restarts and redeploys every instance to
 * other image tags pulled from the sandbox registry. Not one request may
 * fail, and HAProxy may not retry or redispatch one. The control (each
 * container killed under the same load) shows that its counters do see
 * requests that reach an instance going away.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { openHost } from '../../src/sandbox/host.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inService } from '../../src/demo/instances.js';
import { EXIT } from '../../src/errors/errors.js';
import { warmHosts } from '../../src/images/warm.js';
import { startLoad, type LoadReport } from '../../src/loadgen/load.js';
import { lbDelta, useDemo, type LbCounters } from '../helpers/demo.js';

const demo = useDemo({ tag: 'zdt', hosts: 3 });

/** Load through the LB while `fn` runs; bounded in count and time. Also what HAProxy counted and logged meanwhile. */
async function underLoad<T>(fn: () => Promise<T>): Promise<{ result: T; load: LoadReport; lb: LbCounters; lbLog: string }> {
  const c0 = await demo.lbCounters();
  const log0 = demo.lbLog().size;
  const load = startLoad({ url: demo.lbUrl, concurrency: 6, maxRequests: 400_000, maxDurationMs: 150_000, timeoutMs: 5_000 });
  // Let the load settle first, so the rollout starts under it.
  await new Promise((r) => setTimeout(r, 500));
  try {
    const result = await fn();
    const report = await load.stop();
    const lb = lbDelta(c0, await demo.lbCounters());
    return { result, load: report, lb, lbLog: demo.lbLog(log0).text };
  } catch (e) {
    await load.stop();
    throw e;
  }
}

const summary = (what: string, l: LoadReport, lb: LbCounters) =>
  `${what}: ${l.requests} requests in ${(l.durationMs / 1000).toFixed(1)} s, ${l.failures} failed ${JSON.stringify(l.failuresByKind)}, ` +
  `versions ${JSON.stringify(l.versions)}, p99 ${l.p99Ms} ms; HAProxy retried ${lb.retries}, redispatched ${lb.redispatches} ` +
  `(connection errors ${lb.connErrors}, response errors ${lb.respErrors})`;

/**
 * fleetx's rollout took every instance out of the balancer before stopping
 * it: no request failed, and HAProxy never had to retry or redispatch one
 * (either would mean a request reached an instance that was going away).
 */
function expectNoRequestHitAStoppingInstance(load: LoadReport, lb: LbCounters, lbLog: string): void {
  const bySlot = Object.entries(lb.servers).filter(([, c]) => c.retries + c.redispatches > 0);
  const why = `HAProxy retries by slot: ${JSON.stringify(Object.fromEntries(bySlot))}\nHAProxy log meanwhile:\n${lbLog.slice(-4000)}`;
  expect(load.failures, why).toBe(0);
  expect({ retries: lb.retries, redispatches: lb.redispatches }, why).toEqual({ retries: 0, redispatches: 0 });
}

const countBy = (xs: string[]) => xs.reduce<Record<string, number>>((m, x) => ({ ...m, [x]: (m[x] ?? 0) + 1 }), {});

/** The sandbox host whose systemd runs `unit` now. */
async function hostRunning(unit: string) {
  return (await hostOf(unit)).host;
}

async function hostOf(unit: string) {
  for (const h of demo.sb.last!.hosts) {
    const host = openHost(`${demo.sb.stateDir}/hosts/${h.name}`)!;
    if ((await host.exec(['systemctl', 'is-active', unit])).stdout.trim() === 'active') return { host, address: h.address };
  }
  throw new Error(`${unit} is active on no host`);
}

describe('zero-downtime rollouts through HAProxy', () => {
  it('rolling-restart under load: no failed request, every instance restarted, healthy and back in the LB', async () => {
    const before = await demo.allInService();
    const { result, load, lb, lbLog } = await underLoad(() => demo.run(['rolling-restart', 'app@']));
    console.log(summary('fleetx rolling-restart', load, lb));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expectNoRequestHitAStoppingInstance(load, lb, lbLog);
    expect(load.ok).toBeGreaterThan(100);
    const after = await demo.allInService();
    for (const b of before) {
      const a = after.find((x) => x.unit === b.unit)!;
      expect(a.mainPid, `${b.unit} was not restarted`).not.toBe(b.mainPid);
      expect(a.hash).toBe(b.hash);
    }
    expect((await demo.history()).at(-1)).toMatchObject({ kind: 'restart', state: 'succeeded' });
  }, 120_000);

  it('every instance is a container of the image in the sandbox registry, named after its instance', async () => {
    for (const i of await demo.allInService()) {
      const n = i.unit.replace(/^app@(\d+)\.service$/, '$1');
      const host = await hostRunning(i.unit);
      const ps = await host.exec(['podman', 'ps', '--format', '{{.Names}} {{.Image}}']);
      expect(ps.stdout).toContain(`app-${n} ${demo.registry}/fleetx/demo-web:v1`);
    }
  }, 60_000);

  it('a stop drains: a 15 s request in flight is answered and the app exits 0, not SIGKILLed at the runtime\'s default 10 s; a leftover container holding the name and port is removed at start', async () => {
    await demo.allInService();
    const unit = 'app@1.service';
    const { host, address } = await hostOf(unit);
    // curl from a local port range of its own, so `ss` on the host tells this request from the health checks
    const lo = 40_000 + Math.floor(Math.random() * 200) * 100;
    const slow = new Promise<string>((resolve) => execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '60',
      '--local-port', `${lo}-${lo + 99}`, `http://${address}:8080/?delay=15000`], (_e, out) => resolve(String(out))));
    await demo.sb.until('the slow request reached the app', async () => {
      const ss = await host.exec(['ss', '-Htn', 'state', 'established', `( sport = :8080 and dport >= :${lo} and dport <= :${lo + 99} )`]);
      return ss.stdout.trim() !== '' ? true : undefined;
    }, 10_000, 50);
    const stop = await demo.run(['stop', unit]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(await slow).toBe('200');
    await demo.sb.until(`${unit} stopped`, async () => ((await host.exec(['systemctl', 'is-active', unit])).stdout.trim() === 'inactive' ? true : undefined), 60_000, 200);
    // podman run's exit status is the container's: 0 = web.mjs drained and exited on SIGTERM; 137 = SIGKILLed
    const main = await host.exec(['systemctl', 'show', '-p', 'ExecMainCode,ExecMainStatus', unit]);
    expect(main.stdout).toContain('ExecMainStatus=0');
    // a leftover: a container under the instance's name, running, on its port (as after a crash of the host's runtime)
    const left = await host.exec(['podman', 'run', '-d', '--name', 'app-1', '--init', `${demo.registry}/fleetx/demo-web:v1`]);
    expect(left.code, left.stderr).toBe(0);
    const start = await demo.run(['start', unit]);
    expect(start.code, start.stderr).toBe(0);
    await demo.allInService();
    // the app's containers (the host also runs the td-agent and dd-agent sidecars)
    const ps = await host.exec(['podman', 'ps', '-a', '--filter', 'name=^app-', '--format', '{{.ID}} {{.Names}}']);
    const rows = ps.stdout.trim().split('\n');
    expect(rows.map((r) => r.split(' ')[1])).toEqual(['app-1']);
    expect(left.stdout.trim().startsWith(rows[0]!.split(' ')[0]!)).toBe(false);
  }, 120_000);

  it('deploy of tag v2 under load: no failed request, every instance on the new revision', async () => {
    const before = await demo.allInService();
    const { result, load, lb, lbLog } = await underLoad(() => demo.run(['deploy', '-f', demo.serviceFile, '--set', 'tag=v2', '-o', 'json']));
    console.log(summary('fleetx deploy v1 -> v2', load, lb));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    // Each instance's host pulled :v2 in 'pulling', before the instance left the balancer ('leaving'):
    // the pull is outside the window the instance is out (podman's own events say when it pulled).
    const events = result.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; unit: string; phase: string; time: string });
    for (const unit of demo.units) {
      const phases = events.filter((e) => e.type === 'instance' && e.unit === unit);
      const pulling = phases.find((e) => e.phase === 'pulling');
      const leaving = phases.find((e) => e.phase === 'leaving');
      expect(phases.map((e) => e.phase).filter((p) => p !== 'pending').slice(0, 2), `${unit}: ${JSON.stringify(phases)}`).toEqual(['pulling', 'leaving']);
      const pulls = await (await hostRunning(unit)).exec(['podman', 'events', '--stream=false', '--filter', 'event=pull',
        '--since', new Date(Date.parse(pulling!.time) - 1_000).toISOString(), '--until', leaving!.time, '--format', '{{.Name}}']);
      expect(pulls.stdout, `${unit}: podman pull events between pulling and leaving\n${pulls.stderr}`).toContain(`${demo.registry}/fleetx/demo-web:v2`);
    }
    expectNoRequestHitAStoppingInstance(load, lb, lbLog);
    expect(load.versions.v2).toBeGreaterThan(0);
    const after = await demo.allInService();
    const hashes = new Set(after.map((i) => i.hash));
    expect(hashes.size).toBe(1);
    expect(hashes.has(before[0]!.hash)).toBe(false);
    expect(new Set(await demo.sampleVersions(30))).toEqual(new Set(['v2']));
    for (const i of after) {
      const ps = await (await hostRunning(i.unit)).exec(['podman', 'ps', '--filter', 'name=^app-', '--format', '{{.Image}}']);
      expect(ps.stdout.trim()).toBe(`${demo.registry}/fleetx/demo-web:v2`);
    }
    const last = (await demo.history()).at(-1)!;
    expect(last).toMatchObject({ kind: 'deploy', state: 'succeeded' });
    expect(last.toRevision).toBe((last.fromRevision ?? 0) + 1);
  }, 120_000);

  /*
   * The control: proof that the zero asserted above can fail, i.e. that
   * HAProxy's counters see requests that reach an instance going away.
   * On plain processes this was a fleetctl-style `fleetx stop` + `start` of
   * each instance. On containers that stop is graceful by accident, so it is
   * no control: `systemctl stop` makes the unit `deactivating`, the agent's
   * health tracker calls a deactivating unit unhealthy at once, and the
   * presence syncer drained the slot ~140 ms later; the app got SIGTERM and
   * closed its listener only ~300 ms after `deactivating`, because the
   * runtime's `podman stop` (ExecStop) first has to start up. A plain process
   * gets SIGTERM the moment it deactivates, so it lost that race. A race is
   * not a guarantee either way (a faster runtime or a busier agent turns it
   * around), and only the rollout's hold makes the order certain. So the
   * control is an instance that vanishes without warning: its container's
   * processes SIGKILLed, as a crash or the OOM killer does, while requests
   * are in flight on its slot (slow ones, `?delay=`, so there is one to cut:
   * waited for in HAProxy's session count, not left to the timing of the
   * load). Its slot must count retries or redispatches. The same test checks
   * that systemd (not the agent, see src/agent/launched.ts) restarts the
   * crashed container under its stable name.
   */
  it('control: a container killed under the same load makes HAProxy retry on its slot (what draining prevents); systemd restarts it', async () => {
    const before = await demo.allInService();
    const restarts = async (unit: string) =>
      Number((await (await hostRunning(unit)).exec(['systemctl', 'show', '-p', 'NRestarts', '--value', unit])).stdout.trim());
    const counts0 = new Map<string, number>();
    for (const unit of demo.units) counts0.set(unit, await restarts(unit));
    const slow: string[] = [];
    const { load, lb } = await underLoad(async () => {
      for (const unit of demo.units) {
        const n = unit.replace(/^app@(\d+)\.service$/, '$1');
        // 24 slow requests, round-robin over 3 slots: about 8 sit on this one (the load's 6 clients rarely put 4 there)
        const inFlight = Array.from({ length: 24 }, () =>
          fetch(`${demo.lbUrl}?delay=4000`, { signal: AbortSignal.timeout(30_000) }).then((r) => `${r.status}`, (e: Error) => e.message));
        await demo.sb.until(`slow requests in flight on app-${n}`, async () => (await demo.slotSessions(`app-${n}`)) >= 4, 20_000, 20);
        const kill = await (await hostRunning(unit)).exec(['podman', 'kill', '--signal', 'KILL', `app-${n}`]);
        expect(kill.code, kill.stderr).toBe(0);
        slow.push(...(await Promise.all(inFlight)));
        await demo.sb.until(`${unit} restarted by systemd`, async () => (await restarts(unit).catch(() => 0)) > counts0.get(unit)!, 30_000, 100);
        await demo.allInService();
      }
    });
    console.log(summary('control: each container SIGKILLed', load, lb), `; slow requests answered: ${JSON.stringify(countBy(slow))}`);
    for (const unit of demo.units) {
      const slot = lb.servers[unit.replace(/^app@(\d+)\.service$/, 'app-$1')]!;
      expect(slot.retries + slot.redispatches, `${unit}'s slot: ${JSON.stringify(lb.servers)}`).toBeGreaterThan(0);
    }
    const after = await demo.allInService();
    for (const b of before) {
      const a = after.find((x) => x.unit === b.unit)!;
      expect(a.mainPid, `${b.unit} runs a new process`).not.toBe(b.mainPid);
      expect(a.hash).toBe(b.hash);
      const n = b.unit.replace(/^app@(\d+)\.service$/, '$1');
      const ps = await (await hostRunning(b.unit)).exec(['podman', 'ps', '--filter', 'name=^app-', '--format', '{{.Names}}']);
      expect(ps.stdout.trim().split('\n')).toEqual([`app-${n}`]);
    }
  }, 150_000);

  it('a deploy that never becomes healthy fails, reverts every instance, and loses no request', async () => {
    const before = await demo.allInService();
    const { result, load, lb, lbLog } = await underLoad(() => demo.run(['deploy', '-f', demo.serviceFile, '--set', 'tag=unhealthy']));
    console.log(summary('fleetx deploy of the unhealthy tag (reverted)', load, lb));
    expect(result.code, result.stdout + result.stderr).toBe(EXIT.reverted);
    expect(result.stdout + result.stderr).toMatch(/reverted to revision/);
    expectNoRequestHitAStoppingInstance(load, lb, lbLog);
    expect(load.versions.unhealthy ?? 0).toBe(0);
    const after = await demo.allInService();
    expect(after.map((i) => i.hash)).toEqual(before.map((i) => i.hash));
    expect((await demo.history()).at(-1)).toMatchObject({ kind: 'deploy', state: 'failed' });
  }, 150_000);

  it('a deploy of a tag the registry does not have fails at the pull, before any instance leaves the balancer: reverted (exit 7), the registry\'s message shown, no request lost', async () => {
    const before = await demo.allInService();
    const { result, load, lb, lbLog } = await underLoad(() => demo.run(['deploy', '-f', demo.serviceFile, '--set', 'tag=no-such-tag']));
    console.log(summary('fleetx deploy of a missing tag (reverted)', load, lb));
    const out = result.stdout + result.stderr;
    expect(result.code, out).toBe(EXIT.reverted);
    expect(out).toMatch(/image pull failed on machine \S+: \/usr\/bin\/podman pull \S+:no-such-tag: exit \d+: .*manifest unknown/);
    expect(out).toMatch(/reverted to revision/);
    expectNoRequestHitAStoppingInstance(load, lb, lbLog);
    const last = (await demo.history()).at(-1)!;
    expect(last).toMatchObject({ kind: 'deploy', state: 'failed' });
    const failed = Object.values(last.instances).filter((i) => i.error !== undefined);
    expect(failed.map((i) => i.error)).toEqual([expect.stringMatching(/manifest unknown/)]);
    // nothing was restarted: the same processes serve, on the same body
    const after = await demo.allInService();
    expect(after.map((i) => [i.unit, i.mainPid, i.hash])).toEqual(before.map((i) => [i.unit, i.mainPid, i.hash]));
  }, 150_000);

  it('the CLI killed mid-rollout: the rollout completes and `rollout status --follow` reattaches', async () => {
    await demo.allInService();
    const { result, load, lb, lbLog } = await underLoad(async () => {
      const cli = demo.start(['rolling-restart', 'app@']);
      await demo.sb.until('an instance past pending', async () => {
        const r = await demo.running();
        return r && Object.values(r.instances).some((i) => i.phase !== 'pending');
      }, 20_000, 50);
      cli.child.kill('SIGKILL');
      const killed = await cli.done;
      expect(killed.signal).toBe('SIGKILL');
      expect(await demo.running()).toBeDefined();
      return demo.run(['rollout', 'status', 'app', '--follow']);
    });
    console.log(summary('fleetx rolling-restart, CLI killed', load, lb));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout + result.stderr).toMatch(/succeeded/);
    expectNoRequestHitAStoppingInstance(load, lb, lbLog);
    expect((await demo.history()).at(-1)).toMatchObject({ kind: 'restart', state: 'succeeded' });
    expect((await demo.instances()).every(inService)).toBe(true);
  }, 120_000);

  it('surge: with a spare machine, a deploy first starts an extra instance, then retires it; no failed request', async () => {
    await demo.sb.up(4); // a fourth host: Conflicts=app@*.service leaves it spare
    // Its base layer cached, like the first three (demoUp warms those).
    await warmHosts([`${demo.sb.stateDir}/hosts/${demo.sb.last!.hosts[3]!.name}`], `${demo.registry}/fleetx/node:20`);
    await demo.allInService();
    const file = join(demo.sb.stateDir, 'demo', 'app-surge.yaml'); // demo down removes it
    writeFileSync(file, readFileSync(demo.serviceFile, 'utf8').replace(/^rollout:\n/m, 'rollout:\n  surge: 1\n'));
    const { result, load, lb, lbLog } = await underLoad(() => demo.run(['deploy', '-f', file, '--set', 'tag=v1']));
    console.log(summary('fleetx deploy back to v1 with surge 1', load, lb));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expectNoRequestHitAStoppingInstance(load, lb, lbLog);
    const last = (await demo.history()).at(-1)!;
    expect(last).toMatchObject({ kind: 'deploy', state: 'succeeded' });
    const surge = Object.values(last.instances).filter((i) => i.surge);
    expect(surge.map((i) => [i.unit, i.phase])).toEqual([['app@4.service', 'done']]);
    // it served meanwhile, and is gone now: unit record, schedule, process
    expect(load.versions.v1).toBeGreaterThan(0);
    expect(await demo.sb.etcd().get(demo.sb.keys.unit('app@4.service')).string()).toBeNull();
    const all = await demo.allInService();
    expect(all.map((i) => i.unit)).toEqual(['app@1.service', 'app@2.service', 'app@3.service']);
    expect(await demo.sampleVersions(6)).toEqual(Array(6).fill('v1'));
  }, 300_000); // up boots the fourth host through cloud-init
});
