import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HealthStatus } from '../../src/health/types.js';
import { livenessOf, startTracking, step, wantsChecks, type HealthInput, type TrackerState } from '../../src/health/tracker.js';
import type { HealthCheck } from '../../src/service/types.js';

const http: HealthCheck = { type: 'http', port: 8080, path: '/healthz', intervalMs: 1000, timeoutMs: 500, threshold: 2, failureThreshold: 2 };
const none: HealthCheck = { type: 'none', intervalMs: 1000, timeoutMs: 500, threshold: 1, failureThreshold: 1 };

/** Compact script: 'ok', 'fail', 'active:PID', 'activating', 'inactive', 'failed', 'hash:H', 'none', 'http', 'unknown-check'. */
function run(script: string[], check: HealthCheck | undefined = http, start = 'active:10') {
  let t = 1000;
  const [a0, p0] = start.split(':');
  let s = startTracking({ unit: 'app@1.service', machine: 'm1', check, hash: 'h1', activeState: a0!, mainPid: p0 ? Number(p0) : undefined, at: t }).state;
  const trail: Array<{ status: HealthStatus; since: number; published: boolean }> = [];
  for (const cmd of script) {
    t += 100;
    const r = step(s, input(s, cmd, t));
    s = r.state;
    trail.push({ status: s.status, since: s.since, published: r.record !== undefined });
  }
  return { s, trail };
}

function input(s: TrackerState, cmd: string, at: number): HealthInput {
  const [what, arg] = cmd.split(':');
  const pid = s.mainPid;
  switch (what) {
    case 'ok':
    case 'fail':
      return { type: 'result', at, ok: what === 'ok', message: what, epoch: s.epoch };
    case 'stale-ok':
      return { type: 'result', at, ok: true, message: 'ok', epoch: s.epoch - 1 };
    case 'active':
      return { type: 'unit', at, hash: s.hash, activeState: 'active', mainPid: arg ? Number(arg) : pid };
    case 'hash':
      return { type: 'unit', at, hash: arg!, activeState: s.activeState, mainPid: pid };
    case 'none':
      return { type: 'configure', at, check: none };
    case 'http':
      return { type: 'configure', at, check: http };
    case 'unknown-check':
      return { type: 'configure', at, check: undefined };
    default:
      return { type: 'unit', at, hash: s.hash, activeState: what! };
  }
}

