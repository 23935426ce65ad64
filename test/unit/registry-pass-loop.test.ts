/**
 * PassLoop with vitest's fake timers: the assertions are about order and
 * counts of passes, not about wall-clock time.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PassLoop, type PassOutcome } from '../../src/registry/pass-loop.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** A pass function that records its reasons and answers from a script. */
function recorder(outcomes: PassOutcome[] = []) {
  const passes: string[][] = [];
  let release: (() => void) | undefined;
  let hold = false;
  const fn = async (reasons: string[]): Promise<PassOutcome> => {
    passes.push(reasons);
    if (hold) await new Promise<void>((r) => (release = r));
    return outcomes.shift() ?? 'ok';
  };
  return {
    passes,
    fn,
    holdNext: () => void (hold = true),
    finish: () => {
      hold = false;
      release?.();
    },
  };
}

const opts = { now: () => Date.now(), backoff: { initialMs: 100, maxMs: 1000, random: () => 0.999999 } };

describe('PassLoop', () => {
  it('turns a burst of kicks within the debounce into one pass with every reason', async () => {
    const r = recorder();
    const loop = new PassLoop(r.fn, { ...opts, debounceMs: 50 });
    loop.kick('a');
    loop.kick('b');
    await vi.advanceTimersByTimeAsync(10);
    loop.kick('c');
    await vi.advanceTimersByTimeAsync(100);
    expect(r.passes).toEqual([['a', 'b', 'c']]);
    expect(loop.state).toBe('idle');
  });

  it('never overlaps passes: kicks during a pass cause exactly one more pass after it', async () => {
    const r = recorder();
    const loop = new PassLoop(r.fn, opts);
    r.holdNext();
    loop.kick('first');
    await vi.advanceTimersByTimeAsync(1);
    expect(loop.state).toBe('running');
    loop.kick('during-1');
    loop.kick('during-2');
    await vi.advanceTimersByTimeAsync(100);
    expect(r.passes).toHaveLength(1);
    r.finish();
    await vi.advanceTimersByTimeAsync(100);
    expect(r.passes).toEqual([['first'], ['during-1', 'during-2']]);
  });

  it('keeps minIntervalMs between the end of one pass and the start of the next', async () => {
    const r = recorder();
    const loop = new PassLoop(r.fn, { ...opts, minIntervalMs: 500 });
    loop.kick('a');
    await vi.advanceTimersByTimeAsync(1);
    loop.kick('b');
    await vi.advanceTimersByTimeAsync(400);
    expect(r.passes).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(r.passes).toHaveLength(2);
  });

  it('retries a failed pass after a growing backoff; kicks meanwhile ride on the retry', async () => {
    const r = recorder(['retry', 'retry', 'ok']);
    const loop = new PassLoop(r.fn, opts);
    loop.kick('a');
    await vi.advanceTimersByTimeAsync(1);
    expect(loop.state).toBe('backoff');
    expect(loop.failures).toBe(1);
    loop.kick('event during backoff', 0);
    await vi.advanceTimersByTimeAsync(50);
    expect(r.passes).toHaveLength(1); // the kick did not cut the backoff short
    await vi.advanceTimersByTimeAsync(60); // first delay: 100
    expect(r.passes).toHaveLength(2);
    expect(r.passes[1]).toEqual(['retry after a failed pass', 'event during backoff']);
    await vi.advanceTimersByTimeAsync(150);
    expect(r.passes).toHaveLength(2); // second delay: 200
    await vi.advanceTimersByTimeAsync(60);
    expect(r.passes).toHaveLength(3);
    expect(loop.failures).toBe(0);
    expect(loop.state).toBe('idle');
  });

  it('treats a throwing pass like a failed one and reports the error', async () => {
    const problems: unknown[] = [];
    let calls = 0;
    const loop = new PassLoop(async () => {
      calls++;
      if (calls === 1) throw new Error('boom');
      return 'ok';
    }, { ...opts, problem: (e) => problems.push(e) });
    loop.kick('a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toBe(2);
    expect(problems).toHaveLength(1);
  });

  it('ends on a pass that returns stop: later kicks start nothing', async () => {
    const r = recorder(['stop']);
    const loop = new PassLoop(r.fn, opts);
    loop.kick('a');
    await vi.advanceTimersByTimeAsync(1);
    loop.kick('b');
    await vi.advanceTimersByTimeAsync(1000);
    expect(r.passes).toHaveLength(1);
    expect(loop.state).toBe('stopped');
  });

  it('stop() waits for the running pass and cancels the scheduled one', async () => {
    const r = recorder();
    const loop = new PassLoop(r.fn, opts);
    r.holdNext();
    loop.kick('a');
    await vi.advanceTimersByTimeAsync(1);
    loop.kick('b');
    let stopped = false;
    const s = loop.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(10);
    expect(stopped).toBe(false);
    r.finish();
    await s;
    await vi.advanceTimersByTimeAsync(1000);
    expect(r.passes).toEqual([['a']]);
    expect(loop.state).toBe('stopped');
  });
});

describe('PassLoop kicks with a delay', () => {
  it('a kick during a pass asking for a later pass gets it then, not at once', async () => {
    let loop!: PassLoop;
    const passes: string[][] = [];
    loop = new PassLoop(async (reasons) => {
      passes.push(reasons);
      if (passes.length === 1) loop.kick('recheck later', 1000);
      return 'ok';
    }, opts);
    loop.kick('a');
    await vi.advanceTimersByTimeAsync(900);
    expect(passes).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(passes).toEqual([['a'], ['recheck later']]);
  });
  describe('settle after a burst', () => {
    const settle = { afterKicks: 3, quietMs: 50, maxMs: 400 };
    /** A pass held open while `n` kicks arrive, then let go. */
    async function burstDuringPass(loop: PassLoop, r: ReturnType<typeof recorder>, n: number) {
      r.holdNext();
      loop.kick('first');
      await vi.advanceTimersByTimeAsync(1);
      for (let i = 0; i < n; i++) loop.kick(`during-${i}`);
      r.finish();
      await vi.advanceTimersByTimeAsync(0);
    }

    it('waits until the kicks pause for quietMs before the next pass', async () => {
      const r = recorder();
      const loop = new PassLoop(r.fn, { ...opts, settle });
      await burstDuringPass(loop, r, 3);
      for (let t = 0; t < 5; t++) {
        await vi.advanceTimersByTimeAsync(30);
        loop.kick(`still-${t}`); // the burst goes on: 30 ms apart, never quiet for 50
      }
      expect(r.passes).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(49);
      expect(r.passes).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(2);
      expect(r.passes).toHaveLength(2);
      expect(r.passes[1]).toEqual(['during-0', 'during-1', 'during-2', 'still-0', 'still-1', 'still-2', 'still-3', 'still-4']);
    });

    it('never waits longer than maxMs after the pass, however long the burst', async () => {
      const r = recorder();
      const loop = new PassLoop(r.fn, { ...opts, settle });
      await burstDuringPass(loop, r, 3);
      const passEnded = Date.now();
      for (let t = 0; t < 30 && r.passes.length === 1; t++) {
        await vi.advanceTimersByTimeAsync(20);
        loop.kick('more');
      }
      expect(r.passes).toHaveLength(2);
      expect(Date.now() - passEnded).toBeGreaterThanOrEqual(400);
      expect(Date.now() - passEnded).toBeLessThanOrEqual(400 + 20);
    });

    it('a few kicks during a pass start the next pass at once, as without settle', async () => {
      const r = recorder();
      const loop = new PassLoop(r.fn, { ...opts, settle });
      await burstDuringPass(loop, r, 2);
      await vi.advanceTimersByTimeAsync(1);
      expect(r.passes).toHaveLength(2);
    });
  });
});
