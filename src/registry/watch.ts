/**
 * PrefixWatch: the one way fleetx follows etcd (client-go's reflector).
 * Nothing outside this file opens an etcd watch.
 *
 *   list(range) at revision R ──► replace(items, R)
 *   watch(range) from R + 1   ──► event(put | delete), in revision order
 *
 * Recovery rule (the only one): whenever the watch can no longer be trusted
 * to be complete, the range is LISTED AGAIN and handed over whole with
 * replace(), then watched from that list's revision + 1. That covers
 * - a watch `error` (etcd cancelled it, or its start revision was compacted
 *   while the stream was down; etcd3 leaves `error` unhandled otherwise and
 *   the process crashes): re-list after a backoff with jitter;
 * - a stream that is disconnected: etcd3 reconnects by itself, but with a
 *   backoff of up to 30 s; so while disconnected the range is probed every
 *   probeMs with a cheap read and, once etcd answers, re-listed at once;
 * - a failed list: retried after the backoff (growing, with jitter),
 *   reported once per run of failures;
 * - resync() from outside (a slow safety net).
 * Consumers therefore never see a gap: what they hold after replace() plus
 * the events after it is exactly etcd's content. They must treat replace()
 * as "forget everything, this is the truth now".
 *
 * A failed watcher is never cancel()led: etcd3 already dropped it, and a
 * second cancel makes etcd answer with an id etcd3 no longer knows, which
 * it throws on from a stream handler. Other watchers are cancelled, without
 * waiting longer than cancelWaitMs for etcd to confirm (a dead connection
 * must not hold up stop()).
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { Backoff, sleep, type BackoffOptions } from './backoff.js';
import { nextRevision } from './codec.js';

export interface KeyValue {
  key: string;
  value: string;
  /** etcd revision of the key's last change (a decimal string) */
  modRevision: string;
}

export type WatchEvent =
  | ({ type: 'put' } & KeyValue)
  | { type: 'delete'; key: string; modRevision: string };

/** Every key under a prefix, or one exact key (a prefix read needs a wider etcd permission). */
export type WatchRange = { prefix: string } | { key: string };

/**
 * idle → listing → watching ⇄ disconnected; a failure → backoff → listing;
 * stop() → stopped.
 */
export type WatchState = 'idle' | 'listing' | 'watching' | 'disconnected' | 'backoff' | 'stopped';

export interface WatchHandlers {
  /** After every successful list: the whole range at `revision`. Replace what you hold. */
  replace(items: KeyValue[], revision: string): void;
  /** One change after the last list. */
  event(e: WatchEvent): void;
  /** live: the watch is confirmed by etcd, so what replace() and event() gave is current. */
  live?(live: boolean): void;
  /** A list or watch failed, or a handler threw; the watch recovers by itself. */
  problem(msg: string, err: unknown): void;
}

export interface WatchOptions {
  /** 'values' (default): replace() gets every key-value. 'revision': only the revision is read and replace() gets [] (for consumers that re-read themselves). */
  list?: 'values' | 'revision';
  /** delays before a re-list after failures (default 250 ms doubling up to 5 s, with jitter) */
  backoff?: BackoffOptions;
  /** how often to probe etcd while the stream is disconnected, ms (default 1000) */
  probeMs?: number;
  /** longest wait for etcd to confirm a cancel, ms (default 1000) */
  cancelWaitMs?: number;
}

type WatchEnd = 'error' | 'resync' | 'reconnect' | 'stop';

