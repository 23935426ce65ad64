/** Small helpers for the agent's loops: a stop signal, interruptible sleep (backoff: registry/backoff.ts). */

export interface Stopper {
  readonly stopped: boolean;
  /** Calls fn once when stop() is called (at once if already stopped). Returns an unsubscribe. */
  onStop(fn: () => void): () => void;
}

export class StopSignal implements Stopper {
  private fns = new Set<() => void>();
  stopped = false;

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const fn of [...this.fns]) fn();
    this.fns.clear();
  }

  onStop(fn: () => void): () => void {
    if (this.stopped) {
      fn();
      return () => undefined;
    }
    this.fns.add(fn);
    return () => void this.fns.delete(fn);
  }
}

/** Sleeps ms, or less when the stopper stops first. */
export function sleep(ms: number, stop?: Stopper): Promise<void> {
  if (stop?.stopped) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    const off = stop?.onStop(done);
    function done() {
      clearTimeout(t);
      off?.();
      resolve();
    }
  });
}

/** Thrown by abortable() when the stopper stops first. */
export class StoppedError extends Error {
  constructor() {
    super('stopped');
    this.name = 'StoppedError';
  }
}

/**
 * Resolves like p, or rejects with StoppedError as soon as the stopper stops,
 * so that stop() never waits for an etcd call to time out. (The call itself
 * goes on and its result is dropped.)
 */
export function abortable<T>(p: Promise<T>, stop: Stopper): Promise<T> {
  if (stop.stopped) {
    p.catch(() => undefined);
    return Promise.reject(new StoppedError());
  }
  return new Promise<T>((resolve, reject) => {
    const off = stop.onStop(() => reject(new StoppedError()));
    p.then(
      (v) => { off(); resolve(v); },
      (e) => { off(); reject(e); },
    );
  });
}
