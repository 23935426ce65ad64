/**
 * Wraps an action so that concurrent callers share runs: callers arriving
 * while no run is under way join the next run, which starts on the next
 * macrotask (so a burst of callers shares one); callers arriving while a
 * run is under way get the run after it, because the current one may have
 * started before their change (for daemon-reload: before their unit file
 * was written). At most one run at a time, at most one queued.
 */
export function coalesce(action: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;

  const launch = (): Promise<void> => {
    const p = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      queued = undefined;
      running = p;
      return action();
    });
    const clear = () => {
      if (running === p) running = undefined;
    };
    p.then(clear, clear);
    return p;
  };

  return () => {
    if (queued) return queued;
    queued = running ? running.then(launch, launch) : launch();
    return queued;
  };
}
