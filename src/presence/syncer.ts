/**
 * The presence syncer of one service (`fleetx presence --service app`):
 * mirrors the service record, health records of its instances, its holds
 * and the machines (watches, see mirror.ts); on any change (coalesced) it
 * decides (decide.ts), lets the driver act, and reports what the driver saw
 * as presence-status records under its own lease (reporter.ts).
 *
 * Passes run in a PassLoop (registry/pass-loop.ts). While anything is not
 * where it should be (draining, waiting for HAProxy's checks) it passes
 * again every tickMs (after an error: a backoff with jitter from retryMs), so session counts are re-read and failures retried without any
 * etcd change; when settled, every pollMs, to notice what the LB changed
 * by itself (failed checks, a restart that reset its runtime state). While
 * the driver fails as a whole (LB unreachable) the statuses are withdrawn:
 * what the LB does is unknown, and rollouts must wait rather than guess. A change of the service's presence config or template
 * rebuilds the driver.
 *
 * State: idle -> running -> stopping -> stopped. stop() waits for the
 * running pass, closes the driver and revokes the lease (statuses vanish,
 * rollouts wait). Nothing in here throws after start(); problems are
 * emitted as 'problem' events and retried.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import type { HealthRecord } from '../health/types.js';
import { toFleetxError, type ErrorContext } from '../registry/errors.js';
import type { Keyspace } from '../registry/keys.js';
import type { MachineRecord } from '../registry/records.js';
import { PassLoop, type PassOutcome } from '../registry/pass-loop.js';
import type { PresenceConfig, ServiceRecord } from '../service/types.js';
import { decide, everyRecordVanished, type DecideInput } from './decide.js';
import { createDriver, type DriverContext } from './drivers/index.js';
import { isInstanceOf } from '../unit/name.js';
import { PrefixMirror } from './mirror.js';
import { StatusReporter } from './reporter.js';
import type { Desired, Observed, PresenceDriver, PresenceHold, PresenceStatusRecord } from './types.js';

export type SyncerState = 'idle' | 'running' | 'stopping' | 'stopped';

export interface PassResult {
  desired: Desired[];
  observed: Observed[];
  written: PresenceStatusRecord[];
  settled: boolean;
}

export interface SyncerEvents {
  state: [SyncerState];
  pass: [PassResult];
  problem: [string, unknown];
}

export interface SyncerOptions {
  client: Etcd3;
  keys: Keyspace;
  service: string;
  connection: ErrorContext;
  /** TTL of the lease the statuses live under (default 10 s) */
  leaseTtlSec?: number;
  /** events within this window make one pass (default 20 ms) */
  coalesceMs?: number;
  /** re-pass interval while not settled (default 100 ms): a rollout waits on it when an instance drains or rejoins */
  tickMs?: number;
  /** first re-pass delay after an error (default 2000 ms); grows with jitter up to 4 × while errors go on */
  retryMs?: number;
  /**
   * re-pass interval when settled (default 2000 ms): the LB changes on its
   * own too (HAProxy's checks mark a server DOWN, a restart resets the
   * runtime state to the config's disabled slots)
   */
  pollMs?: number;
  now?: () => Date;
  /** builds the driver (default: drivers/index.ts) */
  createDriver?: (cfg: PresenceConfig, ctx: DriverContext) => PresenceDriver | undefined;
}

export class PresenceSyncer extends EventEmitter<SyncerEvents> {
  private _state: SyncerState = 'idle';
  private readonly serviceMirror: PrefixMirror<ServiceRecord>;
  private readonly healthMirror: PrefixMirror<HealthRecord>;
  private readonly holdMirror: PrefixMirror<PresenceHold>;
  private readonly machineMirror: PrefixMirror<MachineRecord>;
  private readonly reporter: StatusReporter;
  private template?: string;
  private driver?: PresenceDriver;
  private driverKey?: string;
  private observed: Observed[] = [];
  /** since when every record of the instances in the LB is gone (everyRecordVanished) */
  private vanishedSince?: number;
  /** the last decision applied, when, and whether the LB matched it */
  private last?: { key: string; at: number; settled: boolean };
  private lastProblem?: string;
  private readonly loop: PassLoop;
  private readonly o: Required<Omit<SyncerOptions, 'createDriver'>> & Pick<SyncerOptions, 'createDriver'>;

