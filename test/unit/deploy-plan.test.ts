/** Pure deploy planning: which revision, which instances restart or are created, the records written. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { deployWrites, formatPlan, planDeploy, restartRecord, restartWrites, rolloutId, surgeNames, undoTarget, type DeployInput } from '../../src/deploy/plan.js';
import type { UnitRecord } from '../../src/registry/records.js';
import type { RevisionRecord, ServiceSpec } from '../../src/service/types.js';

const spec: ServiceSpec = {
  name: 'app',
  template: 'app@.service',
  values: { image: 'busybox' },
  instances: 3,
  health: { type: 'none', intervalMs: 2000, timeoutMs: 1000, threshold: 1, failureThreshold: 2 },
  presence: { driver: 'haproxy', port: 80, socket: '/run/h.sock', backend: 'app', drainTimeoutMs: 5000 },
  rollout: { maxUnavailable: 1, surge: 0, minHealthyMs: 1000, deadlineMs: 60_000, autoRevert: true },
};
const rev = (n: number, hash: string, healthy = true): RevisionRecord => ({ service: 'app', revision: n, hash, values: { v: n }, createdAt: '', createdBy: '', healthy });
const unit = (name: string, hash: string, modRevision = '7'): { value: UnitRecord; modRevision: string } => ({
  value: { name, hash, targetState: name.includes('@.') ? 'inactive' : 'launched', ...(name.includes('@.') ? {} : { template: 'app@.service' }) },
  modRevision,
});
const input = (over: Partial<DeployInput> = {}): DeployInput => ({
  kind: 'deploy',
  spec,
  body: { text: '[Service]\nExecStart=/bin/new\n', hash: 'new' },
  current: { ...spec, revision: 2, updatedAt: '' },
  revisions: [rev(1, 'h1'), rev(2, 'old')],
  oldBody: '[Service]\nExecStart=/bin/old\n',
  template: unit('app@.service', 'old'),
  instances: [unit('app@1.service', 'old'), unit('app@2.service', 'new'), unit('app@4.service', 'old')],
  ...over,
});
const ctx = { id: 'r1', now: '2026-11-22T00:00:00.000Z', holder: { user: 'alice', host: 'ci-1', build: 'jenkins-app-42' }, user: 'alice@ci-1' };

describe('planDeploy', () => {
  it('a new body is revision n+1; instances not on it restart, missing ones are created', () => {
    const p = planDeploy(input());
    expect(p).toMatchObject({
      service: 'app', fromRevision: 2, toRevision: 3, newRevision: true, toHash: 'new',
      restart: ['app@1.service', 'app@4.service'], create: ['app@3.service'], extra: ['app@4.service'],
      templateChanged: true, nothingToDo: false, revertTo: { revision: 2, hash: 'old' },
    });
    expect(p.diff).toContain('-ExecStart=/bin/old\n+ExecStart=/bin/new');
    expect(p.diff).toContain('--- app@.service (revision 2)\n+++ app@.service (revision 3)');
  });

  it.each([
    ['same body, every instance on it', { revisions: [rev(1, 'new')], current: { ...spec, revision: 1, updatedAt: '' }, template: unit('app@.service', 'new'), instances: [1, 2, 3].map((i) => unit(`app@${i}.service`, 'new')), oldBody: '[Service]\nExecStart=/bin/new\n' }, true],
    ['same body, one instance left behind', { revisions: [rev(1, 'new')], current: { ...spec, revision: 1, updatedAt: '' }, template: unit('app@.service', 'new'), instances: [unit('app@1.service', 'old'), unit('app@2.service', 'new'), unit('app@3.service', 'new')] }, false],
    ['same body, one instance missing', { revisions: [rev(1, 'new')], current: { ...spec, revision: 1, updatedAt: '' }, template: unit('app@.service', 'new'), instances: [unit('app@1.service', 'new')] }, false],
    ['first deploy', { revisions: [], current: undefined, template: undefined, instances: [], oldBody: undefined }, false],
  ] as const)('%s: nothingToDo=%s', (_name, over, nothing) => {
    expect(planDeploy(input(over as unknown as Partial<DeployInput>)).nothingToDo).toBe(nothing);
  });

  it('reverts to the newest healthy revision with another body, or to none', () => {
    expect(planDeploy(input({ revisions: [rev(1, 'h1'), rev(2, 'old', false)] })).revertTo).toEqual({ revision: 1, hash: 'h1' });
    expect(planDeploy(input({ revisions: [rev(1, 'new'), rev(2, 'old', false)] })).revertTo).toBeUndefined();
    expect(planDeploy(input({ revisions: [] })).revertTo).toBeUndefined();
  });

  it('property: restart ∪ on-target = existing, create ∩ existing = ∅, created are 1..instances', () => {
    const arb = fc.record({
      count: fc.integer({ min: 1, max: 6 }),
      existing: fc.uniqueArray(fc.tuple(fc.integer({ min: 1, max: 9 }), fc.constantFrom('old', 'new')), { selector: (t) => t[0], maxLength: 9 }),
    });
    fc.assert(fc.property(arb, ({ count, existing }) => {
      const instances = existing.map(([i, h]) => unit(`app@${i}.service`, h)).sort((a, b) => (a.value.name < b.value.name ? -1 : 1));
      const p = planDeploy(input({ spec: { ...spec, instances: count }, instances }));
      const names = new Set(instances.map((i) => i.value.name));
      expect(p.restart.every((n) => names.has(n))).toBe(true);
      expect(p.restart).toEqual(instances.filter((i) => i.value.hash !== 'new').map((i) => i.value.name));
      expect(p.create.some((n) => names.has(n))).toBe(false);
      for (let i = 1; i <= count; i++) expect(names.has(`app@${i}.service`) || p.create.includes(`app@${i}.service`)).toBe(true);
    }));
  });
});

describe('deployWrites', () => {
  it('writes revision, service, template (keeping its target state), created instances and the rollout with its guards', () => {
    const i = input();
    const w = deployWrites(i, planDeploy(i), { ...ctx, autoRevert: false });
    expect(w.revision).toMatchObject({ service: 'app', revision: 3, hash: 'new', healthy: false, createdBy: 'alice@ci-1' });
    expect(w.serviceRecord).toMatchObject({ name: 'app', revision: 3, updatedAt: ctx.now });
    expect(w.units.map((u) => [u.record.name, u.record.hash, u.record.targetState, u.readAt])).toEqual([
      ['app@.service', 'new', 'inactive', '7'],
      ['app@3.service', 'new', 'launched', '0'],
    ]);
    expect(w.rollout).toMatchObject({
      id: 'r1', kind: 'deploy', state: 'running', fromRevision: 2, toRevision: 3, toHash: 'new', autoRevert: false, presence: true, drainTimeoutMs: 5000,
      holder: ctx.holder, revertTo: { revision: 2, hash: 'old' }, policy: spec.rollout,
    });
    expect(w.rollout!.instances).toEqual({
      'app@1.service': { unit: 'app@1.service', phase: 'pending', since: ctx.now, targetHash: 'new' },
      // already on the new body: in the rollout to be verified (done without a restart when healthy)
      'app@2.service': { unit: 'app@2.service', phase: 'pending', since: ctx.now, targetHash: 'new' },
      'app@3.service': { unit: 'app@3.service', phase: 'starting', since: ctx.now, startedAt: ctx.now, healthAtStart: '', targetHash: 'new' },
      'app@4.service': { unit: 'app@4.service', phase: 'pending', since: ctx.now, targetHash: 'new' },
    });
  });

  it('a new revision whose body every instance runs already (a deploy back after a revert): the instances are in the rollout, so it can mark the revision healthy', () => {
    // revision 2 (body old) was reverted to revision 1 (body h1); deploying h1's body again makes revision 3
    const i = input({
      body: { text: '[Service]\nExecStart=/bin/h1\n', hash: 'h1' },
      revisions: [rev(1, 'h1'), rev(2, 'old', false)],
      template: unit('app@.service', 'h1'),
      instances: [1, 2, 3].map((n) => unit(`app@${n}.service`, 'h1')),
    });
    const p = planDeploy(i);
    expect(p).toMatchObject({ newRevision: true, toRevision: 3, restart: [] });
    const w = deployWrites(i, p, ctx);
    expect(w.revision).toMatchObject({ revision: 3, hash: 'h1', healthy: false });
    expect(Object.values(w.rollout!.instances).map((x) => [x.unit, x.phase, x.targetHash])).toEqual([
      ['app@1.service', 'pending', 'h1'], ['app@2.service', 'pending', 'h1'], ['app@3.service', 'pending', 'h1'],
    ]);
  });

  it('reuses the newest revision when its body is the same (no revision written)', () => {
    const i = input({ revisions: [rev(1, 'new')], current: { ...spec, revision: 1, updatedAt: '' } });
    const w = deployWrites(i, planDeploy(i), ctx);
    expect(w.revision).toBeUndefined();
    expect(w.rollout).toMatchObject({ toRevision: 1, autoRevert: true });
  });
});

describe('surge', () => {
  const surge = { ...spec, rollout: { ...spec.rollout, surge: 2 } };
  it.each<[string, string[], number, string[]]>([
    ['after the highest number', ['app@1.service', 'app@2.service', 'app@3.service'], 1, ['app@4.service']],
    ['past gaps and named instances', ['app@1.service', 'app@7.service', 'app@blue.service'], 2, ['app@8.service', 'app@9.service']],
    ['none asked', ['app@1.service'], 0, []],
    ['no numbered instance', [], 1, ['app@1.service']],
  ])('surgeNames: %s', (_d, taken, count, want) => {
    expect(surgeNames('app@.service', taken, count)).toEqual(want);
  });

  it('deployWrites: surge instances launched in the deploy transaction, in the rollout as starting surge', () => {
    const i = input({ spec: surge });
    const plan = planDeploy(i);
    expect(plan.surge).toEqual(['app@5.service', 'app@6.service']); // after app@4 and the created app@3
    const w = deployWrites(i, plan, ctx);
    expect(w.units.map((u) => [u.record.name, u.record.hash, u.record.targetState, u.readAt])).toEqual([
      ['app@.service', 'new', 'inactive', '7'],
      ['app@3.service', 'new', 'launched', '0'],
      ['app@5.service', 'new', 'launched', '0'],
      ['app@6.service', 'new', 'launched', '0'],
    ]);
    expect(w.rollout!.instances['app@5.service']).toEqual({ unit: 'app@5.service', phase: 'starting', since: ctx.now, startedAt: ctx.now, healthAtStart: '', targetHash: 'new', surge: true });
    expect(w.rollout!.instances['app@3.service']?.surge).toBeUndefined();
    expect(formatPlan(plan)).toContain('Surge instances (2, started first, destroyed when the rollout ends): app@5.service, app@6.service');
  });

  it('no surge when nothing restarts, and none with surge 0', () => {
    const onNew = input({ spec: surge, instances: [unit('app@1.service', 'new')] });
    expect(planDeploy(onNew).surge).toEqual([]);
    expect(planDeploy(input()).surge).toEqual([]);
  });

  it('restartWrites: the rollout record and the surge units, on the rollout hash', () => {
    const instances = [unit('app@1.service', 't'), unit('app@2.service', 't')];
    const w = restartWrites({ template: 'app@.service', service: { ...surge, revision: 4, updatedAt: '' }, instances, templateUnit: unit('app@.service', 't'), overrides: {} }, ctx);
    expect(w.units.map((u) => [u.record.name, u.record.hash, u.record.targetState, u.readAt])).toEqual([
      ['app@3.service', 't', 'launched', '0'],
      ['app@4.service', 't', 'launched', '0'],
    ]);
    expect(w.rollout!.instances['app@3.service']).toMatchObject({ phase: 'starting', surge: true, targetHash: 't' });
    expect(w.rollout!.instances['app@1.service']).toMatchObject({ phase: 'pending' });
    const plain = restartWrites({ template: 'job@.service', instances: [unit('job@1.service', 'a')], overrides: {} }, ctx);
    expect(plain.units).toEqual([]);
  });
});

describe('restartRecord', () => {
  const instances = [unit('job@1.service', 'a'), unit('job@2.service', 'b')];
  it('without a service: defaults, no presence, each instance back on its own hash', () => {
    const r = restartRecord({ template: 'job@.service', instances, overrides: { maxUnavailable: 2 } }, ctx);
    expect(r).toMatchObject({ service: 'job', kind: 'restart', presence: false, autoRevert: false, toHash: 'a', policy: { maxUnavailable: 2, surge: 0, minHealthyMs: 1000, deadlineMs: 120_000 } });
    expect(Object.values(r.instances).map((i) => [i.unit, i.targetHash])).toEqual([['job@1.service', 'a'], ['job@2.service', 'b']]);
  });
  it('with a service: its policy and presence, flags override', () => {
    const r = restartRecord({ template: 'app@.service', service: { ...spec, revision: 4, updatedAt: '' }, instances, templateUnit: unit('app@.service', 't'), overrides: { deadlineMs: 5000 } }, ctx);
    expect(r).toMatchObject({ service: 'app', toRevision: 4, toHash: 't', presence: true, autoRevert: false, policy: { maxUnavailable: 1, minHealthyMs: 1000, deadlineMs: 5000 } });
  });
});

describe('undoTarget, rolloutId, formatPlan', () => {
  const revs = [rev(1, 'a'), rev(2, 'b'), rev(3, 'c', false), rev(4, 'b')];
  it.each([
    [4, undefined, 1], // newest healthy with another body than the current one (4 has b, so 2 is skipped)
    [3, undefined, 4],
    [4, 2, 2],
    [4, 9, undefined],
  ])('current %s, --to-revision %s -> %s', (current, to, expected) => {
    expect(undoTarget(revs, current, to)?.revision).toBe(expected);
  });

  it('ids sort by time', () => {
    expect(rolloutId(new Date('2026-11-22T00:40:01.123Z'), 'abc')).toBe('20261122T004001.123Z-abc');
    expect(rolloutId(new Date('2026-11-22T00:40:01.998Z'), 'z') < rolloutId(new Date('2026-11-22T00:40:01.999Z'), 'a')).toBe(true);
  });

  it('prints the plan', () => {
    const out = formatPlan(planDeploy(input()));
    expect(out[0]).toBe('Deploy app: revision 2 -> revision 3 (new)');
    expect(out).toContain('Instances to restart (2): app@1.service, app@4.service');
    expect(out).toContain('Instances to create (1): app@3.service');
    expect(out.at(-1)).toBe('On failure: back to revision 2');
    const same = input({ revisions: [rev(1, 'new')], current: { ...spec, revision: 1, updatedAt: '' }, template: unit('app@.service', 'new'), instances: [1, 2, 3].map((i) => unit(`app@${i}.service`, 'new')) });
    expect(formatPlan(planDeploy(same))).toEqual(['app is already at revision 1']);
  });
});
