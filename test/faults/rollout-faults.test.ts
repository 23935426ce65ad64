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
import { useFaultCluster } from './harness/cell.js';
import { hostRunning, killAgent, leaderHost } from './harness/faults.js';

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
  await c.untilPhase(['stopping', 'starting', 'checking'], 60_000, cli);
  const host = await leaderHost(c.sb);
  c.injected(`SIGKILL of the agent on ${host.name} (engine leader)`);
  await killAgent(host);
  const end = await c.rolloutEnd(cli);
  expect((await cli.done).code).toBe(0);
  return { rollout: end };
});

fc.cell('agent SIGKILL on the host of the instance being restarted', async (c) => {
  const cli = demo.start(['rolling-restart', 'web@']);
  const r = await c.untilPhase(['starting', 'checking'], 60_000, cli);
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
  await c.untilPhase(['leaving', 'draining', 'stopping', 'starting', 'checking'], 60_000, cli);
  c.injected('SIGKILL of the deploying CLI');
  cli.child.kill('SIGKILL');
  expect((await cli.done).signal).toBe('SIGKILL');
  const end = await c.rolloutEnd();
  return { rollout: end, note: 'the rollout runs on in the engine' };
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


fc.cell('a deploy back to the running body after a revert (its revision is verified)', async (c) => {
  const cli = demo.start(['deploy', '-f', demo.serviceFile, '--set', 'version=v5']);
  c.injected('deploy of the body every instance runs, after a reverted deploy');
  const done = await cli.done;
  expect(done.code, done.stdout + done.stderr).toBe(0);
  const end = await c.rolloutEnd();
  // the new revision (same body as the one reverted to) is marked healthy: it was left healthy:false
  const last = (await demo.history()).at(-1)!;
  const rev = JSON.parse((await c.sb.etcd().get(c.sb.keys.revision('web', last.toRevision!)).string())!) as { healthy: boolean };
  expect(rev.healthy).toBe(true);
  return { rollout: `${end}, revision ${last.toRevision} healthy` };
});
