/**
 * Scale benchmark with hollow hosts, as Kubernetes' kubemark does it: the
 * real host daemon (agent, engine, rollout controller) over a hollow systemd
 * driver that simulates unit state without processes (src/systemd/hollow.ts),
 * many hosts per process, against one real etcd started here on free
 * loopback ports (removed at the end).
 *
 *   npm run bench:scale [-- --machines 1000 --units 10000 --per-process 100 --engines 3 --vanish 100 --ttl 10 --engine-cpu-prof DIR]
 *
 * Units (each a template instance, no [Install]): 5 global units, and the
 * rest split in four: Conflicts groups (instances of one template conflict
 * with each other), MachineMetadata (zone=zN, machines spread over 10
 * zones), MachineOf pairs (app@i and its side@i) and plain units. All are
 * started with one `fleetx start --no-block` (in-process). Measured:
 * - time until every unit is placed (schedule keys) and reported launched
 *   (a state record active on every machine it is placed on: a global unit
 *   on each machine), from just before that CLI call;
 * - etcd requests per unit (unary gRPC calls started, etcd's /metrics);
 * - the idle etcd request rate once everything runs (unary calls, and
 *   stream messages: keepalives and watch requests);
 * - memory per hollow host (RSS and heap of the host processes over their
 *   baseline before any host started, divided by the hosts);
 * - `fleetx list-units` at this size, as a whole process;
 * - rescheduling after --vanish machines vanish (one host process SIGKILLed:
 *   their leases lapse after the TTL): until each non-global unit they ran
 *   is active elsewhere.
 * Only --engines hosts run the engine (the others `--no-engine`), in a
 * process of their own (an engine on a real machine shares its process with
 * one agent, not with a hundred hollow ones): every
 * engine holds a lease and a watch, so a large cluster elects among a few.
 * Last line: `launched U units on M machines in T s (R units/s)`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { connect } from '../src/registry/client.js';
import { keyspace } from '../src/registry/keys.js';
import { PrefixWatch } from '../src/registry/watch.js';
import { startEtcd } from '../test/helpers/etcd.js';
import { BIN, fleetx } from '../test/helpers/cli.js';
import { byMethodText, diff, diskText, metrics, sum, unaryByMethod } from './etcd-metrics.js';
import type { EnginePass, FromHosts, HollowHostSpec, ToHosts } from './scale-hosts.js';
import { etcdPid, procCpuMs, summarize, timedProcess } from './timing.js';

const { values } = parseArgs({
  options: {
    machines: { type: 'string', default: '1000' },
    units: { type: 'string', default: '10000' },
    'per-process': { type: 'string', default: '100' },
    engines: { type: 'string', default: '3' },
    vanish: { type: 'string', default: '100' },
    ttl: { type: 'string', default: '10' },
    idle: { type: 'string', default: '10' },
    'engine-cpu-prof': { type: 'string' },
  },
});
const MACHINES = Number(values.machines);
const UNITS = Number(values.units);
const PER_PROCESS = Number(values['per-process']);
const ENGINES = Math.min(Number(values.engines), MACHINES);
const VANISH = Number(values.vanish);
const TTL = Number(values.ttl);
const IDLE_MS = Number(values.idle) * 1000;
/** a directory: the engine hosts' process writes a V8 CPU profile there when it exits */
const PROFILE = values['engine-cpu-prof'];
const GLOBALS = 5;
const ZONES = 10;
// instances per Conflicts group (at most one per machine): small enough to fit after machines vanish
const GROUP = Math.max(1, Math.min(50, MACHINES - VANISH));
const PREFIX = '/scale';
const CHECK_MS = 50;
const WORKER = fileURLToPath(new URL('./scale-hosts.ts', import.meta.url));

const log = (line: string) => console.log(`[${((performance.now() - T0) / 1000).toFixed(1)} s] ${line}`);
const T0 = performance.now();
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

