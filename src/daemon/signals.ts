/** When a daemon must stop: shared by the host daemon and the presence daemon. */
import type { Logger } from 'pino';

/**
 * Resolves when the daemon must stop: when `signal` aborts (tests, embedding),
 * or else on the process's first SIGTERM or SIGINT.
 */
export async function waitForStop(signal: AbortSignal | undefined, log: Logger): Promise<void> {
  if (signal) {
    if (signal.aborted) return;
    await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    return;
  }
  await new Promise<void>((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      log.info({ signal: sig }, 'signal received');
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve();
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}
