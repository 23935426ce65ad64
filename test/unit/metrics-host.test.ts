/**
 * The host daemon's metrics: names, labels and the values the parts' events
 * give them (src/metrics/host.ts, names.ts), the phase times a rollout step
 * yields (phases.ts), the listen address (server.ts) and gRPC labels (etcd.ts).
 * The parts are stood in for by emitters of their own typed events: the
 * wiring is what is tested here; test/integration/metrics-agent.test.ts
 * scrapes a real agent.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Agent, AgentEvents } from '../../src/agent/agent.js';
import type { ControllerEvents, RolloutController, StepReport } from '../../src/controller/controller.js';
import type { Engine, EngineEvents } from '../../src/engine/engine.js';
import { codeName, methodLabel } from '../../src/metrics/etcd.js';
import { HostMetrics } from '../../src/metrics/host.js';
import { METRIC } from '../../src/metrics/names.js';
import { phasesLeft } from '../../src/metrics/phases.js';
import { parseListen } from '../../src/metrics/server.js';
import type { PresenceSyncer, SyncerEvents } from '../../src/presence/syncer.js';
import type { PresenceStatusRecord } from '../../src/presence/types.js';
import type { InstanceProgress, RolloutRecord } from '../../src/rollout/types.js';
import { errorOf } from '../helpers/errors.js';
import { parseMetrics } from '../helpers/metrics.js';

/** name{labels} value lines of the exposition, without comments. */
async function samples(m: HostMetrics): Promise<Map<string, number>> {
  return parseMetrics(await m.registry.metrics());
}

function fakeAgent(states: Map<string, number>) {
  const e = new EventEmitter<AgentEvents>() as EventEmitter<AgentEvents> & { unitStates(): ReadonlyMap<string, number> };
  e.unitStates = () => states;
  return e;
}

const inst = (unit: string, phase: InstanceProgress['phase'], since: string): InstanceProgress => ({ unit, phase, since, targetHash: 'h' });

describe('metric names', () => {
  it.each(Object.entries(METRIC))('%s follows Prometheus naming', (_k, d) => {
    expect(d.name).toMatch(/^fleetx_[a-z_]+$/);
    if (d.name.endsWith('_total')) expect(d.help).not.toBe('');
    if (/duration/.test(d.name)) expect(d.name).toMatch(/_seconds$/);
    for (const l of d.labels) expect(l).toMatch(/^[a-z_]+$/);
  });

  it('every metric is in the registry with its labels, and process metrics are there too', async () => {
    const m = new HostMetrics();
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    for (const d of Object.values(METRIC)) expect(names).toContain(d.name);
    expect(names).toContain('process_resident_memory_bytes');
  });
});

describe('HostMetrics from the parts\' events', () => {
  it('agent: units by state, passes by outcome with durations, tasks, schedule watch, machine presence', async () => {
    const m = new HostMetrics({ processMetrics: false });
    const states = new Map([['active', 2], ['failed', 1]]);
    const agent = fakeAgent(states);
    m.watchAgent(agent as unknown as Agent);
    agent.emit('etcd', true);
    agent.emit('registered', '1234');
    agent.emit('pass', { tasks: [], outcome: { failures: [], skipped: [] } as never, durationMs: 20 });
    agent.emit('pass', { tasks: [], outcome: { failures: [{}], skipped: [] } as never, durationMs: 2000 });
    agent.emit('pass', { skipped: 'etcd-unavailable', tasks: [] });
    agent.emit('task', { type: 'start', unit: 'a.service', reason: 'r' } as never);
    agent.emit('leaseLost', new Error('x'));
    const s = await samples(m);
    expect(s.get('fleetx_agent_units{state="active"}')).toBe(2);
    expect(s.get('fleetx_agent_units{state="failed"}')).toBe(1);
    expect(s.get('fleetx_agent_reconcile_passes_total{outcome="ok"}')).toBe(1);
    expect(s.get('fleetx_agent_reconcile_passes_total{outcome="failed"}')).toBe(1);
    expect(s.get('fleetx_agent_reconcile_passes_total{outcome="skipped"}')).toBe(1);
    // skipped passes have no duration
    expect(s.get('fleetx_agent_reconcile_pass_duration_seconds_count')).toBe(2);
    expect(s.get('fleetx_agent_reconcile_pass_duration_seconds_sum')).toBeCloseTo(2.02);
    expect(s.get('fleetx_agent_tasks_total{type="start"}')).toBe(1);
    expect(s.get('fleetx_agent_schedule_watch_up')).toBe(1);
    expect(s.get('fleetx_machine_presence_changes_total{change="registered"}')).toBe(1);
    expect(s.get('fleetx_machine_presence_changes_total{change="lease_lost"}')).toBe(1);
    // a unit that leaves is no longer counted
    states.delete('failed');
    expect((await samples(m)).has('fleetx_agent_units{state="failed"}')).toBe(false);
  });

  it('engine: leader gauge follows the election state', async () => {
    const m = new HostMetrics({ processMetrics: false });
    const engine = new EventEmitter<EngineEvents>();
    m.watchEngine(engine as unknown as Engine);
    expect((await samples(m)).get('fleetx_engine_leader')).toBe(0);
    engine.emit('state', 'leader');
    expect((await samples(m)).get('fleetx_engine_leader')).toBe(1);
    engine.emit('state', 'follower');
    expect((await samples(m)).get('fleetx_engine_leader')).toBe(0);
  });

  it('rollout controller: passes, phase times per service and phase, finished rollouts', async () => {
    const m = new HostMetrics({ processMetrics: false });
    const c = new EventEmitter<ControllerEvents>();
    m.watchRollouts(c as unknown as RolloutController);
    const before = { instances: { 'web@1.service': inst('web@1.service', 'draining', '2026-01-01T00:00:00.000Z') } } as unknown as RolloutRecord;
    const after = { instances: { 'web@1.service': inst('web@1.service', 'stopping', '2026-01-01T00:00:02.500Z') } } as unknown as RolloutRecord;
    c.emit('pass', { durationMs: 5 } as never);
    c.emit('step', { service: 'web', previous: before, record: after } as StepReport);
    c.emit('finished', { service: 'web', state: 'succeeded' } as RolloutRecord);
    const s = await samples(m);
    expect(s.get('fleetx_rollout_controller_passes_total')).toBe(1);
    expect(s.get('fleetx_rollout_phase_duration_seconds_sum{service="web",phase="draining"}')).toBe(2.5);
    expect(s.get('fleetx_rollout_phase_duration_seconds_count{service="web",phase="draining"}')).toBe(1);
    expect(s.get('fleetx_rollouts_finished_total{service="web",state="succeeded"}')).toBe(1);
  });
});

