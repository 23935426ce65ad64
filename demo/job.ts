/**
 * The main job's second half (scripts/demo.sh runs it after
 * `fleetx sandbox up --demo`): steady HTTP load through the demo's HAProxy
 * while the real `fleetx rolling-restart app@` restarts every instance, then
 * a summary. Exits non-zero if a single request failed or the rollout did.
 *
 *   node --import tsx demo/job.ts      (FLEETX_SANDBOX_DIR picks another sandbox)
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { demoStatus } from '../src/demo/demo.js';
import { startLoad } from '../src/loadgen/load.js';
import { sandboxStatus } from '../src/sandbox/sandbox.js';
import { DEFAULT_SANDBOX_DIR } from '../src/sandbox/state.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const stateDir = process.env.FLEETX_SANDBOX_DIR ?? DEFAULT_SANDBOX_DIR;

const sandbox = await sandboxStatus(stateDir);
const demo = await demoStatus(stateDir);
if (!sandbox.healthy || !demo.exists || !demo.lbUrl) {
  console.error(`no running demo at ${stateDir}: run node bin/fleetx.mjs sandbox up --demo first`);
  process.exit(2);
}
if (!demo.healthy) console.error(`warning: not every instance is in service before the restart:\n${JSON.stringify(demo.instances, null, 2)}`);

console.log(`\nLoad through ${demo.lbUrl} while fleetx rolling-restart app@ restarts ${demo.instances.length} instance(s):\n`);
const load = startLoad({ url: demo.lbUrl, concurrency: 6, maxRequests: 2_000_000, maxDurationMs: 300_000, timeoutMs: 5_000 });
await new Promise((r) => setTimeout(r, 500));
const started = Date.now();
const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, [`${REPO}bin/fleetx.mjs`, 'rolling-restart', 'app@'], {
    cwd: REPO,
    env: { ...process.env, ...sandbox.env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
});
const rolloutMs = Date.now() - started;
const report = await load.stop();
const after = await demoStatus(stateDir);

const versions = Object.entries(report.versions).map(([v, n]) => `${v} ${n}`).join(', ') || 'none';
const failures = Object.entries(report.failuresByKind).map(([k, n]) => `${k} ${n}`).join(', ');
console.log(`
Summary
  instances:       ${demo.instances.length} (${after.instances.filter((i) => i.presence === 'in').length} back in the load balancer)
  rolling restart: ${code === 0 ? 'succeeded' : `FAILED (exit ${code})`} in ${(rolloutMs / 1000).toFixed(1)} s
  requests:        ${report.requests} in ${(report.durationMs / 1000).toFixed(1)} s, p50 ${report.p50Ms} ms, p99 ${report.p99Ms} ms
  failed requests: ${report.failures}${failures ? ` (${failures})` : ''}
  versions seen:   ${versions}

The sandbox is still up: curl ${demo.lbUrl}
  . ${sandbox.envFile}          # then: node bin/fleetx.mjs list-units, fleetx deploy app --set tag=v2, ...
Tear it down with:  node bin/fleetx.mjs sandbox down`);

process.exitCode = code !== 0 || report.failures > 0 ? 1 : 0;