/** Unit files and instance names: the mix described above. */
function workload(units: number): { files: Map<string, string>; names: string[]; global: Set<string> } {
  const files = new Map<string, string>();
  const names: string[] = [];
  const global = new Set<string>();
  const unit = (desc: string, xfleet: string[]) => ['[Unit]', `Description=${desc}`, '[Service]', 'ExecStart=/bin/true', ...(xfleet.length ? ['[X-Fleet]', ...xfleet] : []), ''].join('\n');
  for (let g = 1; g <= GLOBALS; g++) {
    files.set(`global${g}.service`, unit('global', ['Global=true']));
    names.push(`global${g}.service`);
    global.add(`global${g}.service`);
  }
  const rest = units - GLOBALS;
  const quarter = Math.floor(rest / 4);
  for (let i = 0; i < quarter; i++) {
    const group = Math.floor(i / GROUP);
    files.set(`cg${group}@.service`, unit('conflicts group', [`Conflicts=cg${group}@*.service`]));
    names.push(`cg${group}@${i}.service`);
  }
  for (let z = 0; z < ZONES; z++) files.set(`zone${z}@.service`, unit('zoned', [`MachineMetadata=zone=z${z}`]));
  for (let i = 0; i < quarter; i++) names.push(`zone${i % ZONES}@${i}.service`);
  files.set('app@.service', unit('app', []));
  files.set('side@.service', unit('sidecar', ['MachineOf=app@%i.service']));
  for (let i = 0; i < Math.floor(quarter / 2); i++) names.push(`app@${i}.service`, `side@${i}.service`);
  files.set('plain@.service', unit('plain', []));
  for (let i = 0; names.length < units; i++) names.push(`plain@${i}.service`);
  return { files, names, global };
}

class HostProcess {
  readonly child: ChildProcess;
  private readonly waiting: Array<(m: FromHosts) => void> = [];
  exited = false;

  constructor(readonly hosts: HollowHostSpec[]) {
    this.child = fork(WORKER, [], { execArgv: ['--import', 'tsx', '--expose-gc', ...(PROFILE && hosts.some((h) => h.engine) ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: FromHosts) => {
      if (m.type === 'failed') console.error(`hollow host failed: ${m.error}`);
      else this.waiting.shift()?.(m);
    });
    this.child.on('exit', () => (this.exited = true));
  }

  ask(msg: ToHosts): Promise<FromHosts> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child.send(msg);
    });
  }
}

/** Live view of a prefix: key -> value; `changed` hears of every key that changed (undefined: deleted). */
function mirror(client: Etcd3, prefix: string, changed: (key: string, value: string | undefined) => void): { kv: Map<string, string>; watch: PrefixWatch } {
  const kv = new Map<string, string>();
  const watch = new PrefixWatch(client, { prefix }, {
    replace: (all) => {
      const old = [...kv.keys()];
      kv.clear();
      for (const e of all) kv.set(e.key, e.value);
      for (const k of old) if (!kv.has(k)) changed(k, undefined);
      for (const e of all) changed(e.key, e.value);
    },
    event: (e) => {
      if (e.type === 'put') kv.set(e.key, e.value);
      else kv.delete(e.key);
      changed(e.key, e.type === 'put' ? e.value : undefined);
    },
    problem: () => undefined,
  });
  return { kv, watch };
}

/**
 * Where units are active and how many of those placements are scheduled,
 * kept event by event. The bench shares the 2 cores with the cluster it
 * measures: rescanning 15,000 records every 50 ms cost it ~3 s of CPU
 * during a 10 s launch, taken from the cluster.
 */
class Launched {
  /** unit -> machines where its state record is active */
  private readonly activeOn = new Map<string, Set<string>>();
  private readonly placed = new Set<string>();
  /** active state records on a machine the unit is scheduled on */
  count = 0;

  state(machine: string, unit: string, active: boolean): void {
    const on = this.activeOn.get(unit) ?? new Set<string>();
    if (on.has(machine) === active) return;
    if (active) on.add(machine);
    else on.delete(machine);
    this.activeOn.set(unit, on);
    if (this.placed.has(`${machine}/${unit}`)) this.count += active ? 1 : -1;
  }

  schedule(machine: string, unit: string, present: boolean): void {
    const k = `${machine}/${unit}`;
    if (this.placed.has(k) === present) return;
    if (present) this.placed.add(k);
    else this.placed.delete(k);
    if (this.activeOn.get(unit)?.has(machine)) this.count += present ? 1 : -1;
  }

  machinesActive(unit: string): ReadonlySet<string> {
    return this.activeOn.get(unit) ?? new Set();
  }
}