  constructor(opts: SyncerOptions) {
    super();
    this.o = { leaseTtlSec: 10, coalesceMs: 20, tickMs: 100, retryMs: 2000, pollMs: 2000, now: () => new Date(), ...opts };
    const { client, keys, service } = this.o;
    this.loop = new PassLoop(() => this.pass(), {
      debounceMs: this.o.coalesceMs,
      backoff: { initialMs: this.o.retryMs, maxMs: 4 * this.o.retryMs },
      problem: (e) => this.emit('problem', 'presence pass failed; retrying', e),
    });
    const changed = () => this.loop.kick('change');
    const problem = (msg: string, e: unknown) => this.emit('problem', msg, e instanceof Error ? toFleetxError(e, this.o.connection) : e);
    const json = <T>(v: string) => JSON.parse(v) as T;
    const serviceKey = keys.service(service);
    this.serviceMirror = new PrefixMirror(client, { key: serviceKey }, (_k, v) => json<ServiceRecord>(v), changed, problem);
    this.healthMirror = new PrefixMirror(
      client,
      { prefix: keys.healths() },
      (_k, v) => {
        const h = json<HealthRecord>(v);
        return this.template && isInstanceOf(this.template, h.unit) ? h : undefined;
      },
      changed,
      problem,
    );
    this.holdMirror = new PrefixMirror(client, { prefix: keys.presenceHolds(service) }, (_k, v) => json<PresenceHold>(v), changed, problem);
    this.machineMirror = new PrefixMirror(client, { prefix: keys.machines() }, (_k, v) => json<MachineRecord>(v), changed, problem);
    this.reporter = new StatusReporter({
      client,
      keys,
      service,
      ttlSec: this.o.leaseTtlSec,
      connection: this.o.connection,
      now: this.o.now,
      onLost: (err) => {
        this.emit('problem', 'status lease lost; writing statuses under a new lease', err);
        this.schedule(0);
      },
    });
  }

  get state(): SyncerState {
    return this._state;
  }

  /** Starts the mirrors and the loop; resolves once the first listing was tried. */
  async start(): Promise<void> {
    if (this._state !== 'idle') return;
    this.setState('running');
    // the service first: the health filter needs its template
    await this.serviceMirror.start();
    this.template = this.serviceMirror.values()[0]?.template;
    await Promise.all([this.healthMirror.start(), this.holdMirror.start(), this.machineMirror.start()]);
    this.schedule(0);
  }

  /** Stops the loop (waiting for a running pass), the watches and the driver; revokes the lease. */
  async stop(): Promise<void> {
    if (this._state === 'stopped' || this._state === 'stopping') return;
    this.setState('stopping');
    await this.loop.stop();
    await Promise.all([this.serviceMirror, this.healthMirror, this.holdMirror, this.machineMirror].map((m) => m.stop()));
    await this.driver?.close();
    await this.reporter.close();
    this.setState('stopped');
  }

