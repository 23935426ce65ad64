/**
 * An in-memory copy of one etcd prefix (or key), kept by a PrefixWatch
 * (registry/watch.ts): listed, then followed from the list's revision + 1,
 * and listed again whole whenever the watch cannot be trusted (error,
 * compaction, a disconnection), so no change is lost.
 *
 * Only records `accept` keeps are offered (the health prefix holds every
 * machine's instances; the syncer wants one service's), and only changes to
 * those wake the consumer. The raw values are kept too, so when `accept`
 * changes its mind (a new template) refilter() applies it again without
 * another read.
 */
import type { Etcd3 } from 'etcd3';
import { PrefixWatch, type WatchRange } from '../registry/watch.js';

export type Accept<T> = (key: string, value: string) => T | undefined;

/** Every key under a prefix, or one exact key (a prefix read needs a wider etcd permission). */
export type Range = WatchRange;

export class PrefixMirror<T> {
  private raw = new Map<string, string>();
  private items = new Map<string, T>();
  private readonly watch: PrefixWatch;

  constructor(
    client: Etcd3,
    range: Range,
    private readonly accept: Accept<T>,
    private readonly onChange: () => void,
    private readonly onProblem: (msg: string, err: unknown) => void,
    retryMs = 1000,
  ) {
    this.watch = new PrefixWatch(client, range, {
      replace: (kvs) => {
        this.raw = new Map(kvs.map((kv) => [kv.key, kv.value]));
        this.refilter();
        onChange();
      },
      event: (e) => {
        // records `accept` ignores (other services' health) wake nobody
        const had = this.items.delete(e.key);
        if (e.type === 'put') {
          this.raw.set(e.key, e.value);
          this.keep(e.key, e.value);
        } else {
          this.raw.delete(e.key);
        }
        if (had || this.items.has(e.key)) onChange();
      },
      problem: onProblem,
    }, { backoff: { initialMs: retryMs, maxMs: Math.max(retryMs, 5000) } });
  }

  /** True once the first list succeeded (until then values() is empty, not "nothing there"). */
  get ready(): boolean {
    return this.watch.synced;
  }

  values(): T[] {
    return [...this.items.values()];
  }

  /** Lists and watches; resolves after the first attempt (it keeps retrying in the background). */
  start(): Promise<void> {
    return this.watch.start();
  }

  /** Applies `accept` again to everything held, e.g. when it changed its mind. */
  refilter(): void {
    this.items = new Map();
    for (const [key, value] of this.raw) this.keep(key, value);
  }

  stop(): Promise<void> {
    return this.watch.stop();
  }

  private keep(key: string, value: string): void {
    try {
      const v = this.accept(key, value);
      if (v !== undefined) this.items.set(key, v);
    } catch (e) {
      this.onProblem(`ignoring unreadable record at ${key}`, e);
    }
  }
}
