import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay } from '../../src/registry/backoff.js';

const o = { initialMs: 250, maxMs: 5000 };

describe('backoffDelay', () => {
  it.each([
    ['first failure, lowest draw', 1, 0, 125],
    ['first failure, highest draw', 1, 0.999999, 250],
    ['third failure doubles twice', 3, 0, 500],
    ['capped at maxMs', 10, 0.999999, 5000],
    ['capped floor is half of maxMs', 50, 0, 2500],
  ])('%s', (_what, failures, r, want) => {
    expect(backoffDelay(failures, { ...o, random: () => r })).toBe(want);
  });

  it('stays within [d/2, d] and never exceeds maxMs, for any draw', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, r) => {
      const d = Math.min(o.maxMs, o.initialMs * 2 ** (n - 1));
      const got = backoffDelay(n, { ...o, random: () => r });
      return got >= Math.floor(d / 2) && got <= d;
    }));
  });

  it('spreads agents that failed at the same moment (different draws, different delays)', () => {
    const draws = [0.05, 0.35, 0.65, 0.95];
    const delays = draws.map((r) => backoffDelay(4, { ...o, random: () => r }));
    expect(new Set(delays).size).toBe(draws.length);
  });
});

describe('Backoff', () => {
  it('grows with consecutive failures and starts over after reset()', () => {
    const b = new Backoff({ ...o, random: () => 0.999999 });
    expect([b.next(), b.next(), b.next()]).toEqual([250, 500, 1000]);
    expect(b.attempts).toBe(3);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(250);
  });
});
