import { describe, expect, it } from 'vitest';
import { rolloutOverhead, type PhaseEvent } from '../../src/demo/overhead.js';

const cfg = { startDelayMs: 1500, healthIntervalMs: 500, healthThreshold: 2, minHealthyMs: 1000 };
const t = (ms: number) => new Date(Date.UTC(2026, 10, 22) + ms).toISOString();
const ev = (unit: string, phase: string, ms: number): PhaseEvent => ({ unit, phase, time: t(ms) });

describe('rolloutOverhead', () => {
  it('sums measured drain/stop/start and configured health waits; the rest is overhead', () => {
    const events = [
      ev('a', 'pending', 0), ev('a', 'leaving', 0), ev('a', 'draining', 100), ev('a', 'stopping', 300), ev('a', 'starting', 500),
      ev('a', 'checking', 700), ev('a', 'joining', 4500), ev('a', 'done', 5000),
      ev('b', 'pending', 0), ev('b', 'leaving', 5100), ev('b', 'stopping', 5200), ev('b', 'starting', 5300), ev('b', 'checking', 5400),
      ev('b', 'joining', 9000), ev('b', 'done', 9500),
    ];
    const r = rolloutOverhead(events, 10_000, cfg);
    // a: 200 + 200 + 200 + 3500; b: 0 + 100 + 100 + 3500
    expect(r.instances.map((i) => i.unavoidableMs)).toEqual([4100, 3700]);
    expect(r.unavoidableMs).toBe(7800);
    expect(r.ratio).toBeCloseTo(10_000 / 7800);
    expect(r.overheadMs).toEqual({ leaving: 200, checkingExtra: 300 + 100, joining: 1000, gaps: 10_000 - 5000 - 4400 });
  });

  it('phases passed within one step count zero, events in any order', () => {
    const events = [ev('a', 'done', 4000), ev('a', 'checking', 0), ev('a', 'joining', 3500)];
    const r = rolloutOverhead(events, 4000, cfg);
    expect(r.instances[0]!.phases).toMatchObject({ leaving: 0, draining: 0, stopping: 0, starting: 0, checking: 3500, joining: 500 });
    expect(r.ratio).toBeCloseTo(4000 / 3500);
  });
});
