/**
 * The fault matrix's rollout cells (docs/RELIABILITY.md): each injects one
 * fault during a rolling restart or deploy of the demo's app service
 * (podman containers on cloud-init hosts) under load through HAProxy, with
 * the invariant checker running (harness/). All cells share one sandbox of
 * four hosts (three instances, one spare) and leave it healthy, which the
 * next cell checks before it starts. Deploys move the app between image
 * tags the matrix pushes to the sandbox registry (harness/tags.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect } from 'vitest';
import { DEMO_SERVICE } from '../../src/demo/demo.js';
import { inService } from '../../src/demo/instances.js';
import { EXIT } from '../../src/errors/errors.js';
import { sleep } from '../helpers/wait.js';
import { useFaultCluster, type CellContext } from './harness/cell.js';
import { cutFromEtcd, healFromEtcd, hostRunning, jumpClock, killAgent, leaderHost, powerOff, realClock, underFaketime } from './harness/faults.js';
import { expectEveryRestarted, instancePids } from './harness/restarts.js';
import { pushMatrixTags } from './harness/tags.js';

const HOSTS = 4;
const fc = useFaultCluster({ tag: 'mtx', hosts: HOSTS, services: [{ name: 'api', template: 'api@.service', conflicts: true }] });
const demo = fc.demo;
const RESTART = ['rolling-restart', `${DEMO_SERVICE}@`];
const IN_FLIGHT = ['stopping', 'starting', 'checking'];

/**
 * The matrix's copy of the demo's service file: the same settings with a
 * 30 s rollout deadline (60 s in the demo), so the cells whose version goes
 * bad fail and revert sooner. Every deploy here uses it.
 */
let serviceFile = '';
beforeAll(async () => {
  await pushMatrixTags(demo);
  const text = readFileSync(demo.serviceFile, 'utf8');
  if (!/^ {2}deadline: 60s$/m.test(text)) throw new Error(`no "deadline: 60s" in ${demo.serviceFile}`);
  serviceFile = join(demo.sb.workDir, 'app.yaml');
  writeFileSync(serviceFile, text.replace(/^ {2}deadline: 60s$/m, '  deadline: 30s'));
}, 300_000);

/** The CLI's own line on why the rollout failed. */
const why = (stderr: string) => stderr.split('\n').find((l) => l.startsWith('fleetx: ')) ?? '';

const deploy = (tag: string) => demo.start(['deploy', '-f', serviceFile, '--set', `tag=${tag}`]);

/** A second service from the demo's template: api@ (tag api listens on 8081), two instances, no load balancer. */
function apiServiceFile(dir: string): string {
  const text = readFileSync(serviceFile, 'utf8')
    .replace(/^name: app$/m, 'name: api').replace(/^template: app@\.service$/m, 'template: api@.service')
    .replace(/^instances: \d+$/m, 'instances: 2').replace(/^ {2}port: 8080$/gm, '  port: 8081')
    .replace(/^presence:\n( {2}.*\n)+/m, '');
  const file = join(dir, 'api.yaml');
  writeFileSync(file, text);
  return file;
}

fc.cell('agent SIGKILL on the engine leader host mid rolling-restart', async (c) => {
  const pids = await instancePids(c.sb);
  const cli = demo.start(RESTART);
  await c.untilPhase(IN_FLIGHT, 60_000, cli);
  const host = await leaderHost(c.sb);
  c.injected(`SIGKILL of the agent on ${host.name} (engine leader)`);
  await killAgent(host);
  const end = await c.rolloutEnd(cli);
  expect((await cli.done).code).toBe(0);
  await expectEveryRestarted(c.sb, pids, end);
  return { rollout: end };
});

fc.cell('agent SIGKILL on the host of the instance being restarted', async (c) => {
  const pids = await instancePids(c.sb);
  const cli = demo.start(RESTART);
  const r = await c.untilPhase(['starting', 'checking'], 60_000, cli);
  const unit = Object.values(r.instances).find((i) => i.phase === 'starting' || i.phase === 'checking')!.unit;
  const host = (await hostRunning(c.sb, unit)) ?? (await leaderHost(c.sb));
  c.injected(`SIGKILL of the agent on ${host.name} (runs ${unit})`);
  await killAgent(host);
  const end = await c.rolloutEnd(cli);
  expect((await cli.done).code).toBe(0);
  await expectEveryRestarted(c.sb, pids, end);
  return { rollout: end, note: `agent of ${unit}'s host` };
});

fc.cell('host power-off mid rolling-restart (an instance the rollout has yet to reach)', async (c) => {
  const cli = demo.start(RESTART);
  const r = await c.untilPhase(IN_FLIGHT, 60_000, cli);
  const waiting = Object.values(r.instances).find((i) => i.phase === 'pending')?.unit;
  const victim = (waiting && (await hostRunning(c.sb, waiting))) || c.sb.runningHosts().find((h) => h.name !== c.sb.hostNames()[0])!;
  c.injected(`power-off of ${victim.name} (SIGKILL of its whole PID namespace)${waiting ? `, which runs ${waiting}` : ''}`);
  await powerOff(victim);
  const end = await c.rolloutEnd(cli);
  const done = await cli.done;
  // the instance moved to the spare host: every instance in service (cell.ts) before the host is back
  await c.sb.until('every instance in service on the hosts left', async () => (await demo.instances()).every(inService), 120_000, 500);
  c.recovered();
  await c.sb.up(HOSTS);
  return { rollout: `${end} (CLI exit ${done.code})`, note: `${victim.name} powered off${waiting ? ` with ${waiting}` : ''}; rebooted by sandbox up after the rollout` };
}, 300_000);

