/**
 * Prefix watches that only say "something changed": the leader re-reads
 * everything it needs in one request per pass, so an event's content does not
 * matter and a lost event is harmless as long as a pass follows. Hence:
 * - on `error` (e.g. the start revision was compacted; unhandled it would
 *   crash the process) the watcher is cancelled, recreated from "now" and a
 *   pass is requested, which re-lists;
 * - on reconnection after a disconnect a pass is requested too.
 */
import type { Etcd3, Watcher } from 'etcd3';

export class PrefixWatches {
  private readonly watchers = new Map<string, Watcher>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly client: Etcd3,
    private readonly prefixes: readonly string[],
    private readonly onChange: (why: string) => void,
    private readonly onProblem: (why: string, e: unknown) => void,
    private readonly retryMs = 1000,
  ) {}

  /** Opens the watches; resolves once etcd confirmed them (or after retryMs, whichever is first). */
  async start(): Promise<void> {
    await Promise.all(this.prefixes.map((p) => withTimeout(this.open(p), this.retryMs)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const all = [...this.watchers.values()];
    this.watchers.clear();
    // cancel() waits for etcd's confirmation; a dead connection must not block stop()
    await Promise.all(all.map((w) => withTimeout(w.cancel().catch(() => undefined), this.retryMs)));
  }

  private open(prefix: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const w = this.client.watch().prefix(prefix).watcher();
    const confirmed = new Promise<void>((resolve) => {
      w.once('connected', () => resolve());
      w.once('error', () => resolve());
    });
    this.watchers.set(prefix, w);
    let wasDisconnected = false;
    w.on('put', (kv) => this.onChange(`put ${kv.key.toString()}`));
    w.on('delete', (kv) => this.onChange(`delete ${kv.key.toString()}`));
    w.on('disconnected', () => {
      wasDisconnected = true;
    });
    w.on('connected', () => {
      if (wasDisconnected) this.onChange(`watch on ${prefix} reconnected`);
      wasDisconnected = false;
    });
    w.on('error', (e) => {
      if (this.watchers.get(prefix) !== w) return;
      this.watchers.delete(prefix);
      this.onProblem(`watch on ${prefix} failed; re-listing and watching again`, e);
      // no w.cancel(): etcd3 already dropped it, and cancelling again makes
      // etcd answer with an id etcd3 no longer knows, which it throws on
      const t = setTimeout(() => {
        this.timers.delete(t);
        void this.open(prefix).then(() => this.onChange(`watch on ${prefix} restarted`));
      }, this.retryMs);
      this.timers.add(t);
    });
    return confirmed;
  }
}

function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    void p.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
