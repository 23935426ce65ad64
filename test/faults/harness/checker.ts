/**
 * The invariant checker: samples the cluster every ~150 ms while a cell
 * runs, from outside fleetx (observe.ts), and records every violation with
 * its time and evidence. The invariants (docs/RELIABILITY.md):
 *
 *   conflict  never two instances of a self-conflicting service with
 *             processes on one host;
 *   lost      no instance leaves the desired state (etcd's unit records)
 *             unless the cell allows it, and no desired instance stays
 *             without a process anywhere longer than `lostGraceMs`;
 *   held      no instance held out of the load balancer (a presence-hold
 *             key, or a slot in forced maintenance/drain) longer than
 *             `heldGraceMs` while no rollout of its service runs;
 *   orphan    no unit with processes on a host whose schedule in etcd does
 *             not name it, for longer than `orphanGraceMs` (the agent's
 *             pass and the lease TTL make short ones normal);
 *   double    no instance scheduled on two machines at once (etcd), nor
 *             with processes on two hosts for longer than `orphanGraceMs`
 *             (a host back from a partition stops its stale copy);
 *   requests  no request fails while HAProxy has a backend that serves
 *             (checked in cell.ts against the load generator's failures).
 *
 * A cell that cuts a host off on purpose `excuse`s it: while cut off it
 * keeps its units running by design, and the checker cannot (or must not)
 * judge its orphans.
 */
import { heldOut, RawEtcd, serversState, serving, SystemdEyes, type ObservedHost, type ServerState } from './observe.js';

export interface WatchedService {
  /** service name (etcd keys), e.g. web */
  name: string;
  /** template, e.g. web@.service: its instances are web@N.service */
  template: string;
  /** Conflicts=%p@*.service: at most one instance per host */
  conflicts: boolean;
  /** HAProxy backend, when the service is behind the LB */
  backend?: string;
}

export interface CheckerOptions {
  etcdEndpoints: string[];
  prefix?: string;
  haproxySocket?: string;
  services: WatchedService[];
  /** running hosts now (a powered-off host drops out, a rebooted one comes back) */
  hosts: () => ObservedHost[];
  intervalMs?: number;
  lostGraceMs?: number;
  orphanGraceMs?: number;
  heldGraceMs?: number;
  /** how long one instance may be named by two machines' schedules (the engine moves it in one transaction: 0 would do; a sample reads keys in one range) */
  doubleScheduleGraceMs?: number;
}

export interface Violation {
  at: string;
  invariant: 'conflict' | 'lost' | 'held' | 'orphan' | 'double' | 'requests';
  what: string;
  evidence: unknown;
}

/** One sample: what each source said at `at` (ms epoch). */
export interface Sample {
  at: number;
  /** host name -> units with processes (hosts that could not be read are absent) */
  hosts: Record<string, string[]>;
  /** service -> HAProxy slots (absent when HAProxy did not answer) */
  lb: Record<string, ServerState[]>;
  /** service -> instance units in etcd's desired state, any target state (absent when etcd did not answer) */
  desired?: Record<string, string[]>;
  /** service -> those of them whose target state is launched */
  launched?: Record<string, string[]>;
  /** machine id -> unit names its schedule names */
  schedules?: Record<string, Set<string>>;
  /** services with a running rollout */
  rollouts?: Set<string>;
  /** service -> units held out by a rollout (presence-hold keys) */
  holds?: Record<string, string[]>;
  /** units some agent reports healthy */
  healthy?: Set<string>;
}

const iso = (ms: number) => new Date(ms).toISOString();
const instanceRe = (template: string) => new RegExp(`^${template.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('@', '@[^.]+')}$`);

export class InvariantChecker {
  readonly violations: Violation[] = [];
  samples = 0;
  maxGapMs = 0;
  last?: Sample;
  private readonly etcd: RawEtcd;
  private readonly systemd = new SystemdEyes();
  private readonly excused = new Map<string, string>();
  private readonly allowedGone = new Set<string>();
  private readonly firstSeen = new Map<string, number>(); // condition key -> first time seen
  private readonly reported = new Set<string>(); // condition keys already recorded
  private baseline = new Map<string, Set<string>>(); // service -> desired instances
  private running = false;
  private loop?: Promise<void>;
  /** times (ms) and count of serving slots, per service, for judging failed requests */
  readonly servingTimeline: Array<{ at: number; serving: Record<string, number> }> = [];

  constructor(private readonly o: CheckerOptions) {
    this.etcd = new RawEtcd(o.etcdEndpoints, o.prefix ?? '/fleetx');
  }

  /** Takes the desired instances as the baseline and starts sampling. */
  async start(): Promise<void> {
    const s = await this.sample();
    for (const svc of this.o.services) this.baseline.set(svc.name, new Set(s.desired?.[svc.name] ?? []));
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.etcd.close();
    this.systemd.close();
  }

