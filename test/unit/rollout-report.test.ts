/** The final report of a rollout command (JSON) and its JUnit form: outcome, exit code, one test case per instance. */
import { describe, expect, it } from 'vitest';
import { buildReport, type ReportInput } from '../../src/cli/report/report.js';
import { junitXml } from '../../src/cli/report/junit.js';
import { FleetxError, conflictError } from '../../src/errors/errors.js';
import { lockError } from '../../src/deploy/store.js';
import type { InstanceProgress, RolloutRecord } from '../../src/rollout/types.js';

const T = (s: number) => new Date(Date.parse('2026-11-22T00:40:00Z') + s * 1000).toISOString();
const inst = (n: number, extra: Partial<InstanceProgress> = {}): InstanceProgress => ({ unit: `web@${n}.service`, phase: 'done', since: T(10 * n), startedAt: T(10 * n - 4), targetHash: 'h2', ...extra });
const rec = (over: Partial<RolloutRecord>): RolloutRecord => ({
  id: 'r7', service: 'web', template: 'web@.service', kind: 'deploy', state: 'succeeded', fromRevision: 1, toRevision: 2, toHash: 'h2',
  revertTo: { revision: 1, hash: 'h1' }, autoRevert: true, presence: true,
  policy: { maxUnavailable: 1, surge: 0, minHealthyMs: 1000, deadlineMs: 30_000, autoRevert: true },
  holder: { user: 'jenkins', host: 'ci-1', build: 'jenkins-web-42' }, createdAt: T(0), updatedAt: T(40), finishedAt: T(40),
  instances: { 'web@1.service': inst(1), 'web@2.service': inst(2) },
  ...over,
});
const at = { command: 'deploy', startedAt: T(0), endedAt: T(41) };
const report = (i: Partial<ReportInput>) => buildReport({ ...at, ...i });

describe('buildReport', () => {
  it.each([
    ['succeeded', { rollout: rec({}) }, 'succeeded', 0],
    ['started (--detach)', { rollout: rec({ state: 'running' }), detached: true }, 'started', 0],
    ['unchanged', { service: 'web', unchanged: { revision: 2, message: 'web is already at revision 2' } }, 'unchanged', 0],
    ['reverted', { rollout: rec({ state: 'failed' }), error: new FleetxError('reverted', 'failed and was reverted') }, 'reverted', 7],
    ['failed', { rollout: rec({ state: 'failed' }), error: new FleetxError('failed', 'failed') }, 'failed', 1],
    ['aborted', { rollout: rec({ state: 'aborted' }), error: new FleetxError('aborted', 'aborted') }, 'aborted', 8],
    ['timeout', { rollout: rec({ state: 'running' }), error: new FleetxError('timeout', 'stopped waiting') }, 'timeout', 9],
    ['locked', { service: 'web', error: lockError(rec({ state: 'running' })) }, 'locked', 5],
    ['another conflict is an error', { service: 'web', error: conflictError('changed meanwhile') }, 'error', 5],
    ['interrupted', { rollout: rec({ state: 'running' }), error: new FleetxError('failed', 'stopped', { exitCode: 143 }), interrupted: { signal: 'SIGTERM', onAbort: 'abort' as const, action: 'abort requested' } }, 'interrupted', 143],
    ['etcd unreachable before anything started', { error: new FleetxError('unavailable', 'etcd at x is unreachable') }, 'error', 6],
  ] as const)('%s', (_, input, outcome, exitCode) => {
    const r = report(input as Partial<ReportInput>);
    expect(r).toMatchObject({ schema: 'fleetx/report/v1', command: 'deploy', outcome, exitCode });
  });

  it('names the holder of the lock, and the revision a reverted rollout went back to', () => {
    expect(report({ error: lockError(rec({ state: 'running' })) }).error).toMatchObject({ kind: 'conflict', lock: { rollout: 'r7', holder: { build: 'jenkins-web-42' }, by: 'jenkins@ci-1 (jenkins-web-42)' } });
    const failed1 = rec({ state: 'failed', instances: { 'web@1.service': inst(1, { targetHash: 'h1', error: 'not healthy after 30s' }), 'web@2.service': inst(2, { targetHash: 'h1' }) } });
    expect(report({ rollout: failed1, error: new FleetxError('reverted', 'x') }).rollout).toMatchObject({ revertedTo: 1 });
  });
});

describe('junitXml', () => {
  it('one test case for the rollout and one per instance; the failed instance carries its reason', () => {
    const r = rec({
      state: 'failed',
      message: 'reverted to revision 1 after: web@2.service: not healthy after 30s',
      instances: { 'web@1.service': inst(1, { targetHash: 'h1' }), 'web@2.service': inst(2, { targetHash: 'h1', error: 'not healthy after 30s' }) },
    });
    const xml = junitXml(report({ rollout: r, error: new FleetxError('reverted', 'the deploy of web to revision 2 failed and was reverted') }));
    expect(xml).toContain('<testsuite name="fleetx deploy web" tests="3" failures="2" errors="0" skipped="1"');
    expect(xml).toContain('<property name="outcome" value="reverted"/>');
    expect(xml).toContain('<property name="build" value="jenkins-web-42"/>');
    expect(xml).toMatch(/<testcase classname="fleetx\.deploy\.web" name="fleetx deploy web">\s*<failure type="reverted" message="the deploy of web to revision 2 failed and was reverted">/);
    expect(xml).toMatch(/<testcase classname="fleetx\.deploy\.web" name="web@1\.service" time="4\.000">\s*<skipped message="reverted to revision 1"\/>/);
    expect(xml).toMatch(/name="web@2\.service" time="4\.000">\s*<failure type="instance-failed" message="not healthy after 30s">/);
  });

  it('a successful rollout: every case passes', () => {
    const xml = junitXml(report({ rollout: rec({}) }));
    expect(xml).toContain('tests="3" failures="0" errors="0" skipped="0"');
    expect(xml).not.toMatch(/<failure|<skipped/);
  });

  it('a refusal before any rollout is one failing case naming why', () => {
    const xml = junitXml(report({ service: 'web', error: lockError(rec({ state: 'running' })) }));
    expect(xml).toContain('tests="1" failures="1"');
    expect(xml).toContain('<failure type="locked" message="a rollout of web is already running: deploy to revision 2 by jenkins@ci-1 (jenkins-web-42)');
  });

  it('escapes what XML cannot carry as is', () => {
    const r = rec({ state: 'failed', instances: { 'web@1.service': inst(1, { phase: 'failed', error: 'a <b> & "c" \u0001' }) } });
    const xml = junitXml(report({ rollout: r, error: new FleetxError('failed', 'x') }));
    expect(xml).toContain('message="a &lt;b&gt; &amp; &quot;c&quot; \uFFFD"');
  });
});
