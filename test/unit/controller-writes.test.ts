/** planWrites (pure): set-unit with its schedule keys, the surge actions (destroy-unit) and the revert bookkeeping that ignores surge instances. */
import { describe, expect, it } from 'vitest';
import { planWrites } from '../../src/controller/writes.js';
import type { RolloutDetails, RolloutEntry } from '../../src/controller/view.js';
import { keyspace } from '../../src/registry/keys.js';
import type { RolloutRecord, RolloutStep, RolloutView } from '../../src/rollout/types.js';

const keys = keyspace('/t');
const NOW = '2026-01-01T00:00:10.000Z';
const record: RolloutRecord = {
  id: 'r1', service: 'app', template: 'app@.service', kind: 'deploy', state: 'running', toRevision: 2, toHash: 'new',
  autoRevert: true, presence: true, policy: { maxUnavailable: 1, surge: 1, minHealthyMs: 0, deadlineMs: 1000, autoRevert: true },
  holder: { user: 'u', host: 'h' }, createdAt: NOW, updatedAt: NOW,
  instances: {
    'app@1.service': { unit: 'app@1.service', phase: 'done', since: NOW, targetHash: 'new' },
    'app@2.service': { unit: 'app@2.service', phase: 'removing', since: NOW, targetHash: 'new', surge: true },
  },
};
const entry: RolloutEntry = { service: 'app', rollout: { value: record, modRevision: '40' } };
const details = (withSurge = true): RolloutDetails => ({
  units: new Map([
    ['app@1.service', { value: { name: 'app@1.service', hash: 'new', targetState: 'launched' }, modRevision: '11' }],
    ...(withSurge ? [['app@2.service', { value: { name: 'app@2.service', hash: 'new', targetState: 'launched' }, modRevision: '12' }] as const] : []),
  ]),
  statuses: new Map(),
  holds: new Set(['app@2.service']),
});
const view: RolloutView = { rollout: record, instances: [], now: Date.parse(NOW) };

describe('planWrites: destroy-unit', () => {
  it('deletes the unit record guarded by its mod revision and its unschedulable reason, with the record in one batch; the hold stays', () => {
    const step: RolloutStep = { rollout: { ...record, updatedAt: 'later' }, actions: [{ type: 'destroy-unit', unit: 'app@2.service', reason: 'removing' }], changed: true };
    const plan = planWrites({ keys, entry, details: details(), view, step, now: NOW });
    expect(plan.batches).toHaveLength(1);
    const b = plan.batches[0]!;
    expect(b.guards).toEqual([{ key: keys.unit('app@2.service'), modRevision: '12' }]);
    expect(b.ops.map((o) => `${o.type} ${o.key}`)).toEqual([
      `delete ${keys.unit('app@2.service')}`,
      `delete ${keys.unschedulable('app@2.service')}`,
      `put ${keys.rollout('app')}`,
    ]);
    expect(plan.skipped).toEqual([]);
  });

  it('a hold ensured in the same step outlives the destroy (the planner releases it once nothing runs the instance)', () => {
    const step: RolloutStep = {
      rollout: record, changed: false,
      actions: [{ type: 'hold', unit: 'app@2.service', reason: 'removing' }, { type: 'destroy-unit', unit: 'app@2.service', reason: 'removing' }],
    };
    const ops = planWrites({ keys, entry, details: details(), view, step, now: NOW }).batches.flatMap((b) => b.ops);
    expect(ops.filter((o) => o.key === keys.presenceHold('app', 'app@2.service')).map((o) => o.type)).not.toContain('delete');
  });

  it('skips a unit already gone', () => {
    const step: RolloutStep = { rollout: record, actions: [{ type: 'destroy-unit', unit: 'app@2.service', reason: 'removing' }], changed: false };
    const plan = planWrites({ keys, entry, details: details(false), view, step, now: NOW });
    expect(plan.batches).toEqual([]);
    expect(plan.skipped).toEqual(['destroy-unit app@2.service: the unit record is gone already']);
  });
});

