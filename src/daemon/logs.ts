/** What the daemons say in the journal: their typed events as JSON log lines. */
import type { Logger } from 'pino';
import type { Agent } from '../agent/agent.js';
import { describeTask } from '../agent/plan.js';
import type { RolloutController } from '../controller/controller.js';
import type { Engine } from '../engine/engine.js';
import type { PresenceSyncer } from '../presence/syncer.js';

export function logAgent(agent: Agent, log: Logger): void {
  agent.on('state', (state) => log.info({ state }, 'agent state'));
  agent.on('registered', (lease) => log.info({ lease }, 'machine registered'));
  agent.on('leaseLost', (err) => log.warn({ err }, 'lease lost; re-registering'));
  agent.on('etcd', (live) => (live ? log.info('schedule watch connected') : log.warn('schedule watch disconnected; leaving units as they are')));
  agent.on('task', (t) => log.info({ task: t.type, unit: 'unit' in t ? t.unit : undefined, reason: t.reason }, describeTask(t)));
  agent.on('problem', (msg, err) => log.warn({ err }, msg));
  // names only: a value never reaches a log line
  agent.on('secrets', (r) => {
    for (const unit of r.written) log.info({ unit }, `secret env file of ${unit} written; a running unit reads it at its next start`);
    for (const unit of r.removed) log.info({ unit }, `secret env file of ${unit} removed`);
    for (const m of r.missing) log.warn({ unit: m.unit, secrets: m.secrets }, `${m.unit} needs secret(s) ${m.secrets.join(', ')} that are not set; it cannot start (fleetx secret set NAME)`);
    for (const i of r.invalid) log.warn({ unit: i.unit }, i.message);
  });
  agent.on('pass', (p) => {
    if (p.outcome && p.outcome.failures.length > 0) {
      for (const { task, error } of p.outcome.failures) log.error({ err: error, task: describeTask(task) }, 'task failed; its unit is held back, other units carry on; will retry');
      if (p.outcome.skipped.length > 0) log.warn({ skipped: p.outcome.skipped.map(describeTask) }, 'tasks held back until the next pass');
    } else if (p.tasks.length > 0) {
      log.info({ tasks: p.tasks.length }, 'pass done');
    }
  });
}

export function logEngine(engine: Engine, log: Logger): void {
  engine.on('state', (state) => log.info({ state }, 'engine state'));
  engine.on('warning', (err) => log.warn({ err }, 'engine warning'));
  // durationMs and triggers: where a start's time goes (bench:converge --trace); view and phases: where a pass's time goes (bench:scale)
  engine.on('pass', (p) => p.ops.length > 0 && log.info({ ops: p.ops.length, revision: p.revision, durationMs: p.durationMs, requests: p.requests, triggers: p.triggers.length, view: p.view, phases: p.phasesMs }, 'engine pass'));
}

export function logRollouts(rollouts: RolloutController, log: Logger): void {
  rollouts.on('warning', (err) => log.warn({ err }, 'rollout controller warning'));
  rollouts.on('step', (s) => log.info({ service: s.service, rollout: s.id, state: s.state, actions: s.actions.map((a) => a.reason) }, 'rollout step'));
}

export function logPresence(syncer: PresenceSyncer, log: Logger): void {
  syncer.on('state', (state) => log.info({ state }, 'syncer state'));
  syncer.on('problem', (msg, err) => log.warn(err === undefined ? {} : { err }, msg));
  syncer.on('pass', (p) => {
    const want = new Map(p.desired.map((d) => [d.unit, d]));
    for (const r of p.written) log.info({ unit: r.unit, state: r.state, sessions: r.sessions, address: r.address, reason: want.get(r.unit)?.reason }, `${r.unit} ${r.state}`);
    for (const o of p.observed) if (o.error) log.warn({ unit: o.unit, state: o.state }, o.error);
  });
}
