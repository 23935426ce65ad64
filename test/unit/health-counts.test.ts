/**
 * Which health record counts for an instance (health/counts.ts), and that
 * the rollout controller's view and the presence syncer's decision pick the
 * same one. They used to differ while a dead agent's lease was still alive:
 * the syncer preferred its stale healthy record, the controller the fresh
 * one of the machine the instance moved to.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildView, Decoder, type RawKV, type RolloutEntry } from '../../src/controller/view.js';
import { healthThatCounts } from '../../src/health/counts.js';
import type { HealthRecord, HealthStatus } from '../../src/health/types.js';
import { decide } from '../../src/presence/decide.js';
import { keyspace } from '../../src/registry/keys.js';
import type { MachineRecord, UnitStateRecord } from '../../src/registry/records.js';
import type { RolloutRecord } from '../../src/rollout/types.js';

const UNIT = 'app@1.service';
const t = (s: number) => `2026-01-01T00:00:${String(s).padStart(2, '0')}.000Z`;
const health = (machine: string, status: HealthStatus, at: number): HealthRecord => ({
  unit: UNIT, machine, hash: 'h1', status, since: t(at), checkedAt: t(at), consecutive: 1,
});
const state = (machine: string, activeState: string, at: number): UnitStateRecord => ({
  name: UNIT, machine, hash: 'h1', loadState: 'loaded', activeState, subState: activeState === 'active' ? 'running' : 'start', updatedAt: t(at),
});
const machine = (id: string, ip: string): MachineRecord => ({ id, ip, metadata: {}, version: '0', startedAt: t(0) });

describe('healthThatCounts', () => {
  it.each<[string, HealthRecord[], string[] | undefined, string | undefined]>([
    ['no record', [], ['m1'], undefined],
    ['one record, even of a gone machine', [health('m9', 'healthy', 1)], ['m1'], 'm9'],
    ['a registered machine before a gone one, however new', [health('m9', 'healthy', 9), health('m1', 'unhealthy', 1)], ['m1'], 'm1'],
    ['both registered: the newest, even when unhealthy', [health('m1', 'healthy', 1), health('m2', 'unhealthy', 5)], ['m1', 'm2'], 'm2'],
    ['both registered: the newest, when healthy', [health('m1', 'unhealthy', 1), health('m2', 'healthy', 5)], ['m1', 'm2'], 'm2'],
    ['machines unknown: the newest', [health('m9', 'healthy', 1), health('m8', 'unknown', 2)], undefined, 'm8'],
    ['same time: the lower machine id', [health('m2', 'healthy', 3), health('m1', 'unhealthy', 3)], ['m1', 'm2'], 'm1'],
  ])('%s', (_d, records, machines, want) => {
    expect(healthThatCounts(records, machines && new Set(machines))?.machine).toBe(want);
  });

  it('property: the same choice whatever the order of the records', () => {
    const rec = fc.record({ m: fc.constantFrom('m1', 'm2', 'm3', 'm4'), s: fc.constantFrom<HealthStatus>('healthy', 'unhealthy', 'unknown'), at: fc.integer({ min: 0, max: 9 }) });
    fc.assert(
      fc.property(fc.uniqueArray(rec, { selector: (r) => r.m, maxLength: 4 }), fc.subarray(['m1', 'm2', 'm3']), (rs, live) => {
        const records = rs.map((r) => health(r.m, r.s, r.at));
        const got = healthThatCounts(records, new Set(live));
        expect(healthThatCounts([...records].reverse(), new Set(live))).toEqual(got);
        if (records.some((r) => live.includes(r.machine))) expect(live).toContain(got?.machine);
      }),
    );
  });
});

describe('a dead agent whose lease is still alive: the rollout and the load balancer see the same record', () => {
  // app@1 moved from m1 to m2. m1's agent died before it stopped the unit, so
  // its machine record, its state record (active) and its health record
  // (healthy) live on until its lease lapses. m2 started the instance since.
  const keys = keyspace('/fx');
  const kv = (key: string, value: unknown): RawKV => ({ key, value: JSON.stringify(value), modRevision: '1' });
  const machines = [machine('m1', '10.0.0.1'), machine('m2', '10.0.0.2')];
  const rollout = {
    id: 'r1', service: 'app', template: 'app@.service', kind: 'deploy', state: 'running', toHash: 'h1', autoRevert: false, presence: true,
    policy: { maxUnavailable: 1, surge: 0, minHealthyMs: 0, deadlineMs: 60_000, autoRevert: false },
    holder: { user: 'u', host: 'h' }, createdAt: t(0), updatedAt: t(0),
    instances: { [UNIT]: { unit: UNIT, phase: 'starting', since: t(4), targetHash: 'h1', startedAt: t(4) } },
  } satisfies RolloutRecord;
  const entry: RolloutEntry = { service: 'app', rollout: { value: rollout, modRevision: '1' } };

  function controllerSees(states: UnitStateRecord[], healths: HealthRecord[]): HealthRecord | undefined {
    const decoder = new Decoder();
    const reports = decoder.reports(
      {
        states: states.map((s) => kv(keys.state(s.machine, s.name), s)),
        healths: healths.map((h) => kv(keys.health(h.machine, h.unit), h)),
        machines: machines.map((m) => kv(keys.machine(m.id), m)),
        schedules: [],
      },
      keys.schedules(),
    );
    const view = buildView(entry, { units: new Map(), statuses: new Map(), holds: new Set() }, reports, Date.parse(t(9)));
    expect(decoder.problems).toEqual([]);
    return view.instances[0]!.health;
  }
  const balancerSees = (healths: HealthRecord[]) => decide({ template: 'app@.service', port: 80, health: healths, holds: [], machines, observed: [] })[0]!;

  it.each<[string, UnitStateRecord[], HealthRecord[], 'in' | 'out']>([
    // the old presence rule took m1's healthy record: in, at m1's address
    ['m2 active, its check failing', [state('m1', 'active', 1), state('m2', 'active', 5)], [health('m1', 'healthy', 1), health('m2', 'unhealthy', 6)], 'out'],
    // the old controller rule took m1's record here (m1 "active", m2 only activating)
    ['m2 still starting', [state('m1', 'active', 1), state('m2', 'activating', 5)], [health('m1', 'healthy', 1), health('m2', 'unknown', 5)], 'out'],
    ['m2 healthy', [state('m1', 'active', 1), state('m2', 'active', 5)], [health('m1', 'healthy', 1), health('m2', 'healthy', 7)], 'in'],
  ])('%s: both take m2\'s record', (_d, states, healths, want) => {
    const counted = controllerSees(states, healths);
    const lb = balancerSees(healths);
    expect(counted?.machine).toBe('m2');
    expect(lb.want).toBe(want);
    expect(lb.address).toBe('10.0.0.2');
    expect(lb.reason).toContain(want === 'in' ? 'healthy on m2' : 'm2');
  });
});
