/**
 * Convergence benchmark: how long from `fleetx start --no-block` of many
 * units to each of them running under systemd on its host, and how many etcd
 * requests that took per unit. Real everything: a sandbox of 3 systemd hosts
 * (each running `fleetx agent`, one of which leads the engine) and its etcd,
 * on a unique state dir, bridge and subnet; torn down at the end.
 *
 *   npm run bench:converge [-- --units 120 --hosts 3]
 *
 * Times: from just before the in-process CLI call to (a) the unit's state
 * record with activeState "active" arriving on an etcd watch (what a user's
 * `fleetx list-units` would see) and (b) systemd's own ActiveEnterTimestamp
 * on the host (the same clock: hosts are containers on this machine).
 * Requests: etcd's /metrics (gRPC requests started, by method) after minus
 * before, minus the idle background (keepalives, election polls) measured
 * just before over a quiet window, divided by the number of units.
 */
import { parseArgs } from 'node:util';
import { SandboxFixture, sleep } from '../test/helpers/sandbox.js';
import { downAndCheck, runBench } from './sandbox-run.js';
import type { UnitStateRecord } from '../src/registry/records.js';
import { byMethodText, diff, metrics, sum, unaryByMethod } from './etcd-metrics.js';

const { values } = parseArgs({
  options: { units: { type: 'string', default: '120' }, hosts: { type: 'string', default: '3' } },
});
const UNITS = Number(values.units);
const HOSTS = Number(values.hosts);
const IDLE_WINDOW_MS = 5_000;
const TEMPLATE = ['[Unit]', 'Description=converge bench %i', '[Service]', 'ExecStart=/bin/sleep infinity', ''].join('\n');

/** Nearest-rank percentile. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** systemd's ActiveEnterTimestamp (ms since epoch) of every bench@ unit on every host. */
async function systemdActiveTimes(sb: SandboxFixture): Promise<{ times: Map<string, number>; perHost: Record<string, number> }> {
  const out = new Map<string, number>();
  const perHost: Record<string, number> = {};
  for (const h of sb.runningHosts()) {
    perHost[h.name] = 0;
    const r = await h.exec(['systemctl', 'show', '-p', 'Id,ActiveEnterTimestamp', '--timestamp=us+utc', 'bench@*'], { timeoutMs: 30_000 });
    for (const block of r.stdout.split('\n\n')) {
      const id = /^Id=(.+)$/m.exec(block)?.[1];
      const ts = /^ActiveEnterTimestamp=\w+ (\S+ \S+) UTC$/m.exec(block)?.[1];
      if (id && ts) {
        out.set(id, Date.parse(`${ts.replace(' ', 'T').slice(0, 23)}Z`));
        perHost[h.name]!++;
      }
    }
  }
  return { times: out, perHost };
}

