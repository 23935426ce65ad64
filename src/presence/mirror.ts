/**
 * An in-memory copy of one etcd prefix, kept by a watch: list once (at a
 * revision), then apply watch events from the next revision, so no change
 * is lost between the two. Only records `accept` keeps are stored (the
 * health prefix holds every machine's instances; the syncer wants one
 * service's).
 *
 * A watch `error` (e.g. its start revision was compacted; unhandled it would
 * crash the process) or a failed list: the watcher is cancelled and the
 * prefix re-listed and re-watched after retryMs. etcd3 resumes a watch by
 * itself after a plain disconnect.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { nextRevision } from '../registry/codec.js';

export type Accept<T> = (key: string, value: string) => T | undefined;

/** Every key under a prefix, or one exact key (a prefix read needs a wider etcd permission). */
export type Range = { prefix: string } | { key: string };

export class PrefixMirror<T> {
  private items = new Map<string, T>();
  private watcher?: Watcher;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private generation = 0;
  private synced = false;

  constructor(
    private readonly client: Etcd3,
    private readonly range: Range,
    private readonly accept: Accept<T>,
    private readonly onChange: () => void,
    private readonly onProblem: (msg: string, err: unknown) => void,
    private readonly retryMs = 1000,
  ) {}

  /** True once the first list succeeded (until then values() is empty, not "nothing there"). */
  get ready(): boolean {
    return this.synced;
  }

  private get where(): string {
    return 'prefix' in this.range ? this.range.prefix : this.range.key;
  }

  values(): T[] {
    return [...this.items.values()];
  }

  /** Lists and watches; on failure keeps retrying in the background (resolves either way). */
  start(): Promise<void> {
    return this.sync();
  }

  /** Re-lists now, e.g. when `accept` changed its mind. */
  resync(): Promise<void> {
    return this.sync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.cancel();
  }

  private async sync(): Promise<void> {
    if (this.stopped) return;
    const gen = ++this.generation;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.cancel();
    try {
      const r = this.range;
      const res = await ('prefix' in r ? this.client.getAll().prefix(r.prefix) : this.client.get(r.key)).exec();
      const items = new Map<string, T>();
      for (const kv of res.kvs) this.keep(items, kv);
      const builder = 'prefix' in r ? this.client.watch().prefix(r.prefix) : this.client.watch().key(r.key);
      const w = await builder.startRevision(nextRevision(res.header.revision)).create();
      if (gen !== this.generation || this.stopped) {
        await w.cancel().catch(() => undefined);
        return;
      }
      this.watcher = w;
      this.items = items;
      this.synced = true;
      w.on('put', (kv) => {
        // records `accept` ignores (other services' health) wake nobody
        const had = this.items.delete(kv.key.toString());
        this.keep(this.items, kv);
        if (had || this.items.has(kv.key.toString())) this.onChange();
      });
      w.on('delete', (kv) => {
        if (this.items.delete(kv.key.toString())) this.onChange();
      });
      w.on('error', (e) => {
        if (this.watcher === w) this.fail(gen, `watch on ${this.where} failed; re-listing`, e);
      });
      this.onChange();
    } catch (e) {
      this.fail(gen, `cannot read ${this.where}; retrying`, e);
    }
  }

  private keep(into: Map<string, T>, kv: IKeyValue): void {
    const key = kv.key.toString();
    try {
      const v = this.accept(key, kv.value.toString());
      if (v !== undefined) into.set(key, v);
    } catch (e) {
      this.onProblem(`ignoring unreadable record at ${key}`, e);
    }
  }

  private fail(gen: number, msg: string, e: unknown): void {
    if (gen !== this.generation || this.stopped) return;
    this.onProblem(msg, e);
    void this.cancel();
    this.timer = setTimeout(() => void this.sync(), this.retryMs);
  }

  private async cancel(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    if (!w) return;
    // cancel() waits for etcd's confirmation; a dead connection must not block
    await Promise.race([w.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, this.retryMs))]);
  }
}
