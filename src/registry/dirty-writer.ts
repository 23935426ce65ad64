/**
 * Coalesced, retried writes of per-name records (an agent's unit states and
 * health records): mark a name dirty, and one flush shortly after writes
 * every dirty name once, in name order. A failed write keeps that name and
 * the rest dirty and is retried after `retryMs`; the first failure of a run
 * of failures is reported once, so an etcd outage is one log line.
 */
export interface DirtyWriterOptions {
  /** writes (or deletes) one name's record; throws when it could not */
  write: (name: string) => Promise<void>;
  coalesceMs: number;
  retryMs: number;
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
    for (const [i, name] of names.entries()) {
      try {
        await this.o.write(name);
        this.failing = false;
      } catch (err) {
        for (const n of names.slice(i)) this.dirty.add(n);
        if (!this.failing) this.o.onError?.(name, err);
        this.failing = true;
        this.schedule(this.o.retryMs);
        return;
      }
    }
  }
}