async function main(): Promise<number> {
  const sb = new SandboxFixture({ tag: 'bench', hosts: HOSTS });
  const stop = () => void sb.down().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  try {
    const t = Date.now();
    await sb.up();
    console.log(`sandbox up: ${HOSTS} hosts, agents registered, in ${Date.now() - t} ms (${sb.stateDir}, etcd ${sb.endpoint})`);
    sb.writeUnit('bench@.service', TEMPLATE);
    const names = Array.from({ length: UNITS }, (_, i) => `bench@${i + 1}.service`);

    // Watch state records: the first "active" of each unit, stamped on arrival.
    const seen = new Map<string, number>();
    let allSeen: () => void = () => {};
    const done = new Promise<void>((r) => (allSeen = r));
    const watcher = await sb.etcd().watch().prefix(sb.keys.states()).create();
    watcher.on('error', (e) => console.error(`state watch error: ${String(e)}`));
    watcher.on('put', (kv) => {
      const rec = JSON.parse(kv.value.toString()) as UnitStateRecord;
      if (rec.activeState === 'active' && rec.name.startsWith('bench@') && !seen.has(rec.name)) {
        seen.set(rec.name, Date.now());
        if (seen.size === UNITS) allSeen();
      }
    });

    // And when each unit's own record says launched: the engine + agent share of the time.
    const launchedAt = new Map<string, number>();
    const unitWatcher = await sb.etcd().watch().prefix(sb.keys.units()).create();
    unitWatcher.on('error', (e) => console.error(`unit watch error: ${String(e)}`));
    unitWatcher.on('put', (kv) => {
      const rec = JSON.parse(kv.value.toString()) as { name: string; targetState: string };
      if (rec.targetState === 'launched' && !launchedAt.has(rec.name)) launchedAt.set(rec.name, Date.now());
    });

    // Idle background: keepalives, election polls, whatever runs with nothing to do.
    await sleep(2_000);
    const idle0 = await metrics(sb.endpoint);
    const i0 = Date.now();
    await sleep(IDLE_WINDOW_MS);
    const idle = diff(idle0, await metrics(sb.endpoint));
    const idlePerMs = sum(unaryByMethod(idle)) / (Date.now() - i0);

    const before = await metrics(sb.endpoint);
    const t0 = Date.now();
    await sb.cliOk(['start', '--no-block', ...names]);
    const cliMs = Date.now() - t0;
    const duringCli = sum(unaryByMethod(diff(before, await metrics(sb.endpoint))));
    const timeout = setTimeout(() => allSeen(), 180_000);
    await done;
    clearTimeout(timeout);
    const convergedMs = Date.now() - t0;
    if (seen.size < UNITS) throw new Error(`only ${seen.size} of ${UNITS} units became active within 180 s\n${await sb.journals()}`);
    await sleep(2_000); // trailing state writes belong to the cost
    const d = diff(before, await metrics(sb.endpoint));
    const windowMs = Date.now() - t0;
    await watcher.cancel();
    await unitWatcher.cancel();
    const fromOwnRecord = names.map((n) => seen.get(n)! - (launchedAt.get(n) ?? t0)).sort((a, b) => a - b);

    const observed = names.map((n) => seen.get(n)! - t0).sort((a, b) => a - b);
    const { times: active, perHost } = await systemdActiveTimes(sb);
    const bySystemd = names.map((n) => active.get(n)).filter((v): v is number => v !== undefined).map((v) => v - t0).sort((a, b) => a - b);
    const byMethod = unaryByMethod(d);
    const requests = sum(byMethod);
    const background = idlePerMs * windowMs;

    console.log(`fleetx start --no-block of ${UNITS} units: CLI returned after ${cliMs} ms, all active (etcd) after ${convergedMs} ms`);
    console.log(`converge p50 ${percentile(observed, 50)} ms, p99 ${percentile(observed, 99)} ms (${UNITS} units, ${HOSTS} hosts)`);
    if (bySystemd.length === UNITS) {
      console.log(`systemd active p50 ${percentile(bySystemd, 50)} ms, p99 ${percentile(bySystemd, 99)} ms (ActiveEnterTimestamp on the hosts)`);
    } else {
      console.log(`systemd active: only ${bySystemd.length} of ${UNITS} timestamps read`);
    }
    console.log(`from each unit's own record set to launched to active (engine + agent): p50 ${percentile(fromOwnRecord, 50)} ms, p99 ${percentile(fromOwnRecord, 99)} ms`);
    console.log(`etcd requests per unit started: ${((requests - background) / UNITS).toFixed(1)} (${requests} requests in ${windowMs} ms, minus ${background.toFixed(0)} idle background; ${duringCli} while the CLI ran)`);
    console.log(`  by method: ${byMethodText(byMethod)}`);
    const mvcc = (k: string) => d.get(`etcd_debugging_mvcc_${k}_total`) ?? 0;
    console.log(`  mvcc per unit: put ${(mvcc('put') / UNITS).toFixed(1)}, range ${(mvcc('range') / UNITS).toFixed(1)}, txn ${(mvcc('txn') / UNITS).toFixed(1)}, delete ${(mvcc('delete') / UNITS).toFixed(1)}`);
    console.log(`  units per host: ${JSON.stringify(perHost)}`);
    return 0;
  } finally {
    process.removeListener('SIGINT', stop);
    await downAndCheck(sb);
  }
}

runBench(main);