function until(cond: () => boolean, kick: { fn?: () => void }, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (cond()) return resolve();
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    kick.fn = () => {
      try {
        if (!cond()) return;
      } catch (e) {
        kick.fn = undefined;
        clearTimeout(timer);
        return reject(e);
      }
      kick.fn = undefined;
      clearTimeout(timer);
      resolve();
    };
  });
}

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const endpoint = etcd.endpoints[0]!;
  const scratch = await mkdtemp(join(tmpdir(), 'fleetx-bench-scale-'));
  const keys = keyspace(PREFIX);
  const client = connect({ endpoints: [endpoint], prefix: PREFIX, requestTimeoutMs: 10_000 });
  const procs: HostProcess[] = [];
  const kick: { fn?: () => void } = {};
  // The conditions scan whole mirrors (15,000 records at full size): checked at most every
  // CHECK_MS after a change, not on each of the ~40,000 events, which made this process
  // compete with the cluster for the CPU. Figures are then up to CHECK_MS late.
  let changed = false;
  const checks = setInterval(() => {
    if (!changed) return;
    changed = false;
    kick.fn?.();
  }, CHECK_MS);
  const launched = new Launched();
  const split = (prefix: string, key: string) => key.slice(prefix.length).split('/') as [string, string];
  const states = mirror(client, keys.states(), (k, v) => {
    launched.state(...split(keys.states(), k), v?.includes('"activeState":"active"') === true);
    changed = true;
  });
  const schedules = mirror(client, keys.schedules(), (k, v) => {
    launched.schedule(...split(keys.schedules(), k), v !== undefined);
    changed = true;
  });
  const machines = mirror(client, keys.machines(), () => (changed = true));
  try {
    log(`etcd at ${endpoint}; ${MACHINES} hollow machines: ${MACHINES - ENGINES} in processes of ${PER_PROCESS}, the ${ENGINES} that run the engine in a process of their own; load average ${load()}`);
    await Promise.all([states.watch.start(), schedules.watch.start(), machines.watch.start()]);

    // hosts: the engines run on the last machines, in a process of their own (as on real machines,
    // where an engine shares its process with one agent, not a hundred; never the one that vanishes)
    const specs: HollowHostSpec[] = Array.from({ length: MACHINES }, (_, i) => ({
      id: `hollow${String(i).padStart(5, '0')}`,
      metadata: { zone: `z${i % ZONES}` },
      engine: i >= MACHINES - ENGINES,
    }));
    const agentsOnly = specs.filter((h) => !h.engine);
    for (let i = 0; i < agentsOnly.length; i += PER_PROCESS) procs.push(new HostProcess(agentsOnly.slice(i, i + PER_PROCESS)));
    if (ENGINES > 0) procs.push(new HostProcess(specs.filter((h) => h.engine)));
    const mUp = await metrics(endpoint);
    const tUp = performance.now();
    const started = await Promise.all(procs.map((p) => p.ask({ type: 'start', hosts: p.hosts, endpoint, prefix: PREFIX, ttlSec: TTL })));
    await until(() => machines.kv.size === MACHINES, kick, 1_800_000, `${MACHINES} machine records`);
    log(`${MACHINES} machines registered in ${((performance.now() - tUp) / 1000).toFixed(1)} s; etcd: ${diskText(diff(mUp, await metrics(endpoint)))}`);

    const enginesProc = ENGINES > 0 ? procs[procs.length - 1]! : undefined;
    const etcdProc = await etcdPid(`--listen-client-urls=${endpoint}`);
    const cpuNow = async () => ({
      etcd: etcdProc === undefined ? NaN : await procCpuMs(etcdProc),
      agents: sumOf(await Promise.all(procs.filter((p) => p !== enginesProc).map((p) => procCpuMs(p.child.pid!)))),
      engines: enginesProc === undefined ? 0 : await procCpuMs(enginesProc.child.pid!),
      self: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    });
    const cpuText = (a: Cpu, b: Cpu) => {
      const d = (k: keyof Cpu) => ((b[k] - a[k]) / 1000).toFixed(1);
      return `etcd ${d('etcd')} s, hollow agents' processes ${d('agents')} s, engine hosts' process ${d('engines')} s, this process ${d('self')} s`;
    };

    // idle before any unit: the cluster's own background
    const idle0 = await idleWindow(endpoint, 'idle, no units', cpuNow, cpuText);

    const { files, names, global } = workload(UNITS);
    for (const [f, text] of files) await writeFile(join(scratch, f), text);
    const expectedInstances = names.length - global.size + global.size * MACHINES;
    // launched: active on a machine it is placed on (a state left on a machine it moved from does not count)
    const activeCount = () => launched.count;
    const env = { FLEETX_ENDPOINT: endpoint, FLEETX_ETCD_KEY_PREFIX: PREFIX, FLEETX_REQUEST_TIMEOUT: '60' };
    const cpu0 = await enginesProc?.ask({ type: 'passes' });
    const c0 = await cpuNow();
    const m0 = await metrics(endpoint);
    const t0 = performance.now();
    const wall0 = Date.now();
    let placedAt = 0;
    let cliMs = 0;
    let cliFailed: Error | undefined;
    const res = fleetx(['start', '--no-block', ...names], env, scratch).then((r) => {
      cliMs = performance.now() - t0;
      if (r.code !== 0) cliFailed = new Error(`fleetx start exited ${r.code}: ${r.stderr.slice(-2000)}`);
      kick.fn?.();
    });
    await until(
      () => {
        if (cliFailed) throw cliFailed;
        if (placedAt === 0 && schedules.kv.size >= expectedInstances) placedAt = performance.now();
        return activeCount() >= expectedInstances;
      },
      kick,
      1_800_000,
      `${expectedInstances} active state records`,
    );
    const launchS = (performance.now() - t0) / 1000;
    const c1 = await cpuNow();
    await res;
    log(`fleetx start --no-block of ${names.length} units: CLI ${cliMs.toFixed(0)} ms; every unit placed after ${((placedAt - t0) / 1000).toFixed(1)} s, launched (active on its machines: ${expectedInstances} state records) after ${launchS.toFixed(1)} s`);
    if (enginesProc !== undefined) {
      const reply = await enginesProc.ask({ type: 'passes' });
      const ps = reply.type === 'passes' ? reply.passes.filter((p) => p.time >= wall0) : [];
      const cpu = reply.type === 'passes' && cpu0?.type === 'passes' ? (reply.cpuMs - cpu0.cpuMs).toFixed(0) : '?';
      const total = (f: (p: EnginePass) => number) => ps.reduce((n, p) => n + f(p), 0).toFixed(0);
      log(`engine: ${ps.length} passes wrote ${total((p) => p.ops)} operations (views: ${[...new Set(ps.map((p) => p.view))].join(', ') || 'none'}); summed over them: view ${total((p) => p.phases?.view ?? 0)} ms, bodies ${total((p) => p.phases?.bodies ?? 0)} ms, plan ${total((p) => p.phases?.plan ?? 0)} ms, write ${total((p) => p.phases?.write ?? 0)} ms; longest pass ${Math.max(0, ...ps.map((p) => p.durationMs))} ms; CPU of the engine hosts' process ${cpu} ms`);
      // each pass on the launch's clock (time is when it ended), to see what overlapped the CLI
      const at = (ms: number) => ((ms - wall0) / 1000).toFixed(1);
      log(`engine passes (start-end s after the CLI was spawned: operations, plan/write ms): ${ps.map((p) => `${at(p.time - p.durationMs)}-${at(p.time)}: ${p.ops}, ${p.phases?.plan ?? '?'}/${p.phases?.write ?? '?'}`).join('; ')}`);
    }
    // where the 2 cores went during the launch: is anything left idle?
    log(`CPU during the launch (${launchS.toFixed(1)} s, cores ${cpus().length}; this process runs the CLI and the watches): ${cpuText(c0, c1)}`);
    await sleep(2000); // trailing state writes count
    const launchDiff = diff(m0, await metrics(endpoint));
    const unary = unaryByMethod(launchDiff);
    log(`etcd requests per unit: ${(sum(unary) / names.length).toFixed(2)} (${sum(unary)} unary: ${byMethodText(unary)})`);
    log(`etcd disk and raft from the start to 2 s after the last unit: ${diskText(launchDiff)}`);

    // idle with everything running
    await idleWindow(endpoint, `idle, ${names.length} units running`, cpuNow, cpuText, idle0);

    // memory per hollow host
    const mem = (await Promise.all(procs.map((p) => p.ask({ type: 'memory' })))).filter((m) => m.type === 'memory');
    const hosts = mem.reduce((n, m) => n + m.hosts, 0);
    const rss = mem.reduce((n, m) => n + m.rssMb - m.baselineRssMb, 0);
    const heap = mem.reduce((n, m) => n + m.heapMb - m.baselineHeapMb, 0);
    const warnings = mem.reduce((n, m) => n + m.warnings, 0);
    log(`memory per hollow host: RSS ${((rss / hosts) * 1024).toFixed(0)} KB, heap ${((heap / hosts) * 1024).toFixed(0)} KB (${procs.length} processes, RSS ${mem.map((m) => m.rssMb.toFixed(0)).join('/')} MB, baseline ${started.map((s) => (s.type === 'started' ? s.baselineRssMb.toFixed(0) : '?'))[0]} MB each); ${warnings} warning log lines`);

    // list-units at this size, as a whole process
    const lu = [];
    for (let i = 0; i < 3; i++) lu.push(await timedProcess([process.execPath, BIN, 'list-units'], { PATH: process.env.PATH, ...env }, scratch, scratch));
    const luWall = summarize(lu.map((r) => r.wallMs));
    log(`fleetx list-units with ${names.length} units (${expectedInstances} rows): wall min ${luWall.min.toFixed(0)} / median ${luWall.median.toFixed(0)} ms, CPU median ${summarize(lu.map((r) => r.cpuMs)).median.toFixed(0)} ms, RSS ${summarize(lu.map((r) => r.rssMb)).median.toFixed(0)} MB (target ≤ 1000 ms)`);

    // machines vanish: the first host process is killed
    if (VANISH > 0 && procs.length > 1) {
      const gone = procs[0]!;
      const goneIds = new Set(gone.hosts.map((h) => h.id));
      const moving = new Set<string>();
      for (const k of states.kv.keys()) {
        const [machine, unit] = split(keys.states(), k);
        if (goneIds.has(machine) && !global.has(unit) && launched.machinesActive(unit).has(machine)) moving.add(unit);
      }
      const activeElsewhere = () => [...moving].every((u) => [...launched.machinesActive(u)].some((m) => !goneIds.has(m)));
      const t1 = performance.now();
      gone.child.kill('SIGKILL');
      let lapsedAt = 0;
      await until(() => {
        if (lapsedAt === 0 && [...goneIds].every((id) => !machines.kv.has(keys.machine(id)))) lapsedAt = performance.now();
        return lapsedAt > 0 && activeElsewhere();
      }, kick, 600_000, `${moving.size} units active elsewhere`);
      const t2 = performance.now();
      log(`${goneIds.size} machines vanished (SIGKILL, TTL ${TTL} s): their leases lapsed after ${((lapsedAt - t1) / 1000).toFixed(1)} s; their ${moving.size} units active elsewhere ${((t2 - t1) / 1000).toFixed(1)} s after the kill, ${((t2 - lapsedAt) / 1000).toFixed(1)} s after the last lease lapsed`);
    }
    log(`load average ${load()}`);
    console.log(`launched ${names.length} units on ${MACHINES} machines in ${launchS.toFixed(1)} s (${(names.length / launchS).toFixed(0)} units/s)`);
  } finally {
    clearInterval(checks);
    await Promise.all(procs.filter((p) => !p.exited).map((p) => new Promise<void>((resolve) => {
      p.child.once('exit', () => resolve());
      p.child.send({ type: 'stop' } satisfies ToHosts);
      setTimeout(() => p.child.kill('SIGKILL'), 15_000).unref();
    })));
    await Promise.allSettled([states.watch.stop(), schedules.watch.stop(), machines.watch.stop()]);
    client.close();
    await etcd.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

interface Cpu {
  etcd: number;
  agents: number;
  engines: number;
  self: number;
}

/** Unary requests, stream messages and CPU of every process over IDLE_MS. */
async function idleWindow(endpoint: string, label: string, cpuNow: () => Promise<Cpu>, cpuText: (a: Cpu, b: Cpu) => string, compare?: { perS: number }): Promise<{ perS: number }> {
  const c = await cpuNow();
  const a = await metrics(endpoint);
  const t = performance.now();
  await sleep(IDLE_MS);
  const d = diff(a, await metrics(endpoint));
  const s = (performance.now() - t) / 1000;
  const cpu = cpuText(c, await cpuNow());
  const unary = unaryByMethod(d);
  let streamMsgs = 0;
  for (const [k, v] of d) if (k.startsWith('grpc_server_msg_received_total') && k.includes('stream')) streamMsgs += v;
  const perS = sum(unary) / s;
  log(`${label}: ${sum(unary)} unary requests in ${s.toFixed(1)} s (${perS.toFixed(2)}/s${unary.size ? `: ${byMethodText(unary)}` : ''}), ${(streamMsgs / s).toFixed(0)} stream messages/s (keepalives, watches)${compare ? `; before the units ${compare.perS.toFixed(2)}/s` : ''}; CPU: ${cpu}`);
  return { perS };
}

const sumOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await main();