describe('health tracker', () => {
  it.each([
    { why: 'starts unknown', script: [], end: 'unknown' },
    { why: 'one ok is not enough with threshold 2', script: ['ok'], end: 'unknown' },
    { why: 'threshold oks in a row: healthy', script: ['ok', 'ok'], end: 'healthy' },
    { why: 'a failure breaks the streak', script: ['ok', 'fail', 'ok'], end: 'unknown' },
    { why: 'failureThreshold failures: unhealthy', script: ['fail', 'fail'], end: 'unhealthy' },
    { why: 'one failure keeps a healthy instance healthy', script: ['ok', 'ok', 'fail'], end: 'healthy' },
    { why: 'two failures make it unhealthy', script: ['ok', 'ok', 'fail', 'fail'], end: 'unhealthy' },
    { why: 'unhealthy back to healthy after threshold oks', script: ['fail', 'fail', 'ok', 'ok'], end: 'unhealthy>healthy' },
    { why: 'a stopped unit is unhealthy at once', script: ['ok', 'ok', 'inactive'], end: 'unhealthy' },
    { why: 'a failed unit is unhealthy at once', script: ['ok', 'ok', 'failed'], end: 'unhealthy' },
    { why: 'activating is unknown', script: ['ok', 'ok', 'inactive', 'activating'], end: 'unknown' },
    { why: 'restart (new pid) resets', script: ['ok', 'ok', 'active:11'], end: 'unknown' },
    { why: 'new hash resets', script: ['ok', 'ok', 'hash:h2'], end: 'unknown' },
    { why: 'new hash, old process still running: its checks do not count', script: ['hash:h2', 'ok', 'ok', 'ok'], end: 'unknown' },
    { why: 'new hash, then the restart: checks count again', script: ['hash:h2', 'active:11', 'ok', 'ok'], end: 'healthy' },
    { why: 'new hash, old process stops, new one starts', script: ['hash:h2', 'inactive', 'activating', 'active:12', 'ok', 'ok'], end: 'healthy' },
    { why: 'results from before a restart are dropped', script: ['active:11', 'stale-ok', 'stale-ok'], end: 'unknown' },
    { why: 'results while down are dropped', script: ['inactive', 'ok', 'ok'], end: 'unhealthy' },
    { why: 'service check switched to none: healthy', script: ['none'], end: 'healthy' },
    { why: 'none back to a probe: unknown until checks pass', script: ['none', 'http'], end: 'unknown' },
    { why: 'check unknown: stays unknown', script: ['unknown-check', 'ok', 'ok'], end: 'unknown' },
  ])('$why', ({ script, end }) => {
    const { s } = run(script);
    expect(s.status).toBe(end.split('>').pop());
  });

  it.each([
    { why: 'healthy once active', start: 'active:10', script: [], end: 'healthy' },
    { why: 'unknown while activating, healthy when active', start: 'activating', script: ['active:12'], end: 'healthy' },
    { why: 'unhealthy when stopped', start: 'active:10', script: ['inactive'], end: 'unhealthy' },
    { why: 'check results are ignored', start: 'inactive', script: ['ok', 'ok'], end: 'unhealthy' },
    { why: 'healthy again after a restart', start: 'active:10', script: ['inactive', 'active:12'], end: 'healthy' },
    { why: 'a new hash waits for the restart', start: 'active:10', script: ['hash:h2'], end: 'unknown' },
    { why: 'a new hash, restarted: healthy', start: 'active:10', script: ['hash:h2', 'active:13'], end: 'healthy' },
  ])('type none: $why', ({ start, script, end }) => {
    const { s } = run(script, none, start);
    expect(s.status).toBe(end);
    expect(wantsChecks(s)).toBe(false);
  });

  it('publishes only changes: ok results after healthy write nothing', () => {
    const { trail } = run(['ok', 'ok', 'ok', 'ok', 'fail', 'ok']);
    expect(trail.map((t) => t.published)).toEqual([false, true, false, false, false, false]);
  });

  it('a restart moves since forward and starts over', () => {
    const { trail } = run(['ok', 'ok', 'active:11', 'ok', 'ok']);
    expect(trail.map((t) => t.status)).toEqual(['unknown', 'healthy', 'unknown', 'unknown', 'healthy']);
    expect(trail[2]!.since).toBeGreaterThan(trail[1]!.since);
    expect(trail[4]!.since).toBeGreaterThan(trail[2]!.since);
  });

  it('healthy since is the moment the threshold was reached', () => {
    const { trail } = run(['fail', 'ok', 'ok']);
    expect(trail[2]).toEqual({ status: 'healthy', since: 1300, published: true });
  });
});

describe('taking over a previous record', () => {
  const prev = { unit: 'app@1.service', machine: 'm1', hash: 'h1', status: 'healthy' as const, since: new Date(500).toISOString(), checkedAt: new Date(900).toISOString(), consecutive: 3, message: 'HTTP 200', mainPid: 10 };
  const start = (over: Partial<typeof prev>, activeState = 'active', mainPid = 10, check: HealthCheck | undefined = http) =>
    startTracking({ unit: 'app@1.service', machine: 'm1', check, hash: 'h1', activeState, mainPid, at: 1000, previous: { ...prev, ...over } });

  it.each([
    { why: 'same hash, same PID, running: carried on', over: {}, status: 'healthy', since: 500 },
    { why: 'an unhealthy one stays unhealthy', over: { status: 'unhealthy' as never, message: 'HTTP 503' }, status: 'unhealthy', since: 500 },
    { why: 'another PID: the instance restarted', over: { mainPid: 11 }, status: 'unknown', since: 1000 },
    { why: 'no PID in the old record', over: { mainPid: undefined }, status: 'unknown', since: 1000 },
    { why: 'another hash', over: { hash: 'h0' }, status: 'unknown', since: 1000 },
    { why: 'another machine', over: { machine: 'm2' }, status: 'unknown', since: 1000 },
    { why: 'a since in the future', over: { since: new Date(5000).toISOString() }, status: 'unknown', since: 1000 },
  ])('$why', ({ over, status, since }) => {
    const r = start(over);
    expect(r.state.status).toBe(status);
    expect(r.state.since).toBe(since);
    expect(r.record?.mainPid).toBe(10);
  });

  it('a stopped unit is not carried on', () => {
    expect(start({}, 'inactive', 0).state.status).toBe('unhealthy');
  });

  it('keeps counting: failureThreshold failures after takeover make it unhealthy', () => {
    let s = start({}).state;
    for (let i = 0; i < 2; i++) s = step(s, { type: 'result', at: 1100 + i, ok: false, message: 'HTTP 503', epoch: s.epoch }).state;
    expect(s.status).toBe('unhealthy');
  });
});

