/** The follow display: a sequence of rollout records -> the lines each output mode prints. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { changes, outcome, plainLine, ttyFrame } from '../../src/cli/follow/events.js';
import { lineRenderer, pickRenderer } from '../../src/cli/follow/render.js';
import { bufferIo } from '../../src/cli/io.js';
import { exitCodeOf } from '../../src/errors/errors.js';
import type { InstancePhase, RolloutRecord } from '../../src/rollout/types.js';

const T = (s: number) => new Date(Date.parse('2026-11-22T00:40:00Z') + s * 1000).toISOString();
const base: RolloutRecord = {
  id: 'r1', service: 'app', template: 'app@.service', kind: 'deploy', state: 'running', toRevision: 4, toHash: 'h4',
  autoRevert: true, presence: true, policy: { maxUnavailable: 1, surge: 0, minHealthyMs: 1000, deadlineMs: 60_000, autoRevert: true },
  holder: { user: 'alice', host: 'ci-1' }, createdAt: T(0), updatedAt: T(0),
  instances: {
    'app@1.service': { unit: 'app@1.service', phase: 'pending', since: T(0), targetHash: 'h4' },
    'app@2.service': { unit: 'app@2.service', phase: 'pending', since: T(0), targetHash: 'h4' },
  },
};
function step(r: RolloutRecord, at: number, unit: string, phase: InstancePhase, extra: object = {}): RolloutRecord {
  return { ...r, updatedAt: T(at), instances: { ...r.instances, [unit]: { ...r.instances[unit]!, phase, since: T(at), ...extra } } };
}

const s1 = step(base, 1, 'app@1.service', 'leaving');
const s2 = step(s1, 3, 'app@1.service', 'draining');
const s3 = step(s2, 3, 'app@1.service', 'draining'); // no change: nothing printed
const s4 = step(step(s3, 9, 'app@1.service', 'done'), 9, 'app@2.service', 'leaving');
const s5 = { ...step(s4, 20, 'app@2.service', 'failed', { error: 'not healthy after 60s' }), state: 'reverting' as const, message: 'reverting to revision 3: app@2.service not healthy after 60s' };
const end = { ...s5, state: 'failed' as const, finishedAt: T(40), updatedAt: T(40), message: 'reverted to revision 3 after: app@2.service not healthy after 60s' };

describe('plain lines', () => {
  it('prints one timestamped line per change', () => {
    const io = bufferIo();
    const r = lineRenderer(io, plainLine);
    for (const rec of [base, s1, s2, s3, s4, s5, end]) r.show(rec);
    expect(io.out).toEqual([
      '2026-11-22T00:40:00Z deploy of app to revision 4 running',
      '2026-11-22T00:40:00Z app@1.service pending',
      '2026-11-22T00:40:00Z app@2.service pending',
      '2026-11-22T00:40:01Z app@1.service leaving',
      '2026-11-22T00:40:03Z app@1.service draining',
      '2026-11-22T00:40:09Z app@1.service done',
      '2026-11-22T00:40:09Z app@2.service leaving',
      '2026-11-22T00:40:20Z deploy of app to revision 4 reverting: reverting to revision 3: app@2.service not healthy after 60s',
      '2026-11-22T00:40:20Z app@2.service failed: not healthy after 60s',
      '2026-11-22T00:40:40Z deploy of app to revision 4 failed: reverted to revision 3 after: app@2.service not healthy after 60s',
    ]);
  });

  it('a rolling restart is named as such; notes are shown', () => {
    const r = { ...base, kind: 'restart' as const, toRevision: undefined };
    const lines = changes(undefined, step(r, 2, 'app@1.service', 'done', { note: 'destroyed meanwhile' })).map(plainLine);
    expect(lines[0]).toBe('2026-11-22T00:40:02Z rolling restart of app running');
    expect(lines).toContain('2026-11-22T00:40:02Z app@1.service done (destroyed meanwhile)');
  });

  it('property: replaying any prefix of the sequence prints each change exactly once', () => {
    const seq = [base, s1, s2, s3, s4, s5, end];
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: seq.length - 1 }), { maxLength: 20 }), (idx) => {
      // records arrive in order, some repeated (a watch re-read after an error)
      const arrivals = [...idx].sort((a, b) => a - b).map((i) => seq[i]!);
      const io = bufferIo();
      const r = lineRenderer(io, plainLine);
      for (const a of arrivals) r.show(a);
      expect(new Set(io.out).size).toBe(io.out.length);
    }));
  });
});

describe('JSON lines', () => {
  it('one object per change', () => {
    const io = bufferIo();
    const r = pickRenderer(io, 'json');
    r.show(base);
    r.show(s1);
    r.show(end);
    r.close();
    const objs = io.out.map((l) => JSON.parse(l));
    expect(objs[0]).toEqual({ schema: 'fleetx/rollout-event/v1', time: T(0), service: 'app', rollout: 'r1', type: 'state', state: 'running', kind: 'deploy', toRevision: 4 });
    expect(objs[3]).toEqual({ schema: 'fleetx/rollout-event/v1', time: T(1), service: 'app', rollout: 'r1', type: 'instance', unit: 'app@1.service', phase: 'leaving' });
    expect(objs.filter((o) => o.type === 'state').at(-1)).toMatchObject({ type: 'state', state: 'failed', time: T(40), message: expect.stringContaining('reverted to revision 3') });
  });
});

describe('TTY frame', () => {
  it('a header and one line per instance with its phase and time in it', () => {
    expect(ttyFrame(s4, Date.parse(T(12)))).toEqual([
      'deploy of app to revision 4: running (1/2 done)',
      '  ✔ app@1.service  done',
      '  › app@2.service  leaving   3s',
    ]);
    expect(ttyFrame(end, Date.parse(T(41))).slice(-2)).toEqual([
      '  ✖ app@2.service  failed    21s  not healthy after 60s',
      '  reverted to revision 3 after: app@2.service not healthy after 60s',
    ]);
  });

  it('marks surge instances and leaves them out of the done count', () => {
    const withSurge = { ...s4, instances: { ...s4.instances, 'app@3.service': { unit: 'app@3.service', phase: 'serving' as const, since: T(10), targetHash: 'x', surge: true } } };
    expect(ttyFrame(withSurge, Date.parse(T(12)))).toEqual([
      'deploy of app to revision 4: running (1/2 done)',
      '  ✔ app@1.service  done',
      '  › app@2.service  leaving   3s',
      '  › app@3.service  serving   2s  (surge)',
    ]);
  });

  it('redraws in place on a terminal', () => {
    const io = { ...bufferIo(), isTTY: true };
    const r = pickRenderer(io, 'text', () => Date.parse(T(5)));
    r.show(base);
    r.show(s1);
    r.close();
    expect(io.out[0]!.startsWith('deploy of app')).toBe(true);
    expect(io.out[1]!.startsWith('\x1b[3A\x1b[J')).toBe(true);
  });

  it.each([['true'], ['1'], ['yes']])('CI=%s: timestamped lines and no escape codes even on a terminal', (ci) => {
    const io = { ...bufferIo({ CI: ci }), isTTY: true };
    const r = pickRenderer(io, 'text', () => Date.parse(T(5)));
    for (const rec of [base, s1, s2, s4, s5, end]) r.show(rec);
    r.close();
    expect(io.out.join('\n')).not.toMatch(/\x1b/);
    expect(io.out.every((l) => /^2026-11-22T00:40:\d\dZ /.test(l))).toBe(true);
  });

  it('CI=false keeps the live view', () => {
    const io = { ...bufferIo({ CI: 'false' }), isTTY: true };
    const r = pickRenderer(io, 'text', () => Date.parse(T(5)));
    r.show(base);
    r.show(s1);
    r.close();
    expect(io.out[1]!.startsWith('\x1b[3A\x1b[J')).toBe(true);
  });
});

describe('outcome: the exit a pipeline branches on', () => {
  const failedOne = { ...base.instances['app@1.service']!, phase: 'failed' as const, error: 'not healthy' };
  it.each([
    ['succeeded', base, 'succeeded', undefined, undefined, 0],
    ['failed, no instance left failed: reverted', base, 'failed', 'the deploy of app to revision 4 failed and was reverted: boom', 'reverted', 7],
    ['failed with a failed instance: not reverted', { ...base, instances: { ...base.instances, 'app@1.service': failedOne } }, 'failed', 'the deploy of app to revision 4 failed: boom', 'failed', 1],
    ['aborted', base, 'aborted', 'the deploy of app to revision 4 was aborted: boom', 'aborted', 8],
  ] as const)('%s', (_, rec, state, message, kind, code) => {
    const err = outcome({ ...rec, state, message: 'boom' });
    expect(err?.message).toBe(message);
    expect(err?.kind).toBe(kind);
    expect(err ? exitCodeOf(err) : 0).toBe(code);
  });
});