describe('planWrites: revert bookkeeping with surge instances', () => {
  it('a reverted rollout puts the service back even though its surge instance targeted the failed body', () => {
    const reverted: RolloutRecord = {
      ...record, state: 'failed', revertTo: { revision: 1, hash: 'old' }, finishedAt: NOW,
      instances: {
        'app@1.service': { unit: 'app@1.service', phase: 'done', since: NOW, targetHash: 'old' },
        'app@2.service': { unit: 'app@2.service', phase: 'done', since: NOW, targetHash: 'new', surge: true },
      },
    };
    const d: RolloutDetails = {
      ...details(false),
      service: { value: { name: 'app', revision: 2 } as never, modRevision: '5' },
      template: { value: { name: 'app@.service', hash: 'new', targetState: 'inactive' }, modRevision: '6' },
    };
    const step: RolloutStep = { rollout: reverted, actions: [{ type: 'finish', state: 'failed', reason: 'reverted' }], changed: true };
    const ops = planWrites({ keys, entry, details: d, view, step, now: NOW }).batches.flatMap((b) => b.ops);
    expect(ops.map((o) => `${o.type} ${o.key}`)).toEqual(expect.arrayContaining([`put ${keys.service('app')}`, `put ${keys.unit('app@.service')}`]));
  });
});

describe('planWrites: a reverted rollout gives the service back its values', () => {
  const reverted: RolloutRecord = {
    ...record, state: 'failed', revertTo: { revision: 1, hash: 'old' }, finishedAt: NOW,
    instances: { 'app@1.service': { unit: 'app@1.service', phase: 'done', since: NOW, targetHash: 'old' } },
  };
  const step: RolloutStep = { rollout: reverted, actions: [{ type: 'finish', state: 'failed', reason: 'reverted' }], changed: true };
  const service = { value: { name: 'app', revision: 2, values: { tag: 'v2', unhealthy: 'true' } } as never, modRevision: '5' };
  const servicePut = (d: RolloutDetails) => {
    const op = planWrites({ keys, entry, details: d, view, step, now: NOW }).batches.flatMap((b) => b.ops).find((o) => o.key === keys.service('app'));
    return op?.type === 'put' ? (JSON.parse(op.value) as { revision: number; values: unknown }) : undefined;
  };

  it("the revert revision's values replace the failed deploy's (the next plan must not carry them)", () => {
    const revertRevision = { value: { service: 'app', revision: 1, hash: 'old', values: { tag: 'v1' }, createdAt: NOW, createdBy: 'u', healthy: true }, modRevision: '3' };
    expect(servicePut({ ...details(false), service, revertRevision })).toEqual(expect.objectContaining({ revision: 1, values: { tag: 'v1' } }));
  });

  it('without the revert revision record (deleted meanwhile) the revision still goes back and the values stay', () => {
    expect(servicePut({ ...details(false), service })).toEqual(expect.objectContaining({ revision: 1, values: { tag: 'v2', unhealthy: 'true' } }));
  });
});

describe('planWrites: set-unit reaches the schedule key in the same transaction', () => {
  const step: RolloutStep = {
    rollout: { ...record, updatedAt: 'later' }, changed: true,
    actions: [{ type: 'set-unit', unit: 'app@1.service', targetState: 'loaded', hash: 'new', reason: 'stopping' }],
  };
  const placed = new Map([['app@1.service', [{ machine: 'm1', key: keys.schedule('m1', 'app@1.service'), modRevision: '30' }]]]);

  it('puts the unit record and its schedule key, each guarded by the mod revision it was read at, with the record', () => {
    const plan = planWrites({ keys, entry, details: details(), view, step, now: NOW, placements: placed });
    expect(plan.batches).toHaveLength(1);
    const b = plan.batches[0]!;
    expect(b.guards).toEqual([{ key: keys.unit('app@1.service'), modRevision: '11' }, { key: keys.schedule('m1', 'app@1.service'), modRevision: '30' }]);
    expect(b.ops.map((o) => `${o.type} ${o.key}`)).toEqual([`put ${keys.unit('app@1.service')}`, `put ${keys.schedule('m1', 'app@1.service')}`, `put ${keys.rollout('app')}`]);
    const schedule = b.ops[1]!;
    // exactly what the engine would write for the new unit record, so its next pass changes nothing
    expect(schedule.type === 'put' && JSON.parse(schedule.value)).toEqual({ name: 'app@1.service', hash: 'new', targetState: 'loaded' });
  });

  it('an unplaced unit: only its record (the engine places it)', () => {
    const ops = planWrites({ keys, entry, details: details(), view, step, now: NOW, placements: new Map() }).batches.flatMap((b) => b.ops);
    expect(ops.map((o) => o.key)).toEqual([keys.unit('app@1.service'), keys.rollout('app')]);
  });
});
