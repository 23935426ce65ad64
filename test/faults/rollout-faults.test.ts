/**
 * The fault matrix's rollout cells (docs/RELIABILITY.md): each injects one
 * fault during a rolling restart or deploy of the demo web service under
 * load through HAProxy, with the invariant checker running (harness/).
 * All cells share one sandbox of four hosts (three instances, one spare)
 * and leave it healthy, which the next cell checks before it starts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { EXIT } from '../../src/errors/errors.js';
import { sleep } from '../helpers/wait.js';
import { useFaultCluster } from './harness/cell.js';
import { cutFromEtcd, healFromEtcd, hostRunning, jumpClock, killAgent, leaderHost, powerOff, realClock, underFaketime } from './harness/faults.js';

const fc = useFaultCluster({ tag: 'mtx', hosts: 4, services: [{ name: 'api', template: 'api@.service', conflicts: true }] });

/** A second service from the demo's template: api@ on port 8081, two instances, no load balancer. */
function apiServiceFile(dir: string, webFile: string): string {
  const text = readFileSync(webFile, 'utf8')
    .replace(/^name: web$/m, 'name: api').replace(/^template: web@\.service$/m, 'template: api@.service')
    .replace(/^instances: \d+$/m, 'instances: 2').replace(/port: 8080/g, 'port: 8081')
    .replace(/^presence:\n(  .*\n)+/m, '');
  const file = join(dir, 'api.yaml');
  writeFileSync(file, text);
  return file;
}
const demo = fc.demo;

fc.cell('agent SIGKILL on the engine leader host mid rolling-restart', async (c) => {
  const cli = demo.start(['rolling-restart', 'web@']);
  await c.untilPhase(['draining', 'stopping', 'starting']);
  const host = await leaderHost(c.sb);
  c.injected(`SIGKILL of the agent on ${host.name} (engine leader)`);
  await killAgent(host);
  const end = await c.rolloutEnd(cli);
  expect((await cli.done).code).toBe(0);
  return { rollout: end };
});

fc.cell('agent SIGKILL on the host of the instance being restarted', async (c) => {
  const cli = demo.start(['rolling-restart', 'web@']);
  const r = await c.untilPhase(['starting', 'checking']);
  const unit = Object.values(r.instances).find((i) => i.phase === 'starting' || i.phase === 'checking')!.unit;
  const host = (await hostRunning(c.sb, unit)) ?? (await leaderHost(c.sb));
  c.injected(`SIGKILL of the agent on ${host.name} (runs ${unit})`);
  await killAgent(host);
  const end = await c.rolloutEnd(cli);
  expect((await cli.done).code).toBe(0);
  return { rollout: end, note: `agent of ${unit}'s host` };
});

fc.cell('the CLI SIGKILLed mid-rollout', async (c) => {
  const cli = demo.start(['deploy', '-f', demo.serviceFile, '--set', 'version=v2']);
  await c.untilPhase(['leaving', 'draining', 'stopping']);
  c.injected('SIGKILL of the deploying CLI');
  cli.child.kill('SIGKILL');
  expect((await cli.done).signal).toBe('SIGKILL');
  const end = await c.rolloutEnd();
  return { rollout: end, note: 'the rollout runs on in the engine' };
});

fc.cell('host power-off mid-rollout (nspawn killed)', async (c) => {
  const cli = demo.start(['rolling-restart', 'web@']);
  const r = await c.untilPhase(['starting', 'checking']);
  const unit = Object.values(r.instances).find((i) => i.phase === 'starting' || i.phase === 'checking')!.unit;
  const host = await hostRunning(c.sb, unit);
  if (!host) throw new Error(`${unit} runs nowhere`);
  c.injected(`power-off of ${host.name} (runs ${unit}, being restarted)`);
  await powerOff(host);
  const end = await c.rolloutEnd(cli);
  // the host comes back (its agent registers again); the cell ends when all is healthy
  await c.sb.up(4);
  return { rollout: end, note: `${unit}'s host, while ${unit} was starting` };
});

fc.cell('a host cut off etcd (still serving), healed after 15 s', async (c) => {
  const cli = demo.start(['rolling-restart', 'web@']);
  const r = await c.untilPhase(['leaving', 'draining', 'stopping']);
  const busy = new Set(Object.values(r.instances).filter((i) => i.phase !== 'pending').map((i) => i.unit));
  const pending = Object.values(r.instances).find((i) => i.phase === 'pending' && !busy.has(i.unit))?.unit ?? 'web@3.service';
  const host = await hostRunning(c.sb, pending);
  if (!host) throw new Error(`${pending} runs nowhere`);
  c.injected(`${host.name} (runs ${pending}) cut off etcd`);
  c.checker.excuse(host.name, 'cut off etcd: keeps its units running by design');
  await cutFromEtcd(host);
  await sleep(15_000);
  await healFromEtcd(host);
  c.checker.pardon(host.name);
  const end = await c.rolloutEnd(cli);
  return { rollout: end, note: `${pending}'s host, 15 s (lease TTL 10 s)` };
});

