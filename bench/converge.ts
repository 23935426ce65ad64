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
 * Then: where the time went (engine: start → the unit's schedule key;
 * agent: schedule key → systemd active; reporting: systemd active → state
 * record), `--single` runs of one unit started alone on the quiet cluster,
 * the agents' peak RSS, and `destroy` of 100 of the units until no host
 * reports them.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { SandboxFixture, sleep } from '../test/helpers/sandbox.js';
import { downAndCheck, runBench } from './sandbox-run.js';
import { agentRssMaxMb, agentSample, destroyToStopped, TICKS_PER_S } from './sandbox-probes.js';
import { byMethodText, diff, metrics, sum, unaryByMethod } from './etcd-metrics.js';

const { values } = parseArgs({
  options: {
    units: { type: 'string', default: '120' },
    hosts: { type: 'string', default: '3' },
    single: { type: 'string', default: '5' },
    /** write the first host's agent journal (JSON lines) to this file, for a timeline */
    trace: { type: 'string' },
  },
});
const SINGLE = Number(values.single);
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

/** When each record under `prefix` first matched `pick`, stamped on arrival (a watch). */
async function firstTimes(sb: SandboxFixture, prefix: string, pick: (rec: Record<string, string>) => boolean, onFirst?: (name: string, n: number) => void) {
  const times = new Map<string, number>();
  const watcher = await sb.etcd().watch().prefix(prefix).create();
  watcher.on('error', (e) => console.error(`watch of ${prefix} failed: ${String(e)}`));
  watcher.on('put', (kv) => {
    const rec = JSON.parse(kv.value.toString()) as Record<string, string>;
    const name = rec.name!;
    if (!pick(rec) || times.has(name)) return;
    times.set(name, Date.now());
    onFirst?.(name, times.size);
  });
  return { times, watcher };
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
    let allSeen: () => void = () => {};
    const done = new Promise<void>((r) => (allSeen = r));
    const waiting = new Map<string, () => void>();
    const states = await firstTimes(sb, sb.keys.states(), (rec) => rec.activeState === 'active' && rec.name.startsWith('bench@'), (name, n) => {
      waiting.get(name)?.();
      if (n === UNITS) allSeen();
    });
    const seen = states.times;
    // And when each unit's own record says launched: the engine + agent share of the time.
    const units = await firstTimes(sb, sb.keys.units(), (rec) => rec.targetState === 'launched');
    const launchedAt = units.times;
    // And when each unit's schedule key (launched) appears: the engine's share ends there.
    const schedules = await firstTimes(sb, sb.keys.schedules(), (rec) => rec.targetState === 'launched');
    const scheduledAt = schedules.times;

    // The CLI runs in this process: its first command loads the command's
    // modules (through tsx's loader here, compiled in a real `fleetx`
    // process, whose start-up bench:startup measures). Load them first
    // with a start that changes nothing (no such unit: exit 4), so the
    // figures below are the command's own work, as for every single-unit run.
    const w0 = Date.now();
    const warm = await sb.cli(['start', '--no-block', 'bench-warm-up-absent.service']);
    if (warm.code !== 4) throw new Error(`warm-up start exited ${warm.code}, expected 4 (not found)\n${warm.stderr}`);
    console.log(`CLI warm-up (a start of a unit that does not exist, exit 4; loads the command's modules): ${Date.now() - w0} ms`);

    // Idle background: keepalives, election polls, whatever runs with nothing to do.
    await sleep(2_000);
    const idle0 = await metrics(sb.endpoint);
    const i0 = Date.now();
    await sleep(IDLE_WINDOW_MS);
    const idle = diff(idle0, await metrics(sb.endpoint));
    const idlePerMs = sum(unaryByMethod(idle)) / (Date.now() - i0);

    const cpu0 = await Promise.all(sb.runningHosts().map(agentSample));
    const before = await metrics(sb.endpoint);
    const t0 = Date.now();
    await sb.cliOk(['start', '--no-block', ...names]);
    const cliMs = Date.now() - t0;
    const duringCli = sum(unaryByMethod(diff(before, await metrics(sb.endpoint))));
    const timeout = setTimeout(() => allSeen(), 180_000);
    await done;
    clearTimeout(timeout);
    const convergedMs = Date.now() - t0;
    const cpu1 = await Promise.all(sb.runningHosts().map(agentSample));
    const agentCpuMs = cpu1.map((c, i) => ((c.cpuTicks - cpu0[i]!.cpuTicks) * 1000) / TICKS_PER_S);
    if (seen.size < UNITS) throw new Error(`only ${seen.size} of ${UNITS} units became active within 180 s\n${await sb.journals()}`);
    await sleep(2_000); // trailing state writes belong to the cost
    const d = diff(before, await metrics(sb.endpoint));
    const windowMs = Date.now() - t0;
    const fromOwnRecord = names.map((n) => seen.get(n)! - (launchedAt.get(n) ?? t0)).sort((a, b) => a - b);

    const observed = names.map((n) => seen.get(n)! - t0).sort((a, b) => a - b);
    const { times: active, perHost } = await systemdActiveTimes(sb);
    const bySystemd = names.map((n) => active.get(n)).filter((v): v is number => v !== undefined).map((v) => v - t0).sort((a, b) => a - b);
    const byMethod = unaryByMethod(d);
    const requests = sum(byMethod);
    const background = idlePerMs * windowMs;

    console.log(`fleetx start --no-block of ${UNITS} units: CLI returned after ${cliMs} ms, all active (etcd) after ${convergedMs} ms`);
    console.log(`agents' CPU until all were active: ${agentCpuMs.map((x) => x.toFixed(0)).join(' + ')} ms (user + system of each host's fleetx agent; load average ${loadavg()[0]!.toFixed(1)})`);
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

    if (values.trace) {
      const r = await sb.runningHosts()[0]!.exec(['journalctl', '-u', 'fleetx-agent', '-o', 'cat', '--no-pager'], { timeoutMs: 30_000 });
      writeFileSync(values.trace, `${JSON.stringify({ t0, scheduledAt: Object.fromEntries(scheduledAt), active: Object.fromEntries(active), seen: Object.fromEntries(seen) })}\n${r.stdout}`);
      console.log(`trace of ${sb.runningHosts()[0]!.name} written to ${values.trace}`);
    }
    const span = (from: Map<string, number> | number, to: Map<string, number>) =>
      names.map((n) => to.get(n)! - (typeof from === 'number' ? from : from.get(n)!)).filter(Number.isFinite).sort((a, b) => a - b);
    const pp = (xs: number[]) => `p50 ${percentile(xs, 50)} ms, p99 ${percentile(xs, 99)} ms`;
    console.log(`where the time went: start → schedule key ${pp(span(t0, scheduledAt))}; schedule key → systemd active ${pp(span(scheduledAt, active))}; systemd active → state record ${pp(span(active, seen))}`);

    // One unit alone, on the quiet cluster: what a user starting one service waits.
    const singles: Array<{ etcd: number; systemd: number; scheduled: number; cli: number }> = [];
    for (let k = 1; k <= SINGLE; k++) {
      await sleep(1_000);
      const name = `bench@single${k}.service`;
      const arrived = new Promise<void>((r) => waiting.set(name, r));
      const s0 = Date.now();
      await sb.cliOk(['start', '--no-block', name]);
      const cli = Date.now() - s0;
      await Promise.race([arrived, sleep(60_000)]);
      if (!seen.has(name)) throw new Error(`${name} did not become active within 60 s\n${await sb.journals()}`);
      const at = (await systemdActiveTimes(sb)).times.get(name);
      singles.push({ etcd: seen.get(name)! - s0, systemd: at === undefined ? NaN : at - s0, scheduled: (scheduledAt.get(name) ?? NaN) - s0, cli });
    }
    if (SINGLE > 0) {
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
      console.log(`single unit: systemd active median ${med(singles.map((x) => x.systemd))} ms, state record median ${med(singles.map((x) => x.etcd))} ms (${SINGLE} runs: ${singles.map((x) => `${x.systemd}/${x.etcd}`).join(' ')}); schedule key after median ${med(singles.map((x) => x.scheduled))} ms; CLI returned after median ${med(singles.map((x) => x.cli))} ms`);
    }
    await Promise.all([states.watcher.cancel(), units.watcher.cancel(), schedules.watcher.cancel()]);

    const rss = await agentRssMaxMb(sb);
    console.log(`agent RSS max ${rss.peakMb.toFixed(1)} MB (peak VmHWM of the ${HOSTS} agents; largest now ${rss.nowMb.toFixed(1)} MB)`);
    await destroyToStopped(sb, names.slice(0, Math.min(100, names.length)));
    return 0;
  } finally {
    process.removeListener('SIGINT', stop);
    await downAndCheck(sb);
  }
}

runBench(main);
