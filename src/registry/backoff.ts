/**
 * Backoff with jitter for every retry loop that talks to etcd (watches,
 * passes, registration, election).
 *
 * "Equal jitter": the n-th consecutive failure waits a random time in
 * [d/2, d] where d = min(maxMs, initialMs * 2^n). The random half spreads
 * agents that failed at the same moment (an etcd outage ends for all of them
 * at once) so they do not retry in lockstep; the fixed half keeps a floor, so
 * a loop that fails at once can never spin. (cockatiel's generators draw
 * from Math.random inside; this one takes `random` so tests can pin it.)
 */

export interface BackoffOptions {
  /** the first delay's upper bound, ms */
  initialMs: number;
  /** the largest delay, ms */
  maxMs: number;
  /** [0, 1) source; default Math.random */
  random?: () => number;
}

/** The delay after `failures` consecutive failures (1 = the first), pure given `random`. */
export function backoffDelay(failures: number, o: BackoffOptions): number {
  const n = Math.max(0, Math.min(failures - 1, 30));
  const d = Math.min(o.maxMs, o.initialMs * 2 ** n);
  const r = (o.random ?? Math.random)();
  return Math.round(d / 2 + (d / 2) * Math.min(Math.max(r, 0), 1));
}

/** Counts consecutive failures: next() after each one, reset() after a success. */
export class Backoff {
  private failures = 0;

  constructor(private readonly o: BackoffOptions) {}

  /** Consecutive failures so far. */
  get attempts(): number {
    return this.failures;
  }

  /** Records a failure and returns how long to wait before the next attempt, ms. */
  next(): number {
    this.failures++;
    return backoffDelay(this.failures, this.o);
  }

  reset(): void {
    this.failures = 0;
  }
}

/** Sleeps ms, or less when `signal` aborts first (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
