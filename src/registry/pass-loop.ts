/**
 * The pass loop every fleetx daemon runs (engine, rollout controller, agent
 * reconcile, presence syncer): "something may have changed, look again".
 *
 * - kick(reason) marks the loop dirty; a pass starts after `debounceMs`, so
 *   a burst of watch events becomes one pass;
 * - passes never overlap: kicks during a pass cause exactly one more pass
 *   after it (when the earliest of them asked for it), and a pass starts at
 *   least `minIntervalMs` after the previous one ended;
 * - a pass that fails (returns 'retry' or throws) is retried after a backoff
 *   with jitter (registry/backoff.ts) that grows while failures go on; kicks
 *   meanwhile ride on that retry rather than cutting it short, so a loop
 *   whose every pass fails can never spin;
 * - with `settle`, a pass during which a burst of kicks came (a bulk
 *   submission still under way) is followed by one that waits for the burst
 *   to go quiet, within a bound, instead of one more per pass length;
 * - a pass that returns 'stop' ends the loop (e.g. the leader was fenced out);
 * - stop() ends the loop and waits for the running pass.
 */
import { Backoff, type BackoffOptions } from './backoff.js';

export type PassOutcome = 'ok' | 'retry' | 'stop';

export type PassLoopState = 'idle' | 'scheduled' | 'running' | 'backoff' | 'stopped';

export interface PassLoopOptions {
  /** wait after a kick before the pass starts, ms (default 0) */
  debounceMs?: number;
  /** least time from the end of one pass to the start of the next, ms (default 0) */
  minIntervalMs?: number;
  /** retry delays after failed passes (default 250 ms doubling up to 5 s, with jitter) */
  backoff?: BackoffOptions;
  /** a pass threw (it is retried like 'retry') */
  problem?: (err: unknown) => void;
  /** monotonic clock, ms (default performance.now) */
  now?: () => number;
  /**
   * After a pass during which at least `afterKicks` kicks came, the next
   * pass starts once no kick came for `quietMs`, and at most `maxMs` after
   * that pass ended. Kicks that trickle in start passes as before. Default:
   * none.
   */
  settle?: { afterKicks: number; quietMs: number; maxMs: number };
}

/** At most this many trigger reasons are kept per pass (they are for reports). */
const MAX_REASONS = 20;

export class PassLoop {
  private current: PassLoopState = 'idle';
  private timer: NodeJS.Timeout | undefined;
  private due = Infinity;
  private running: Promise<void> | undefined;
  private dirty = false;
  /** while a pass runs: when the earliest kick since it started wants the next one */
  private wantAt = Infinity;
  private reasons: string[] = [];
  private lastEnd = -Infinity;
  /** kicks since the running pass started, and when the last kick came */
  private kicksInPass = 0;
  private lastKickAt = -Infinity;
  /** while settling after a burst: the latest the next pass may start */
  private settleUntil = Infinity;
  private readonly retries: Backoff;
  private readonly now: () => number;

  constructor(
    private readonly pass: (reasons: string[]) => Promise<PassOutcome>,
    private readonly o: PassLoopOptions = {},
  ) {
    this.retries = new Backoff(o.backoff ?? { initialMs: 250, maxMs: 5000 });
    this.now = o.now ?? (() => performance.now());
  }

  get state(): PassLoopState {
    return this.current;
  }

  /** Consecutive failed passes (0 after a good one). */
  get failures(): number {
    return this.retries.attempts;
  }

  /** Asks for a pass `delayMs` from now (default: the debounce), unless one is due sooner. */
  kick(reason: string, delayMs = this.o.debounceMs ?? 0): void {
    if (this.current === 'stopped') return;
    if (this.reasons.length < MAX_REASONS) this.reasons.push(reason);
    this.dirty = true;
    this.lastKickAt = this.now();
    if (this.current === 'running') {
      this.kicksInPass++;
      this.wantAt = Math.min(this.wantAt, this.now() + delayMs);
    }
    if (this.current === 'scheduled' && this.settleUntil !== Infinity) return this.settleLater();
    if (this.current === 'running' || this.current === 'backoff') return;
    this.schedule(delayMs, 'scheduled');
  }

  /** Ends the loop: no pass starts any more; waits for the running one. */
  async stop(): Promise<void> {
    this.current = 'stopped';
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(delayMs: number, state: 'scheduled' | 'backoff'): void {
    const wait = Math.max(delayMs, this.lastEnd + (this.o.minIntervalMs ?? 0) - this.now(), 0);
    const due = this.now() + wait;
    this.current = state;
    if (this.timer !== undefined && this.due <= due) return;
    clearTimeout(this.timer);
    this.due = due;
    this.timer = setTimeout(() => this.fire(), wait);
  }

  /** The burst goes on: the pass waits for it to be quiet (never past settleUntil). */
  private settleLater(): void {
    const due = Math.max(Math.min(this.settleUntil, this.lastKickAt + this.o.settle!.quietMs), this.lastEnd + (this.o.minIntervalMs ?? 0));
    clearTimeout(this.timer);
    this.due = due;
    this.timer = setTimeout(() => this.fire(), Math.max(0, due - this.now()));
  }

  private fire(): void {
    this.timer = undefined;
    this.due = Infinity;
    this.settleUntil = Infinity;
    if (this.current === 'stopped') return;
    const reasons = this.reasons;
    this.reasons = [];
    this.dirty = false;
    this.wantAt = Infinity;
    this.current = 'running';
    this.running = this.pass(reasons)
      .catch((e: unknown) => {
        this.o.problem?.(e);
        return 'retry' as const;
      })
      .then((outcome) => this.after(outcome));
  }

  private after(outcome: PassOutcome): void {
    this.running = undefined;
    this.lastEnd = this.now();
    const burst = this.o.settle !== undefined && this.kicksInPass >= this.o.settle.afterKicks;
    this.kicksInPass = 0;
    if (this.current === 'stopped') return;
    if (outcome === 'stop') {
      this.current = 'stopped';
      return;
    }
    if (outcome === 'retry') {
      this.reasons.unshift('retry after a failed pass');
      this.schedule(this.retries.next(), 'backoff');
      return;
    }
    this.retries.reset();
    this.current = 'idle';
    if (!this.dirty) return;
    if (burst) {
      this.current = 'scheduled';
      this.settleUntil = this.now() + this.o.settle!.maxMs;
      this.settleLater();
    } else this.schedule(this.wantAt - this.now(), 'scheduled');
  }
}