fc.cell('a host cut off etcd (still serving) mid rolling-restart, healed after 20 s', async (c) => {
  const pids = await instancePids(c.sb);
  const cli = demo.start(RESTART);
  const r = await c.untilPhase(IN_FLIGHT, 60_000, cli);
  const waiting = Object.values(r.instances).find((i) => i.phase === 'pending')?.unit;
  const victim = (waiting && (await hostRunning(c.sb, waiting))) || c.sb.runningHosts()[1]!;
  c.injected(`${victim.name} cut off etcd (packets dropped in the host) for 20 s`);
  c.checker.excuse(victim.name, 'cut off etcd on purpose: it keeps its units running by design');
  await cutFromEtcd(victim);
  await sleep(20_000);
  await healFromEtcd(victim);
  c.checker.pardon(victim.name);
  const end = await c.rolloutEnd(cli);
  const done = await cli.done;
  await expectEveryRestarted(c.sb, pids, end);
  return { rollout: `${end} (CLI exit ${done.code})`, note: `${victim.name}${waiting ? ` (runs ${waiting})` : ''} cut off for 20 s (lease TTL 10 s)` };
}, 300_000);

fc.cell("one host's clock jumps 5 minutes ahead mid rolling-restart, then back", async (c) => {
  const victim = c.sb.runningHosts().at(-1)!;
  await underFaketime(victim);
  try {
    const pids = await instancePids(c.sb);
    const cli = demo.start(RESTART);
    await c.untilPhase(IN_FLIGHT, 60_000, cli);
    c.injected(`${victim.name}'s wall clock +5 min as its agent sees it`);
    await jumpClock(victim, '+300');
    await sleep(10_000);
    await jumpClock(victim, '+0');
    const end = await c.rolloutEnd(cli);
    const done = await cli.done;
    expect(done.code, done.stdout + done.stderr).toBe(0);
    await expectEveryRestarted(c.sb, pids, end);
    return { rollout: `${end} (CLI exit ${done.code})`, note: `${victim.name} +300 s for 10 s (libfaketime in its agent), then back` };
  } finally {
    await realClock(victim);
  }
}, 300_000);

fc.cell('the CLI SIGKILLed mid-rollout', async (c) => {
  const cli = deploy('v2');
  await c.untilPhase(['pulling', 'leaving', 'draining', ...IN_FLIGHT], 60_000, cli);
  c.injected('SIGKILL of the deploying CLI');
  cli.child.kill('SIGKILL');
  expect((await cli.done).signal).toBe('SIGKILL');
  const end = await c.rolloutEnd();
  expect(new Set(await demo.sampleVersions(6))).toEqual(new Set(['v2']));
  return { rollout: end, note: 'the rollout runs on in the engine' };
});

fc.cell('two deploys of one service at the same moment', async (c) => {
  const a = deploy('v3');
  const b = deploy('v4');
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
  const api = apiServiceFile(c.sb.workDir);
  const a = deploy('v5');
  const b = demo.start(['deploy', '-f', api, '--set', 'tag=api']);
  c.injected('deploys of app and api started at once');
  const [ra, rb] = await Promise.all([a.done, b.done]);
  expect(ra.code, ra.stdout + ra.stderr).toBe(0);
  expect(rb.code, rb.stdout + rb.stderr).toBe(0);
  const end = await c.rolloutEnd();
  await c.sb.until('api@1 and api@2 running', async () => {
    const on = await Promise.all(c.sb.runningHosts().map((h) => c.sb.runningUnits(h, 'api@*')));
    return on.flat().sort().join() === 'api@1.service,api@2.service';
  }, 60_000);
  return { rollout: `${DEMO_SERVICE} ${end}, api succeeded` };
});

/** A deploy of a bad version `tag`: it must revert (exit 7) and leave the versions that served before. */
function revertedDeploy(tag: string, fault: string) {
  return async (c: CellContext) => {
    const before = new Set(await demo.sampleVersions(6)); // v5 when the file runs in order
    const cli = deploy(tag);
    c.injected(fault);
    const done = await cli.done;
    expect(done.code, done.stdout + done.stderr).toBe(EXIT.reverted);
    const end = await c.rolloutEnd();
    expect(new Set(await demo.sampleVersions(6))).toEqual(before);
    return { rollout: `${end} (reverted)`, note: why(done.stderr) };
  };
}

fc.cell('a new version that never becomes healthy', revertedDeploy('unhealthy', 'deploy of a version whose /healthz always fails'));

fc.cell('a deploy back to the running body after a revert (its revision is verified)', async (c) => {
  const cli = deploy('v5');
  c.injected('deploy of the body every instance runs, after a reverted deploy');
  const done = await cli.done;
  expect(done.code, done.stdout + done.stderr).toBe(0);
  const end = await c.rolloutEnd();
  // the new revision (same body as the one reverted to) is marked healthy: it was left healthy:false
  const last = (await demo.history()).at(-1)!;
  const rev = JSON.parse((await c.sb.etcd().get(c.sb.keys.revision(DEMO_SERVICE, last.toRevision!)).string())!) as { healthy: boolean };
  expect(rev.healthy).toBe(true);
  return { rollout: `${end}, revision ${last.toRevision} healthy` };
});

fc.cell('a new version that becomes unhealthy after joining', revertedDeploy('bad-after', 'deploy of a version whose /healthz fails from 4 s after it listens'), 300_000);

fc.cell('a new version whose health check flaps', revertedDeploy('flap', 'deploy of a version whose /healthz alternates every 1.5 s'), 300_000);
