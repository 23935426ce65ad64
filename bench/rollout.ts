/**
 * npm run bench:rollout — how close a rolling restart comes to the waits it
 * cannot avoid. A throw-away sandbox with the demo (HAProxy + presence
 * syncer + the app's containers, see src/demo) on its own state dir, bridge and subnet;
 * first 3 hosts / 3 instances, then 9 hosts / 9 instances (the app
 * template conflicts with itself: one instance per host). Each run times
 * the real `fleetx rolling-restart app@ -o json` under light HTTP load and
 * computes the overhead ratio (src/demo/overhead.ts says exactly how).
 *
 *   npm run bench:rollout [-- --instances 3,9]
 *
 * It also counts what the rollout cost etcd (its /metrics, see
 * etcd-metrics.ts): unary requests per instance rolled, minus the idle
 * background measured just before, by method, and MVCC txns per instance.
 *
 * Last line: `rollout overhead ratio R (N instances, T s)` of the largest run.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { demoDown, demoUp, DEMO_SERVICE } from '../src/demo/demo.js';
import { rolloutOverhead, type OverheadReport, type PhaseEvent } from '../src/demo/overhead.js';
import { DEMO_START_DELAY_MS } from '../src/images/demo-images.js';
import { startLoad, type LoadReport } from '../src/loadgen/load.js';
import { connect } from '../src/registry/client.js';
import { keyspace } from '../src/registry/keys.js';
import type { RolloutRecord } from '../src/rollout/types.js';
import { OPERATOR_USER } from '../src/sandbox/etcd-auth.js';
import { sandboxDown, sandboxUp } from '../src/sandbox/sandbox.js';
import { envValues, sandboxConnection } from '../src/sandbox/state.js';
import { loadServiceFile } from '../src/service/load.js';
import { byMethodText, diff, metrics, sum, unaryByMethod } from './etcd-metrics.js';

const REPO = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const { values: args } = parseArgs({ options: { instances: { type: 'string', default: '3,9' } } });
const sizes = args.instances.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);

const tag = randomBytes(2).toString('hex');
const stateDir = `/var/tmp/fleetx-bench-rollout-${tag}`;
const net = { bridge: `fxbr${tag}`, subnet: `10.213.${50 + (randomBytes(1)[0]! % 50)}`, hostPrefix: `br${tag.slice(0, 2)}` };
const endpoint = `http://${net.subnet}.1:2379`;

interface Run {
  instances: number;
  report: OverheadReport;
  load: LoadReport;
  cliMs: number;
  etcd: { requests: number; background: number; byMethod: Map<string, number>; mvccTxn: number };
}

const IDLE_WINDOW_MS = 3_000;

async function rollingRestart(): Promise<{ events: PhaseEvent[]; id: string; code: number; ms: number; stderr: string }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${REPO}/bin/fleetx.mjs`, 'rolling-restart', 'app@', '-o', 'json'], {
      cwd: REPO,
      env: { PATH: process.env.PATH, ...envValues([endpoint], stateDir, OPERATOR_USER), FLEETX_USER: 'bench' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), 600_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as PhaseEvent & { type: string; rollout: string });
      resolve({ events: lines.filter((l) => l.type === 'instance'), id: lines[0]?.rollout ?? '', code: code ?? -1, ms: Date.now() - started, stderr });
    });
  });
}

async function historyRecord(id: string): Promise<RolloutRecord> {
  const client = connect(sandboxConnection(stateDir));
  try {
    const v = await client.get(keyspace('/fleetx').rolloutHistory(DEMO_SERVICE, id)).string();
    if (!v) throw new Error(`rollout ${id} is not in the history`);
    return JSON.parse(v) as RolloutRecord;
  } finally {
    client.close();
  }
}

async function once(n: number): Promise<Run> {
  const t0 = Date.now();
  const sandbox = await sandboxUp({ hosts: n, stateDir, repoRoot: REPO, ...net });
  const demo = await demoUp(sandbox, { repoRoot: REPO, instances: n, timeoutMs: 180_000 });
  console.log(`\n${n} hosts, ${n} instances in service behind ${demo.lbUrl} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const spec = loadServiceFile(demo.serviceFile!);
  const load = startLoad({ url: demo.lbUrl!, concurrency: 4, maxRequests: 2_000_000, maxDurationMs: 600_000, timeoutMs: 5_000 });
  await new Promise((r) => setTimeout(r, 500));
  const idle0 = await metrics(endpoint);
  const i0 = Date.now();
  await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
  const idlePerMs = sum(unaryByMethod(diff(idle0, await metrics(endpoint)))) / (Date.now() - i0);
  const before = await metrics(endpoint);
  const m0 = Date.now();
  const rr = await rollingRestart();
  const d = diff(before, await metrics(endpoint));
  const byMethod = unaryByMethod(d);
  const etcd = { requests: sum(byMethod), background: idlePerMs * (Date.now() - m0), byMethod, mvccTxn: d.get('etcd_debugging_mvcc_txn_total') ?? 0 };
  const loadReport = await load.stop();
  if (rr.code !== 0) throw new Error(`fleetx rolling-restart exited ${rr.code}: ${rr.stderr}`);
  const rec = await historyRecord(rr.id);
  const report = rolloutOverhead(rr.events, Date.parse(rec.finishedAt!) - Date.parse(rec.createdAt), {
    startDelayMs: DEMO_START_DELAY_MS, // baked into the demo image's command (src/images)
    healthIntervalMs: spec.health.intervalMs,
    healthThreshold: spec.health.threshold,
    minHealthyMs: spec.rollout.minHealthyMs,
  });
  return { instances: n, report, load: loadReport, cliMs: rr.ms, etcd };
}

const s = (ms: number) => (ms / 1000).toFixed(2);

function print(r: Run): void {
  const { report: o, load } = r;
  console.log(`rolling restart of ${r.instances}: ${s(o.wallMs)} s (record createdAt -> finishedAt; CLI process ${s(r.cliMs)} s), unavoidable ${s(o.unavoidableMs)} s`);
  console.log('  unit            leaving draining stopping starting checking joining | unavoidable span');
  for (const i of o.instances) {
    const p = i.phases;
    const cols = ['leaving', 'draining', 'stopping', 'starting', 'checking', 'joining'].map((k) => s(p[k]!).padStart(8)).join('');
    console.log(`  ${i.unit.padEnd(15)}${cols} | ${s(i.unavoidableMs).padStart(11)} ${s(i.spanMs).padStart(5)}`);
  }
  const ov = o.overheadMs;
  console.log(`  overhead: leaving ${s(ov.leaving)} s, checking beyond start-up + health + min healthy ${s(ov.checkingExtra)} s, joining ${s(ov.joining)} s, between instances ${s(ov.gaps)} s`);
  console.log(`  load: ${load.requests} requests, ${load.failures} failed ${JSON.stringify(load.failuresByKind)}, p99 ${load.p99Ms} ms`);
  const e = r.etcd;
  console.log(`  etcd requests per instance: ${((e.requests - e.background) / r.instances).toFixed(1)} (${e.requests} during the CLI, minus ${e.background.toFixed(0)} idle background; by method: ${byMethodText(e.byMethod)}; mvcc txn per instance ${(e.mvccTxn / r.instances).toFixed(1)})`);
}

const runs: Run[] = [];
let failed = false;
const cleanup = async () => {
  await demoDown(stateDir);
  await sandboxDown(stateDir);
};
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
try {
  for (const n of sizes) {
    const r = await once(n);
    print(r);
    runs.push(r);
    if (r.load.failures > 0) failed = true;
  }
} catch (e) {
  failed = true;
  console.error(`bench failed: ${(e as Error).message}`);
} finally {
  await cleanup();
}
console.log('');
for (const r of runs) console.log(`rollout overhead ratio ${r.report.ratio.toFixed(2)} (${r.instances} instances, ${s(r.report.wallMs)} s)`);
process.exitCode = failed ? 1 : 0;
