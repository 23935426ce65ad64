/**
 * The host daemon's metrics: one prom-client Registry per daemon (never the
 * library's global one, so daemons embedded in one test process do not
 * mix), filled from the typed events its parts already emit, as logs.ts
 * does for the journal. Nothing here changes what the parts do.
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import type { Interceptor } from '@grpc/grpc-js';
import type { Agent } from '../agent/agent.js';
import type { RolloutController } from '../controller/controller.js';
import type { Engine } from '../engine/engine.js';
import type { PresenceSyncer } from '../presence/syncer.js';
import { etcdCallInterceptor } from './etcd.js';
import { FAST_BUCKETS, METRIC, PHASE_BUCKETS } from './names.js';
import { phasesLeft } from './phases.js';

// CommonJS: required, not imported (see registry/libraries.ts for why)
const prom = createRequire(import.meta.url)('prom-client') as typeof PromClient;

type Def = (typeof METRIC)[keyof typeof METRIC];
const spec = <T extends Def>(d: T) => ({ name: d.name, help: d.help, labelNames: [...d.labels] as string[] });

export class HostMetrics {
  readonly registry: PromClient.Registry = new prom.Registry();
  private readonly reg = [this.registry];
  private readonly passes = new prom.Counter({ ...spec(METRIC.passes), registers: this.reg });
  private readonly passSeconds = new prom.Histogram({ ...spec(METRIC.passSeconds), buckets: FAST_BUCKETS, registers: this.reg });
  private readonly tasks = new prom.Counter({ ...spec(METRIC.tasks), registers: this.reg });
  private readonly scheduleWatch = new prom.Gauge({ ...spec(METRIC.scheduleWatch), registers: this.reg });
  private readonly machinePresence = new prom.Counter({ ...spec(METRIC.machinePresence), registers: this.reg });
  private readonly etcdSeconds = new prom.Histogram({ ...spec(METRIC.etcdSeconds), buckets: FAST_BUCKETS, registers: this.reg });
  private readonly etcdErrors = new prom.Counter({ ...spec(METRIC.etcdErrors), registers: this.reg });
  private readonly leader = new prom.Gauge({ ...spec(METRIC.leader), registers: this.reg });
  private readonly controllerPasses = new prom.Counter({ ...spec(METRIC.controllerPasses), registers: this.reg });
  private readonly controllerSeconds = new prom.Histogram({ ...spec(METRIC.controllerSeconds), buckets: FAST_BUCKETS, registers: this.reg });
  private readonly phaseSeconds = new prom.Histogram({ ...spec(METRIC.phaseSeconds), buckets: PHASE_BUCKETS, registers: this.reg });
  private readonly rolloutsFinished = new prom.Counter({ ...spec(METRIC.rolloutsFinished), registers: this.reg });
  private readonly presenceChanges = new prom.Counter({ ...spec(METRIC.presenceChanges), registers: this.reg });
  private unitStates: () => ReadonlyMap<string, number> = () => new Map();

  /** @param processMetrics also the standard process_* and nodejs_* metrics (resident memory, CPU, event loop lag) */
  constructor(o: { processMetrics?: boolean } = {}) {
    const states = () => this.unitStates();
    new prom.Gauge({
      ...spec(METRIC.units),
      registers: this.reg,
      collect() {
        this.reset();
        for (const [state, n] of states()) this.set({ state }, n);
      },
    });
    this.scheduleWatch.set(0);
    this.leader.set(0);
    if (o.processMetrics ?? true) prom.collectDefaultMetrics({ register: this.registry });
  }

  /** For connect(opts, { interceptors }): times every unary etcd call. */
  etcdInterceptor(): Interceptor {
    return etcdCallInterceptor((method, seconds, code) => {
      this.etcdSeconds.observe({ method }, seconds);
      if (code !== undefined) this.etcdErrors.inc({ method, code });
    });
  }

  watchAgent(agent: Agent): void {
    this.unitStates = () => agent.unitStates();
    agent.on('pass', (p) => {
      const outcome = p.skipped ? 'skipped' : p.outcome && p.outcome.failures.length === 0 ? 'ok' : 'failed';
      this.passes.inc({ outcome });
      if (!p.skipped && p.durationMs !== undefined) this.passSeconds.observe(p.durationMs / 1000);
    });
    agent.on('task', (t) => this.tasks.inc({ type: t.type }));
    agent.on('etcd', (live) => this.scheduleWatch.set(live ? 1 : 0));
    agent.on('registered', () => this.machinePresence.inc({ change: 'registered' }));
    agent.on('leaseLost', () => this.machinePresence.inc({ change: 'lease_lost' }));
  }

  watchEngine(engine: Engine): void {
    engine.on('state', (s) => this.leader.set(s === 'leader' ? 1 : 0));
  }

  watchRollouts(rollouts: RolloutController): void {
    rollouts.on('pass', (p) => {
      this.controllerPasses.inc();
      this.controllerSeconds.observe(p.durationMs / 1000);
    });
    rollouts.on('step', (s) => {
      for (const left of phasesLeft(s.previous, s.record)) this.phaseSeconds.observe({ service: s.service, phase: left.phase }, left.seconds);
    });
    rollouts.on('finished', (r) => this.rolloutsFinished.inc({ service: r.service, state: r.state }));
  }

  watchPresence(syncer: PresenceSyncer, service: string): void {
    syncer.on('pass', (p) => {
      for (const r of p.written) this.presenceChanges.inc({ service, state: r.state });
    });
  }
}