const cmds = fc.constantFrom('ok', 'fail', 'stale-ok', 'active', 'active:11', 'active:12', 'activating', 'inactive', 'failed', 'deactivating', 'hash:h1', 'hash:h2', 'none', 'http', 'unknown-check');

describe('health tracker properties', () => {
  it('since never goes backwards, even when the clock does', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(cmds, fc.integer({ min: -500, max: 1000 })), { maxLength: 60 }), (script) => {
        let s = startTracking({ unit: 'u', machine: 'm', check: http, hash: 'h1', activeState: 'active', mainPid: 10, at: 5000 }).state;
        let t = 5000;
        for (const [cmd, dt] of script) {
          t += dt;
          const before = s.since;
          s = step(s, input(s, cmd, t)).state;
          expect(s.since).toBeGreaterThanOrEqual(before);
        }
      }),
      { numRuns: 300 },
    );
  });

  // Becoming healthy takes `threshold` consecutive oks; staying healthy through a
  // failure below `failureThreshold` is hysteresis, so only transitions are judged.
  it('a probe type becomes healthy only after threshold consecutive ok results since the last reset', () => {
    fc.assert(
      fc.property(fc.array(cmds, { maxLength: 60 }), fc.integer({ min: 1, max: 4 }), (script, threshold) => {
        const check = { ...http, threshold };
        let s = startTracking({ unit: 'u', machine: 'm', check, hash: 'h1', activeState: 'active', mainPid: 10, at: 0 }).state;
        let t = 0;
        let streak = 0;
        for (const cmd of script.filter((c) => c !== 'none' && c !== 'http' && c !== 'unknown-check')) {
          const epoch = s.epoch;
          const wasRunning = wantsChecks(s);
          const was = s.status;
          s = step(s, input(s, cmd, ++t)).state;
          if (s.epoch !== epoch || !wantsChecks(s)) streak = 0;
          else if (cmd === 'ok' && wasRunning) streak++;
          else if (cmd === 'fail' && wasRunning) streak = 0;
          if (s.status === 'healthy' && was !== 'healthy' && cmd === 'ok') expect(streak).toBeGreaterThanOrEqual(threshold);
          if (s.status === 'healthy') expect(wantsChecks(s)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a restart or a new hash always resets to unknown (or unhealthy when down) with since = that moment', () => {
    fc.assert(
      fc.property(fc.array(cmds, { maxLength: 30 }), fc.constantFrom('active:99', 'hash:h9'), fc.boolean(), (prefix, restart, useNone) => {
        let s = startTracking({ unit: 'u', machine: 'm', check: useNone ? none : http, hash: 'h1', activeState: 'active', mainPid: 10, at: 0 }).state;
        let t = 0;
        for (const cmd of prefix.filter((c) => c !== 'none' && c !== 'http' && c !== 'unknown-check')) s = step(s, input(s, cmd, ++t)).state;
        // a first PID seen for a running unit is not a restart
        if (restart === 'active:99' && s.activeState !== 'inactive' && s.activeState !== 'failed' && s.activeState !== 'deactivating' && (s.mainPid === 99 || s.mainPid === undefined)) return;
        const down = livenessOf(s.activeState) === 'down';
        const r = step(s, input(s, restart, ++t));
        // a new hash: unhealthy while down, else unknown until the old process is replaced
        if (restart === 'hash:h9') expect(r.state.status).toBe(down ? 'unhealthy' : 'unknown');
        else expect(r.state.status).toBe(useNone ? 'healthy' : 'unknown');
        expect(r.state.since).toBe(t);
        expect(r.state.epoch).toBe(s.epoch + 1);
        expect(r.record?.since).toBe(new Date(t).toISOString());
      }),
      { numRuns: 300 },
    );
  });
});