it('presence syncer: statuses written, by service and state', async () => {
  const m = new HostMetrics({ processMetrics: false });
  const syncer = new EventEmitter<SyncerEvents>();
  m.watchPresence(syncer as unknown as PresenceSyncer, 'app');
  const rec = (unit: string, state: string) => ({ unit, state }) as unknown as PresenceStatusRecord;
  syncer.emit('pass', { desired: [], observed: [], written: [rec('app@1.service', 'draining'), rec('app@2.service', 'in')], settled: true });
  syncer.emit('pass', { desired: [], observed: [], written: [rec('app@1.service', 'out')], settled: true });
  const s = await samples(m);
  expect(s.get('fleetx_presence_changes_total{service="app",state="draining"}')).toBe(1);
  expect(s.get('fleetx_presence_changes_total{service="app",state="out"}')).toBe(1);
  expect(s.get('fleetx_presence_changes_total{service="app",state="in"}')).toBe(1);
});

describe('phasesLeft', () => {
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
  it.each([
    ['a phase change: the old phase lasted the difference', { a: inst('a', 'starting', t(0)) }, { a: inst('a', 'checking', t(3)) }, [{ unit: 'a', phase: 'starting', seconds: 3 }]],
    ['the same phase: nothing', { a: inst('a', 'checking', t(0)) }, { a: inst('a', 'checking', t(0)) }, []],
    ['a new instance (surge): nothing', {}, { a: inst('a', 'starting', t(1)) }, []],
    ['a stamp earlier than the last one (clock step): nothing', { a: inst('a', 'leaving', t(5)) }, { a: inst('a', 'draining', t(1)) }, []],
    ['several instances: sorted by unit', { b: inst('b', 'pending', t(0)), a: inst('a', 'joining', t(1)) }, { b: inst('b', 'leaving', t(2)), a: inst('a', 'done', t(2)) }, [{ unit: 'a', phase: 'joining', seconds: 1 }, { unit: 'b', phase: 'pending', seconds: 2 }]],
  ])('%s', (_d, before, after, want) => {
    expect(phasesLeft({ instances: before }, { instances: after })).toEqual(want);
  });
});

describe('parseListen', () => {
  it.each([
    ['127.0.0.1:9170', { host: '127.0.0.1', port: 9170 }],
    ['10.213.0.11:9100', { host: '10.213.0.11', port: 9100 }],
    [':9170', { host: '0.0.0.0', port: 9170 }],
    ['[::1]:9170', { host: '::1', port: 9170 }],
    ['off', undefined],
  ])('%s', (text, want) => expect(parseListen(text)).toEqual(want));

  it.each([['9170'], ['localhost:9170'], ['1.2.3.4:0'], ['1.2.3.4:70000'], ['1.2.3.4'], ['']])('%s is refused with a usage error', (text) => {
    const e = errorOf(() => parseListen(text));
    expect(e.kind).toBe('usage');
    expect(e.message).toContain('--metrics-listen');
  });
});

describe('etcd call labels', () => {
  it.each([
    ['/etcdserverpb.KV/Range', 'KV/Range'],
    ['/etcdserverpb.Lease/LeaseGrant', 'Lease/LeaseGrant'],
    ['odd', 'odd'],
  ])('%s -> %s', (path, want) => expect(methodLabel(path)).toBe(want));
  it.each([[0, 'OK'], [4, 'DEADLINE_EXCEEDED'], [14, 'UNAVAILABLE'], [99, '99']])('code %i -> %s', (code, want) => expect(codeName(code)).toBe(want));
});
