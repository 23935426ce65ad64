/**
 * Coalesced, retried writes of per-name records (an agent's unit states and
 * health records): mark a name dirty, and one flush shortly after writes
 * every dirty name once, up to `concurrency` writes in flight (p-queue; one
 * at a time, 40 state records after a pass took about a second under load).
 * A failed write keeps that name and every name not yet written dirty, and is
 * retried after `retryMs`; the first failure of a run of failures is
 * reported once, so an etcd outage is one log line.
 */
import PQueue from 'p-queue';

export interface DirtyWriterOptions {
  /** writes (or deletes) one name's record; throws when it could not */
  write: (name: string) => Promise<void>;
  coalesceMs: number;
  retryMs: number;
  /** writes in flight at once (default 16) */
  concurrency?: number;
  onError?: (name: string, err: unknown) => void;
}

export class DirtyWriter {
  private readonly dirty = new Set<string>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private closed = false;
  private failing = false;

  constructor(private readonly o: DirtyWriterOptions) {}

  mark(name: string): void {
    this.dirty.add(name);
    this.schedule(this.o.coalesceMs);
  }

  /** Writes what is pending now; resolves when done (errors are reported, not thrown). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    if (this.dirty.size === 0) return;
    this.flushing = this.writeDirty().finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  /** No more scheduled writes; an explicit flush() still writes. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
  }

  private async writeDirty(): Promise<void> {
    const names = [...this.dirty].sort();
    this.dirty.clear();
    let failed = false;
    const queue = new PQueue({ concurrency: this.o.concurrency ?? 16 });
    await queue.addAll(names.map((name) => async () => {
      if (failed) {
        this.dirty.add(name); // etcd is failing: keep it for the retry
        return;
      }
      try {
        await this.o.write(name);
      } catch (err) {
        this.dirty.add(name);
        if (!failed && !this.failing) this.o.onError?.(name, err);
        failed = true;
      }
    }));
    this.failing = failed;
    if (failed) this.schedule(this.o.retryMs);
  }
}
