/**
 * The desired side: this machine's schedule keys, kept in memory by a
 * list-then-watch loop on {p}/schedule/{id}/ only, and unit bodies fetched by
 * hash and cached forever (a body never changes under its hash).
 *
 * The loop lists the prefix, then watches from the list's revision + 1, so
 * no change is missed between the two. A watch 'error' (its start revision
 * was compacted, or etcd cancelled it) ends the watch and the loop lists
 * again; resync() forces the same from outside (the slow safety net).
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import { z } from 'zod';
import { TARGET_STATES, type ScheduleRecord } from '../registry/records.js';
import type { Keyspace } from '../registry/keys.js';
import { lastSegment } from '../registry/keys.js';
import { optionValues } from '../unit/options.js';
import { parseUnit } from '../unit/parse.js';
import { normalizeBody } from './body.js';
import type { DesiredUnit } from './types.js';
import { abortable, backoff, sleep, type Stopper } from './util.js';

const scheduleSchema = z.object({
  name: z.string().min(1),
  hash: z.string().min(1),
  targetState: z.enum(TARGET_STATES as [string, ...string[]]),
}).passthrough();

export interface ScheduleEvents {
  /** the set of records changed (or was re-listed) */
  changed(): void;
  /** the watch is (re)connected and current (true) or cut off from etcd (false) */
  connection(live: boolean): void;
  /** a record could not be used, or etcd failed; the loop carries on */
  problem(msg: string, err?: unknown): void;
}

export class ScheduleSource {
  private records = new Map<string, ScheduleRecord>();
  private relist?: (why: 'resync') => void;
  private synced = false;
  private live = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: Keyspace,
    private readonly machineId: string,
    private readonly events: ScheduleEvents,
    /** how often to check whether etcd is back while the watch is cut off */
    private readonly probeMs = 1000,
  ) {}

  /** True once a list has succeeded: before that, desired state is unknown and nothing may be removed. */
  get isSynced(): boolean {
    return this.synced;
  }

  /** True while the watch is connected: the in-memory records are current. */
  get isLive(): boolean {
    return this.live;
  }

  snapshot(): ScheduleRecord[] {
    return [...this.records.values()];
  }

  /** Ends the current watch and lists again. */
  resync(): void {
    this.relist?.('resync');
  }

  /** Runs until stopper stops. */
  async run(stop: Stopper): Promise<void> {
    const prefix = this.keys.machineSchedule(this.machineId);
    let attempt = 0;
    while (!stop.stopped) {
      try {
        const res = await abortable(this.client.getAll().prefix(prefix).exec(), stop);
        const next = new Map<string, ScheduleRecord>();
        for (const kv of res.kvs) this.apply(next, kv, 'put');
        this.records = next;
        this.synced = true;
        this.events.changed();
        attempt = 0;
        await this.watchFrom(prefix, (BigInt(res.header.revision) + 1n).toString(), stop);
        await sleep(100, stop); // a watch that errors at once must not spin
      } catch (e) {
        if (stop.stopped) return;
        this.events.problem('listing or watching the schedule failed', e);
        await sleep(backoff(attempt++), stop);
      }
    }
  }

  /**
   * Resolves when the watch must be re-listed (error, resync) or on stop.
   * watcher() (not create(), which waits for etcd without end) attaches at
   * once; live follows the watch's connected/disconnected events.
   */
  private async watchFrom(prefix: string, revision: string, stop: Stopper): Promise<void> {
    const w = this.client.watch().prefix(prefix).startRevision(revision).watcher();
    let offStop = () => {};
    let done = false;
    let why = 'other' as 'resync' | 'other';
    let failed = false;
    try {
      await new Promise<void>((resolve) => {
        this.relist = (r) => {
          why = r;
          resolve();
        };
        offStop = stop.onStop(resolve);
        // etcd3 re-opens a broken watch stream with a backoff of up to 30 s.
        // While cut off, probe etcd with a cheap read; once it answers, list
        // again: a new watcher opens a stream at once.
        const probe = async () => {
          while (!this.live && !done && !stop.stopped) {
            await sleep(this.probeMs, stop);
            if (this.live || done) return;
            try {
              await this.client.get(prefix).exec();
              if (!this.live && !done) resolve();
              return;
            } catch {
              // still unreachable
            }
          }
        };
        w.on('connected', () => this.setLive(true));
        w.on('disconnected', () => {
          this.setLive(false);
          void probe();
        });
        w.on('put', (kv) => { this.apply(this.records, kv, 'put'); this.events.changed(); });
        w.on('delete', (kv) => { this.apply(this.records, kv, 'delete'); this.events.changed(); });
        w.on('error', (e) => {
          failed = true;
          this.events.problem('schedule watch failed; listing again', e);
          resolve();
        });
      });
    } finally {
      done = true;
      offStop();
      // a resync re-lists a watch that was current: stay live (no flapping, passes go on)
      if (why !== 'resync') this.setLive(false);
      this.relist = undefined;
      // No cancel() after 'error': etcd3 already dropped that watcher, and
      // cancelling it again makes etcd3 throw from a stream handler (an
      // uncaught exception). Otherwise cancel, without waiting on a stream
      // that may be reconnecting.
      if (!failed) await Promise.race([w.cancel().catch(() => undefined), sleep(1000)]);
    }
  }

  private setLive(live: boolean): void {
    if (this.live === live) return;
    this.live = live;
    this.events.connection(live);
  }

  private apply(into: Map<string, ScheduleRecord>, kv: IKeyValue, type: 'put' | 'delete'): void {
    const name = lastSegment(kv.key.toString());
    if (type === 'delete') {
      into.delete(name);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(kv.value.toString());
    } catch {
      parsed = undefined;
    }
    const r = scheduleSchema.safeParse(parsed);
    if (!r.success || r.data.name !== name) {
      this.events.problem(`ignoring malformed schedule record ${kv.key.toString()}`);
      into.delete(name);
      return;
    }
    into.set(name, { name, hash: r.data.hash, targetState: r.data.targetState as ScheduleRecord['targetState'] });
  }
}

