/**
 * Waiting for an outcome in tests that drive real processes (etcd, agents,
 * systemd, HAProxy): poll a check until it holds. The timeout only keeps a
 * stuck test from hanging; it is generous on purpose and never an
 * assertion about speed (timings belong in bench/).
 *
 *   const rec = await waitFor('web@1 healthy', async () => (await health('web@1'))?.status === 'healthy' && rec);
 */

export interface WaitOptions {
  /** how long before giving up (default 20 s): a bound for a stuck test, not a speed limit */
  timeoutMs?: number;
  /** pause between checks (default 50 ms) */
  intervalMs?: number;
  /** more to say when it times out: recent problems, a journal's tail */
  explain?: () => string | Promise<string>;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What a check returns: a value when it holds; undefined, null or false while it does not yet. */
export type Check<T> = () => T | undefined | null | false | Promise<T | undefined | null | false>;

/**
 * Polls `check` until it returns something other than undefined, null or
 * false, and returns that. A check that throws counts as "not yet" (the
 * thing may not exist yet); its last error is named when time runs out.
 * A number as third argument is the timeout.
 */
export async function waitFor<T>(what: string, check: Check<T>, opts: WaitOptions | number = {}): Promise<T> {
  const { timeoutMs = 20_000, intervalMs = 50, explain } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > end) {
      const cause = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      const more = explain ? `\n${await Promise.resolve().then(explain).catch((e: unknown) => `(explain failed: ${String(e)})`)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}${more}`);
    }
    await sleep(intervalMs);
  }
}

/** A waitFor with defaults for a whole file, e.g. an `explain` that prints the problems seen so far. */
export function waitForWith(defaults: WaitOptions) {
  return <T>(what: string, check: Check<T>, opts: WaitOptions | number = {}): Promise<T> =>
    waitFor(what, check, { ...defaults, ...(typeof opts === 'number' ? { timeoutMs: opts } : opts) });
}