  /** One pass: 'retry' when the driver or the status writes failed (the loop backs off). */
  private async pass(): Promise<PassOutcome> {
    const svc = this.serviceMirror.values()[0];
    if (!svc) {
      this.problemOnce(`service ${this.o.service} not found; waiting for it to be deployed`);
      return 'ok';
    }
    if (svc.template !== this.template) {
      this.template = svc.template;
      this.healthMirror.refilter();
    }
    if (!this.healthMirror.ready || !this.holdMirror.ready || !this.machineMirror.ready) return 'ok'; // a mirror retries and wakes us
    const driver = await this.ensureDriver(svc);
    if (!driver) {
      // not load-balanced (driver none, or a config we cannot use): no statuses
      await this.reporter.report([]).catch(() => undefined);
      return 'ok';
    }
    const port = svc.presence.port;
    if (port === undefined) {
      this.problemOnce(`service ${svc.name}: presence.port is not set`);
      return 'ok';
    }

    const input: DecideInput = {
      template: svc.template,
      port,
      health: this.healthMirror.values(),
      holds: this.holdMirror.values(),
      machines: this.machineMirror.values(),
      observed: this.observed,
    };
    let desired = decide(input);
    // Every record gone at once: kept in for up to 2 x TTL (etcd3 reports a
    // lost lease at the latest then, and the agents re-register at once).
    if (everyRecordVanished(desired, this.observed)) {
      const now = Date.now();
      this.vanishedSince ??= now;
      const left = this.vanishedSince + 2 * this.o.leaseTtlSec * 1000 - now;
      if (left > 0) {
        desired = decide({ ...input, keepVanished: true });
        this.schedule(left);
      }
    } else {
      this.vanishedSince = undefined;
    }
    // A settled LB is asked again only when the decision changed or pollMs
    // passed: health records are rewritten on every check, which must not
    // turn into a runtime API call each time.
    const key = JSON.stringify(desired);
    if (this.last && this.last.settled && this.last.key === key && Date.now() - this.last.at < this.o.pollMs) {
      this.schedule(this.last.at + this.o.pollMs - Date.now());
      return 'ok';
    }
    let observed: Observed[];
    try {
      observed = await driver.apply(desired);
    } catch (e) {
      this.last = undefined;
      this.problemOnce(`presence driver ${driver.kind} failed; retrying`, e);
      // what the LB does is unknown now: withdraw the statuses so rollouts wait
      await this.reporter.report([]).catch(() => undefined);
      return 'retry';
    }
    this.observed = observed;
    let written: PresenceStatusRecord[] = [];
    let unwritten = false;
    try {
      written = await this.reporter.report(observed);
    } catch (e) {
      this.emit('problem', 'cannot write presence statuses; retrying', e);
      unwritten = true;
    }
    const want = new Map(desired.map((d) => [d.unit, d.want]));
    const failed = observed.some((o) => o.error !== undefined);
    const settled = !failed && observed.every((o) => o.state === want.get(o.unit));
    if (!failed && !settled) this.schedule(this.o.tickMs);
    else if (!failed) this.schedule(this.o.pollMs);
    this.last = { key, at: Date.now(), settled };
    this.lastProblem = undefined;
    this.emit('pass', { desired, observed, written, settled });
    return failed || unwritten ? 'retry' : 'ok';
  }

  /** The driver for the current config; rebuilt when the config changes. */
  private async ensureDriver(svc: ServiceRecord): Promise<PresenceDriver | undefined> {
    const key = JSON.stringify([svc.template, svc.presence]);
    if (key === this.driverKey) return this.driver;
    await this.driver?.close();
    this.driver = undefined;
    this.observed = [];
    this.last = undefined;
    this.driverKey = key;
    try {
      const make = this.o.createDriver ?? createDriver;
      this.driver = make(svc.presence, { service: svc.name, template: svc.template, client: this.o.client, connection: this.o.connection });
      if (!this.driver) this.problemOnce(`service ${svc.name} has presence driver "none"; nothing to do`);
    } catch (e) {
      this.problemOnce(`cannot use the presence config of service ${svc.name}`, e);
    }
    return this.driver;
  }

  /** Emits a problem unless it repeats the previous one (an outage logs once, not every retry). */
  private problemOnce(msg: string, err?: unknown): void {
    const id = `${msg}|${err instanceof Error ? err.message : ''}`;
    if (id !== this.lastProblem) this.emit('problem', msg, err);
    this.lastProblem = id;
  }

  /** Asks for a pass in `ms` unless one is already due sooner. */
  private schedule(ms: number): void {
    if (this._state === 'running') this.loop.kick('timer', Math.max(0, ms));
  }

  private setState(s: SyncerState): void {
    this._state = s;
    this.emit('state', s);
  }
}
