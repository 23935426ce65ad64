/**
 * One process of hollow hosts for bench/scale.ts: each host is the real
 * host daemon, compiled (dist/), (runHostDaemon: agent, and on the hosts told so, engine and
 * rollout controller, each with its own etcd client and lease) over the
 * hollow systemd driver (src/systemd/hollow.ts: unit state simulated in
 * memory, no processes). Driven by its parent over the IPC channel:
 *
 *   parent -> { type: 'start', hosts, endpoint, prefix, ttlSec }   reply { type: 'started' }
 *   parent -> { type: 'memory' }                                    reply { type: 'memory', ... }
 *   parent -> { type: 'passes' }                                    reply { type: 'passes', passes (since the last ask), cpuMs (this process's, so far) }
 *   parent -> { type: 'stop' }                                      stops every daemon, exits
 *
 * A hollow host's problems are counted (pino lines at level warn and up),
 * not printed: 1,000 hosts would drown the bench's own lines.
 */
// The compiled code, as `fleetx agent` runs it (npm run bench:scale builds first).
const dist = (path: string) => import(new URL(`../dist/${path}`, import.meta.url).href);
const { runHostDaemon } = (await dist('daemon/host.js')) as typeof import('../src/daemon/host.js');
const { HollowSystemd } = (await dist('systemd/hollow.js')) as typeof import('../src/systemd/hollow.js');
type HollowSystemd = import('../src/systemd/hollow.js').HollowSystemd;

export interface HollowHostSpec {
  id: string;
  metadata: Record<string, string>;
  engine: boolean;
}

export type ToHosts =
  | { type: 'start'; hosts: HollowHostSpec[]; endpoint: string; prefix: string; ttlSec: number }
  | { type: 'memory' }
  | { type: 'passes' }
  | { type: 'stop' };

export type FromHosts =
  | { type: 'started'; baselineRssMb: number; baselineHeapMb: number }
  | { type: 'memory'; hosts: number; rssMb: number; heapMb: number; baselineRssMb: number; baselineHeapMb: number; warnings: number; jobs: number }
  | { type: 'passes'; passes: EnginePass[]; cpuMs: number }
  | { type: 'failed'; error: string };

/** An engine pass that wrote something, as its host logged it (src/daemon/logs.ts). */
export interface EnginePass {
  time: number;
  ops: number;
  view: string;
  durationMs: number;
  phases?: { view: number; bodies: number; plan: number; write: number };
}

const send = (m: FromHosts) => process.send!(m);
const mb = (b: number) => b / 1024 / 1024;
const stops: AbortController[] = [];
const daemons: Promise<void>[] = [];
const drivers: HollowSystemd[] = [];
let warnings = 0;
const passes: EnginePass[] = [];

function engineLog(line: string): void {
  const rec = JSON.parse(line) as { level: number; msg: string } & EnginePass;
  if (rec.msg === 'engine pass') passes.push({ time: rec.time, ops: rec.ops, view: rec.view, durationMs: rec.durationMs, phases: rec.phases });
  else if (rec.level >= 40) warnings++;
}
let baseline = { rss: 0, heap: 0 };

function sample(): { rss: number; heap: number } {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { rss: mb(m.rss), heap: mb(m.heapUsed) };
}

function start(msg: Extract<ToHosts, { type: 'start' }>): void {
  baseline = sample();
  for (const h of msg.hosts) {
    const stop = new AbortController();
    const systemd = new HollowSystemd();
    stops.push(stop);
    drivers.push(systemd);
    daemons.push(
      runHostDaemon({
        connection: { endpoints: [msg.endpoint], prefix: msg.prefix, requestTimeoutMs: 5000 },
        identity: { machineId: h.id, ip: '127.0.0.1', metadata: Object.entries(h.metadata).map(([k, v]) => `${k}=${v}`) },
        ttlSec: msg.ttlSec,
        engine: h.engine,
        systemd,
        // engine hosts log at info for their 'engine pass' lines (passes that wrote), counted below
        logLevel: h.engine ? 'info' : 'warn',
        writeLog: h.engine ? engineLog : () => void warnings++,
        signal: stop.signal,
      }).catch((e: unknown) => {
        send({ type: 'failed', error: `${h.id}: ${String(e)}` });
      }),
    );
  }
  send({ type: 'started', baselineRssMb: baseline.rss, baselineHeapMb: baseline.heap });
}

// the bench went away (killed, crashed): nothing of ours may outlive it
process.on('disconnect', () => process.exit(1));

process.on('message', (msg: ToHosts) => {
  if (msg.type === 'start') start(msg);
  else if (msg.type === 'memory') {
    const now = sample();
    const jobs = drivers.reduce((n, d) => n + d.jobs.start + d.jobs.stop + d.jobs.restart, 0);
    send({ type: 'memory', hosts: stops.length, rssMb: now.rss, heapMb: now.heap, baselineRssMb: baseline.rss, baselineHeapMb: baseline.heap, warnings, jobs });
  } else if (msg.type === 'passes') {
    const cpu = process.cpuUsage();
    send({ type: 'passes', passes: passes.splice(0), cpuMs: (cpu.user + cpu.system) / 1000 });
  } else if (msg.type === 'stop') {
    for (const s of stops) s.abort();
    void Promise.allSettled(daemons).then(() => process.exit(0));
  }
});
