import { JOB_RESULTS, type JobResult } from './types.js';

export type JobKind = 'start' | 'stop' | 'restart';

export interface PendingJob {
  path: string;
  unit: string;
  kind: JobKind;
}

/** systemd's result strings, with anything unexpected read as 'failed'. */
export function toJobResult(s: string): JobResult {
  return (JOB_RESULTS as readonly string[]).includes(s) ? (s as JobResult) : 'failed';
}

/**
 * Matches JobRemoved signals to the calls waiting for them. systemd may
 * send JobRemoved before the StartUnit() reply has been processed (the
 * reply and the signal travel on the same socket, but a fast job ends
 * before `await` resumes), so results for unknown job paths are kept while
 * any enqueue is in flight and looked up when the path becomes known.
 */
export class JobTracker {
  private readonly waiters = new Map<string, { job: PendingJob; resolve: (r: JobResult) => void; reject: (e: Error) => void }>();
  private readonly early = new Map<string, JobResult>();
  private enqueuing = 0;

  /** `enqueued` hears of every job systemd accepted, before it ends (the adapter learns from it). */
  constructor(private readonly enqueued?: (job: PendingJob) => void) {}

  /**
   * Runs `enqueue` (a StartUnit-like call returning the job's object path)
   * and resolves with the job's result, or 'timeout' after timeoutMs.
   * Errors of `enqueue` propagate unchanged.
   */
  async run(unit: string, kind: JobKind, enqueue: () => Promise<string>, timeoutMs: number): Promise<JobResult> {
    this.enqueuing++;
    let path: string;
    try {
      path = await enqueue();
    } finally {
      this.enqueuing--;
    }
    this.enqueued?.({ path, unit, kind });
    const known = this.early.get(path);
    this.early.delete(path);
    if (this.enqueuing === 0) this.early.clear(); // nobody can still be waiting for the rest
    if (known !== undefined) return known;
    return new Promise<JobResult>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(path, 'timeout'), timeoutMs);
      this.waiters.set(path, {
        job: { path, unit, kind },
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /** Feed every JobRemoved signal here. */
  removed(path: string, result: string): void {
    if (this.waiters.has(path)) this.settle(path, toJobResult(result));
    else if (this.enqueuing > 0) this.early.set(path, toJobResult(result));
  }

  /** Jobs still waited for, e.g. to re-check after signals may have been lost. */
  pending(): PendingJob[] {
    return [...this.waiters.values()].map((w) => w.job);
  }

  /** Stops waiting for every job (on close): their calls reject with `e`. */
  abort(e: Error): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    this.early.clear();
    for (const w of all) w.reject(e);
  }

  settle(path: string, result: JobResult): void {
    const w = this.waiters.get(path);
    if (!w) return;
    this.waiters.delete(path);
    w.resolve(result);
  }
}
