/**
 * Coalesced, retried writes of per-name records (an agent's unit states and
 * health records): mark a name dirty, and one flush shortly after (at once
 * after a quiet spell, see mark()) writes every dirty name once, up to `concurrency` writes in flight (p-queue; one
 * at a time, 40 state records after a pass took about a second under load).
 * With `writeBatch`, a flush writes the dirty names in batches of up to
 * `batchSize` (one etcd transaction each): a pass that starts 40 units is
 * one or two requests instead of 40, which is what etcd pays for most when
 * a thousand hosts report at once (issue 10's bench:scale).
 * A failed write keeps that name and every name not yet written dirty, and is
 * retried after `retryMs`; the first failure of a run of failures is
 * reported once, so an etcd outage is one log line.
 */
import PQueue from 'p-queue';

/** One record to write (under the machine's lease), or to delete (no value). */
export interface RecordChange {
  key: string;
  value?: string;
}

/** Where an agent's per-name records go (registration.ts): all the changes or none, one etcd transaction. */
export interface RecordSink {
  /** throws when it could not; then nothing was written */
  write(changes: RecordChange[]): Promise<void>;
}

export interface DirtyWriterOptions {
  /** writes (or deletes) one name's record; throws when it could not */
  write: (name: string) => Promise<void>;
  coalesceMs: number;
  retryMs: number;
  /** writes (or deletes) the records of several names at once, all or none; throws when it could not */
  writeBatch?: (names: string[]) => Promise<void>;
  /** names per writeBatch call (default 100) */
  batchSize?: number;
  /** writes (or batches) in flight at once (default 16; 4 with writeBatch) */
  concurrency?: number;
  onError?: (name: string, err: unknown) => void;
}

export class DirtyWriter {
  private readonly dirty = new Set<string>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private closed = false;
  private failing = false;
  /** when the last flush started (performance.now()) */
  private lastFlushAt = -Infinity;

  constructor(private readonly o: DirtyWriterOptions) {}

  /**
   * Leading edge: a change after a quiet spell (no write for coalesceMs) is
   * written on the next turn of the event loop, so one unit's new state
   * does not wait out the window; changes while a write is recent or under
   * way gather for coalesceMs as before, so a burst is still a few batches.
   */
  mark(name: string): void {
    this.dirty.add(name);
    const quiet = this.flushing === undefined && performance.now() - this.lastFlushAt >= this.o.coalesceMs;
    this.schedule(quiet ? 0 : this.o.coalesceMs);
  }

  /** Writes what is pending now; resolves when done (errors are reported, not thrown). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    if (this.dirty.size === 0) return;
    this.lastFlushAt = performance.now();
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
    const batch = this.o.writeBatch;
    const size = this.o.batchSize ?? 100;
    const groups: string[][] = [];
    if (batch === undefined) for (const name of names) groups.push([name]);
    else for (let i = 0; i < names.length; i += size) groups.push(names.slice(i, i + size));
    let failed = false;
    const queue = new PQueue({ concurrency: this.o.concurrency ?? (batch ? 4 : 16) });
    await queue.addAll(groups.map((group) => async () => {
      if (failed) {
        for (const name of group) this.dirty.add(name); // etcd is failing: keep them for the retry
        return;
      }
      try {
        if (batch) await batch(group);
        else await this.o.write(group[0]!);
      } catch (err) {
        for (const name of group) this.dirty.add(name);
        if (!failed && !this.failing) this.o.onError?.(group.length > 1 ? `${group[0]} and ${group.length - 1} more` : group[0]!, err);
        failed = true;
      }
    }));
    this.failing = failed;
    if (failed) this.schedule(this.o.retryMs);
  }
}
