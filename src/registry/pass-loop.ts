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
    if (this.current === 'running') this.wantAt = Math.min(this.wantAt, this.now() + delayMs);
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

  private fire(): void {
    this.timer = undefined;
    this.due = Infinity;
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
    if (this.dirty) this.schedule(this.wantAt - this.now(), 'scheduled');
  }
}