export class PrefixWatch {
  private current: WatchState = 'idle';
  private isLive = false;
  private listed = false;
  private loop: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private readonly retries: Backoff;
  private endWatch: ((why: WatchEnd) => void) | undefined;
  private firstAttempt: (() => void) | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly range: WatchRange,
    private readonly handlers: WatchHandlers,
    private readonly o: WatchOptions = {},
  ) {
    this.retries = new Backoff(o.backoff ?? { initialMs: 250, maxMs: 5000 });
  }

  get state(): WatchState {
    return this.current;
  }

  /** True while etcd confirms the watch (a resync of a live watch stays live). */
  get live(): boolean {
    return this.isLive;
  }

  /** True once a list has succeeded: before that, "no items" means "unknown", not "none". */
  get synced(): boolean {
    return this.listed;
  }

  /** What is watched, for messages. */
  get where(): string {
    return 'prefix' in this.range ? this.range.prefix : this.range.key;
  }

  /**
   * Starts the loop. Resolves once the first list and watch are in place,
   * or the first attempt failed (the loop keeps retrying in the background).
   */
  start(): Promise<void> {
    if (this.loop !== undefined) return Promise.resolve();
    const first = new Promise<void>((resolve) => (this.firstAttempt = resolve));
    this.loop = this.run().finally(() => this.firstAttempt?.());
    return first;
  }

  /** Ends the current watch and lists again (no-op unless watching). */
  resync(): void {
    this.endWatch?.('resync');
  }

  /** Ends the loop and waits until it has: no handler is called after this resolves. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.endWatch?.('stop');
    await this.loop;
    this.setState('stopped');
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      this.setState('listing');
      let revision: string;
      let items: KeyValue[];
      try {
        ({ revision, items } = await this.list());
      } catch (e) {
        if (signal.aborted) break;
        this.setLive(false);
        // once per run of failures: an outage is one line, not one per retry
        if (this.retries.attempts === 0) this.report(`cannot list ${this.where}; retrying`, e);
        this.firstAttempt?.();
        this.setState('backoff');
        await sleep(this.retries.next(), signal);
        continue;
      }
      if (signal.aborted) break;
      this.listed = true;
      this.call(() => this.handlers.replace(items, revision));
      const end = await this.watchFrom(nextRevision(revision));
      if (end === 'error') {
        this.setState('backoff');
        await sleep(this.retries.next(), signal);
      }
    }
    this.setLive(false);
  }

  private async list(): Promise<{ revision: string; items: KeyValue[] }> {
    const r = this.range;
    if (this.o.list === 'revision') {
      const res = await ('prefix' in r ? this.client.getAll().prefix(r.prefix).limit(1) : this.client.get(r.key)).exec();
      return { revision: res.header.revision, items: [] };
    }
    const res = await ('prefix' in r ? this.client.getAll().prefix(r.prefix) : this.client.get(r.key)).exec();
    return { revision: res.header.revision, items: res.kvs.map(toKeyValue) };
  }

  /** Watches from `revision` until the watch must be re-listed, or stop. */
  private async watchFrom(revision: string): Promise<WatchEnd> {
    const r = this.range;
    const builder = 'prefix' in r ? this.client.watch().prefix(r.prefix) : this.client.watch().key(r.key);
    // watcher(), not create(): create() waits for etcd without end
    const w: Watcher = builder.startRevision(revision).watcher();
    let open = true;
    let failed = false;
    // etcd3 emits `disconnected` again at every failed reconnect: one probe loop, not one more each time
    let probing = false;
    const end = await new Promise<WatchEnd>((resolve) => {
      const finish = (why: WatchEnd) => {
        if (!open) return;
        open = false;
        this.endWatch = undefined;
        resolve(why);
      };
      this.endWatch = finish;
      if (this.abort.signal.aborted) finish('stop');
      w.on('connected', () => {
        if (!open) return;
        this.retries.reset();
        this.setState('watching');
        this.setLive(true);
        this.firstAttempt?.();
      });
      w.on('disconnected', () => {
        if (!open) return;
        this.setState('disconnected');
        this.setLive(false);
        if (probing) return;
        probing = true;
        void this.probe(() => open, () => finish('reconnect')).finally(() => (probing = false));
      });
      w.on('put', (kv) => open && this.call(() => this.handlers.event({ type: 'put', ...toKeyValue(kv) })));
      w.on('delete', (kv) => open && this.call(() => this.handlers.event({ type: 'delete', key: kv.key.toString(), modRevision: kv.mod_revision })));
      // stays attached for the watcher's whole life: an `error` without a listener crashes the process
      w.on('error', (e) => {
        if (!open) return;
        failed = true;
        this.setLive(false);
        this.report(`watch on ${this.where} failed; listing again`, e);
        this.firstAttempt?.();
        finish('error');
      });
    });
    // a resync re-lists a watch that was current: it stays live (no flapping)
    if (end !== 'resync') this.setLive(false);
    if (!failed) await Promise.race([w.cancel().catch(() => undefined), sleep(this.o.cancelWaitMs ?? 1000)]);
    return end;
  }

  /** While the stream is down: once etcd answers a read again, end the watch so the loop re-lists. */
  private async probe(stillOpen: () => boolean, reconnect: () => void): Promise<void> {
    const signal = this.abort.signal;
    while (stillOpen() && !this.isLive && !signal.aborted) {
      await sleep(this.o.probeMs ?? 1000, signal);
      if (!stillOpen() || this.isLive || signal.aborted) return;
      try {
        await this.client.get(this.where).exec();
        if (stillOpen() && !this.isLive) reconnect();
        return;
      } catch {
        // still unreachable
      }
    }
  }

  private setState(s: WatchState): void {
    if (this.current !== 'stopped') this.current = s;
  }

  private setLive(live: boolean): void {
    if (this.isLive === live) return;
    this.isLive = live;
    this.call(() => this.handlers.live?.(live));
  }

  /** A throwing handler is a bug to report, never a reason to stop watching. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.report(`a handler of the watch on ${this.where} threw`, e);
    }
  }

  private report(msg: string, e: unknown): void {
    try {
      this.handlers.problem(msg, e);
    } catch {
      // nothing left to tell
    }
  }
}

function toKeyValue(kv: IKeyValue): KeyValue {
  return { key: kv.key.toString(), value: kv.value.toString(), modRevision: kv.mod_revision };
}