fc.cell('two deploys of one service at the same moment', async (c) => {
  const a = demo.start(['deploy', '-f', demo.serviceFile, '--set', 'version=v3']);
  const b = demo.start(['deploy', '-f', demo.serviceFile, '--set', 'version=v4']);
  c.injected('two deploys started at once');
  const [ra, rb] = await Promise.all([a.done, b.done]);
  const codes = [ra.code, rb.code].sort();
  const end = await c.rolloutEnd();
  // exactly one ran; the other was refused with the lock's holder named, and changed nothing
  expect(codes[0], ra.stdout + ra.stderr + rb.stdout + rb.stderr).toBe(0);
  expect(codes[1]).toBe(EXIT.conflict);
  const winner = ra.code === 0 ? 'v3' : 'v4';
  expect(new Set(await demo.sampleVersions(6))).toEqual(new Set([winner]));
  return { rollout: `${end}; the other exited ${codes[1]} (conflict)` };
});

fc.cell('deploys of two services at once', async (c) => {
  const api = apiServiceFile(c.sb.workDir, demo.serviceFile);
  const a = demo.start(['deploy', '-f', demo.serviceFile, '--set', 'version=v5']);
  const b = demo.start(['deploy', '-f', api]);
  c.injected('deploys of web and api started at once');
  const [ra, rb] = await Promise.all([a.done, b.done]);
  expect(ra.code, ra.stdout + ra.stderr).toBe(0);
  expect(rb.code, rb.stdout + rb.stderr).toBe(0);
  const end = await c.rolloutEnd();
  await c.sb.until('api@1 and api@2 running', async () => {
    const on = await Promise.all(c.sb.runningHosts().map((h) => c.sb.runningUnits(h, 'api@*')));
    return on.flat().sort().join() === 'api@1.service,api@2.service';
  }, 60_000);
  return { rollout: `web ${end}, api succeeded` };
});

fc.cell('a new version that never becomes healthy', async (c) => {
  const cli = demo.start(['deploy', '-f', demo.serviceFile, '--set', 'version=v6', '--set', 'unhealthy=true']);
  c.injected('deploy of a version whose /healthz always fails');
  const done = await cli.done;
  expect(done.code, done.stdout + done.stderr).toBe(EXIT.reverted);
  const end = await c.rolloutEnd();
  expect(new Set(await demo.sampleVersions(6))).toEqual(new Set(['v5']));
  return { rollout: `${end} (reverted)` };
});

fc.cell('a new version that becomes unhealthy after joining', async (c) => {
  const cli = demo.start(['deploy', '-f', demo.serviceFile, '--set', 'version=v7', '--set', 'unhealthyAfter=4000']);
  c.injected('deploy of a version whose /healthz fails 4 s after it listens');
  const done = await cli.done;
  const end = await c.rolloutEnd();
  return { rollout: `${end} (exit ${done.code})` };
});

fc.cell('a health check that flaps', async (c) => {
  const cli = demo.start(['deploy', '-f', demo.serviceFile, '--set', 'version=v8', '--set', 'unhealthyAfter=', '--set', 'flap=1500']);
  c.injected('deploy of a version whose /healthz alternates every 1.5 s');
  const done = await cli.done;
  const end = await c.rolloutEnd();
  return { rollout: `${end} (exit ${done.code})` };
});

fc.cell("the engine leader's clock jumping 5 minutes ahead mid-rollout", async (c) => {
  const host = await leaderHost(c.sb);
  await underFaketime(host);
  await c.sb.waitForMachines(c.sb.runningHosts().map((h) => h.machineId));
  await c.sb.until('the leader back on the faketime host', async () => (await c.sb.leader()) !== null, 30_000);
  const cli = demo.start(['deploy', '-f', demo.serviceFile, '--set', 'version=v9', '--set', 'flap=']);
  await c.untilPhase(['stopping', 'starting', 'checking']);
  const leader = await leaderHost(c.sb);
  c.injected(`wall clock of the agent on ${leader.name} (engine leader) +5 min`);
  if (leader.name === host.name) await jumpClock(host, '+300');
  const done = await cli.done;
  const end = await c.rolloutEnd();
  await realClock(host);
  return { rollout: `${end} (exit ${done.code})`, note: leader.name === host.name ? 'leader faketime\'d' : 'leader moved off the faketime host before the jump' };
}, 240_000);