  /** A host the cell cut off on purpose: its orphans are not judged until `pardon(host)` ends it. */
  excuse(host: string, why: string): void {
    this.excused.set(host, why);
  }

  pardon(host: string): void {
    this.excused.delete(host);
    for (const k of [...this.firstSeen.keys()]) if (k.startsWith(`orphan ${host} `)) this.firstSeen.delete(k);
  }

  /** A unit the cell removes or adds on purpose (a surge instance, a destroyed one). */
  allowGone(unit: string): void {
    this.allowedGone.add(unit);
  }

  /** A new desired set (e.g. after the cell changes the instance count on purpose). */
  rebase(): void {
    const d = this.last?.desired;
    if (d) for (const svc of this.o.services) this.baseline.set(svc.name, new Set(d[svc.name] ?? []));
  }

  /** Conditions seen now that have not lasted their grace yet (a cell's end waits for none). */
  pending(): string[] {
    return [...this.firstSeen.keys()].filter((k) => !this.reported.has(k));
  }

  record(invariant: Violation['invariant'], what: string, evidence: unknown, at = Date.now()): void {
    this.violations.push({ at: iso(at), invariant, what, evidence });
  }

  /** The number of slots that served at `t` (the latest sample at or before it); undefined before the first sample. */
  servingAt(service: string, t: number): number | undefined {
    let found: number | undefined;
    for (const p of this.servingTimeline) {
      if (p.at > t) break;
      found = p.serving[service];
    }
    return found;
  }

  private async run(): Promise<void> {
    const interval = this.o.intervalMs ?? 150;
    let prev = Date.now();
    while (this.running) {
      const t0 = Date.now();
      try {
        this.judge(await this.sample());
      } catch (e) {
        // A sampler bug must not pass silently as "no violation".
        this.record('lost', 'the checker could not judge a sample', String((e as Error).stack ?? e));
      }
      const now = Date.now();
      this.maxGapMs = Math.max(this.maxGapMs, now - prev);
      prev = now;
      this.samples++;
      await new Promise((r) => setTimeout(r, Math.max(0, interval - (Date.now() - t0))));
    }
  }

  /** Reads every source at once. */
  async sample(): Promise<Sample> {
    const at = Date.now();
    const patterns = this.o.services.map((s) => s.template.replace('@', '@*'));
    const hosts = this.o.hosts();
    const [onHosts, units, schedules, rollouts, holds, health, lb] = await Promise.all([
      Promise.all(hosts.map(async (h) => [h.name, await this.systemd.units(h, patterns)] as const)),
      this.etcd.under('unit/'),
      this.etcd.under('schedule/'),
      this.etcd.under('rollout/'),
      this.etcd.under('presence-hold/'),
      this.etcd.under('health/'),
      Promise.all(this.o.services.filter((s) => s.backend && this.o.haproxySocket).map(async (s) =>
        [s.name, await serversState(this.o.haproxySocket!, s.backend!).catch(() => undefined)] as const)),
    ]);
    const s: Sample = { at, hosts: {}, lb: {} };
    for (const [name, list] of onHosts) if (list) s.hosts[name] = list;
    for (const [svc, servers] of lb) if (servers) s.lb[svc] = servers;
    if (units && schedules && rollouts && holds && health) {
      s.healthy = new Set(Object.values(health).filter((v) => (v as { status?: string }).status === 'healthy').map((v) => (v as { unit: string }).unit));
      s.desired = {};
      s.launched = {};
      for (const svc of this.o.services) {
        const re = instanceRe(svc.template);
        const mine = Object.entries(units).filter(([k]) => re.test(k.slice('unit/'.length)));
        s.desired[svc.name] = mine.map(([k]) => k.slice('unit/'.length)).sort();
        s.launched[svc.name] = mine.filter(([, v]) => (v as { targetState?: string }).targetState === 'launched').map(([k]) => k.slice('unit/'.length)).sort();
      }
      s.schedules = {};
      for (const k of Object.keys(schedules)) {
        const [, machine, unit] = k.split('/');
        (s.schedules[machine!] ??= new Set()).add(unit!);
      }
      s.rollouts = new Set(Object.entries(rollouts).filter(([, v]) => ['running', 'paused', 'reverting'].includes((v as { state?: string }).state ?? '')).map(([k]) => k.slice('rollout/'.length)));
      s.holds = {};
      for (const k of Object.keys(holds)) {
        const [, svc, unit] = k.split('/');
        (s.holds[svc!] ??= []).push(unit!);
      }
    }
    const servingNow: Record<string, number> = {};
    for (const [svc, servers] of Object.entries(s.lb)) servingNow[svc] = servers.filter(serving).length;
    this.servingTimeline.push({ at, serving: servingNow });
    this.last = s;
    return s;
  }