/** Unit bodies by hash. Immutable, so cached without expiry; only found bodies are cached. */
export class BodyCache {
  private readonly bodies = new Map<string, { text: string; hasInstall: boolean }>();

  constructor(private readonly client: Etcd3, private readonly keys: Keyspace) {}

  get(hash: string): { text: string; hasInstall: boolean } | undefined {
    return this.bodies.get(hash);
  }

  /** Fetches the missing ones. etcd errors propagate (the pass is retried). */
  async fetch(hashes: Iterable<string>): Promise<void> {
    const missing = [...new Set(hashes)].filter((h) => !this.bodies.has(h));
    await Promise.all(missing.map(async (h) => {
      const text = await this.client.get(this.keys.body(h)).string();
      if (text === null) return;
      this.bodies.set(h, { text: normalizeBody(text), hasInstall: hasInstallSection(text, h) });
    }));
  }

  /** The hash of a known body with exactly this text, or undefined. */
  hashOfText(text: string): string | undefined {
    const t = normalizeBody(text);
    for (const [h, b] of this.bodies) if (b.text === t) return h;
    return undefined;
  }

  /** Forget bodies no unit uses any more (keeps memory bounded across many --replace). */
  retainOnly(hashes: Iterable<string>): void {
    const keep = new Set(hashes);
    for (const h of this.bodies.keys()) if (!keep.has(h)) this.bodies.delete(h);
  }
}

/** Whether systemd would enable the unit: it has WantedBy/RequiredBy/Alias/Also in [Install]. */
export function hasInstallSection(text: string, source = 'unit'): boolean {
  try {
    const u = parseUnit(text, source);
    return ['WantedBy', 'RequiredBy', 'UpheldBy', 'Alias', 'Also'].some((k) => optionValues(u, 'Install', k).length > 0);
  } catch {
    return false; // the engine validated it; a body we cannot parse is simply not enabled
  }
}

/** desired(): the schedule records joined with their bodies (pure; `bodyOf` is the cache lookup). */
export function desiredFrom(records: readonly ScheduleRecord[], bodyOf: (hash: string) => { hasInstall: boolean } | undefined): Map<string, DesiredUnit> {
  const out = new Map<string, DesiredUnit>();
  for (const r of records) {
    const body = bodyOf(r.hash);
    out.set(r.name, { name: r.name, hash: r.hash, targetState: r.targetState, hasInstall: body?.hasInstall ?? false, available: body !== undefined });
  }
  return out;
}