  /** A condition seen now: recorded once it has lasted `graceMs` (0: at once). Returns true while it holds. */
  private lasting(key: string, now: number, graceMs: number, invariant: Violation['invariant'], what: string, evidence: () => unknown): void {
    const first = this.firstSeen.get(key) ?? now;
    this.firstSeen.set(key, first);
    if (now - first >= graceMs && !this.reported.has(key)) {
      this.reported.add(key);
      this.record(invariant, `${what} (for ${now - first} ms)`, evidence(), now);
    }
  }

  private judge(s: Sample): void {
    const seen = new Set<string>();
    const note = (key: string, grace: number, inv: Violation['invariant'], what: string, ev: () => unknown) => {
      seen.add(key);
      this.lasting(key, s.at, grace, inv, what, ev);
    };
    const hostsByMachine = new Map(this.o.hosts().map((h) => [h.name, h.machineId]));

    for (const svc of this.o.services) {
      const re = instanceRe(svc.template);
      // conflict: at once, no grace
      if (svc.conflicts) {
        for (const [host, units] of Object.entries(s.hosts)) {
          const mine = units.filter((u) => re.test(u));
          if (mine.length > 1) note(`conflict ${host} ${mine.join(',')}`, 0, 'conflict', `${mine.join(' and ')} both have processes on ${host}`, () => ({ host, units }));
        }
      }
      if (!s.desired) continue;
      const desired = new Set(s.desired[svc.name] ?? []);
      // lost: a baseline instance gone from the desired state
      for (const u of this.baseline.get(svc.name) ?? []) {
        if (!desired.has(u) && !this.allowedGone.has(u)) note(`gone ${u}`, 0, 'lost', `${u} left the desired state`, () => ({ desired: [...desired] }));
      }
      // lost: desired but running nowhere for too long
      const running = new Set(Object.values(s.hosts).flat());
      for (const u of s.launched?.[svc.name] ?? []) {
        if (!running.has(u)) note(`nowhere ${u}`, this.o.lostGraceMs ?? 30_000, 'lost', `${u} is desired but has no process on any host`, () => ({ hosts: s.hosts }));
      }
      // held: out of the LB while no rollout of the service runs
      if (!s.rollouts?.has(svc.name)) {
        for (const u of s.holds?.[svc.name] ?? []) {
          note(`hold ${u}`, this.o.heldGraceMs ?? 10_000, 'held', `${u} is held out of the load balancer (presence-hold) with no rollout running`, () => ({ holds: s.holds }));
        }
        for (const srv of s.lb[svc.name] ?? []) {
          const unit = [...desired].find((u) => slotOf(u) === srv.name);
          if (unit && heldOut(srv) && running.has(unit) && s.healthy?.has(unit)) {
            note(`maint ${srv.name}`, this.o.heldGraceMs ?? 10_000, 'held', `${unit} runs and is healthy but its HAProxy slot ${srv.name} is in maintenance/drain (admin state ${srv.adminState}) with no rollout running`, () => srv);
          }
        }
      }
    }
    // orphan: a unit with processes on a host whose schedule does not name it
    if (s.schedules) {
      for (const [host, units] of Object.entries(s.hosts)) {
        if (this.excused.has(host)) continue;
        const machine = hostsByMachine.get(host);
        const named = (machine && s.schedules[machine]) || new Set<string>();
        for (const u of units) {
          if (!named.has(u)) note(`orphan ${host} ${u}`, this.o.orphanGraceMs ?? 20_000, 'orphan', `${u} has processes on ${host}, whose schedule does not name it`, () => ({ host, units, schedule: [...named] }));
        }
      }
    }
    // double: one instance on two machines (scheduled twice in etcd, or processes on two hosts not excused)
    for (const svc of this.o.services) {
      const re = instanceRe(svc.template);
      if (s.schedules) {
        const where = new Map<string, string[]>();
        for (const [machine, units] of Object.entries(s.schedules)) for (const u of units) if (re.test(u)) where.set(u, [...(where.get(u) ?? []), machine]);
        for (const [u, machines] of where) {
          if (machines.length > 1) note(`scheduled-twice ${u}`, this.o.doubleScheduleGraceMs ?? 2_000, 'double', `${u} is scheduled on ${machines.length} machines`, () => ({ machines }));
        }
      }
      const on = new Map<string, string[]>();
      for (const [host, units] of Object.entries(s.hosts)) {
        if (this.excused.has(host)) continue;
        for (const u of units) if (re.test(u)) on.set(u, [...(on.get(u) ?? []), host]);
      }
      for (const [u, hosts] of on) {
        if (hosts.length > 1) note(`twice ${u}`, this.o.orphanGraceMs ?? 20_000, 'double', `${u} has processes on ${hosts.join(' and ')}`, () => ({ hosts }));
      }
    }
    // conditions that ended start their grace anew next time
    for (const k of [...this.firstSeen.keys()]) if (!seen.has(k)) this.firstSeen.delete(k);
  }
}

/** web@2.service -> web-2 (the presence driver's slot names, src/demo/haproxy-config.ts). */
export function slotOf(unit: string): string {
  return unit.replace(/\.service$/, '').replace('@', '-');
}
