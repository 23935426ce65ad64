/**
 * The desired side: this machine's schedule keys, kept in memory by a
 * PrefixWatch (registry/watch.ts) on {p}/schedule/{id}/ only, and unit
 * bodies fetched by hash and cached forever (a body never changes under its
 * hash).
 *
 * The watch lists the prefix, then watches from the list's revision + 1;
 * whenever it cannot be trusted to be complete (error, compaction, a
 * disconnection) it lists again and the records are replaced whole.
 * `lists` counts completed lists, so the agent can insist on a list made
 * after a moment (after it re-registered: fleet #1289).
 */
import type { Etcd3 } from 'etcd3';
import { z } from 'zod';
import { TARGET_STATES, type ScheduleRecord } from '../registry/records.js';
import type { Keyspace } from '../registry/keys.js';
import { lastSegment } from '../registry/keys.js';
import { PrefixWatch, type KeyValue } from '../registry/watch.js';
import { optionValues } from '../unit/options.js';
import { parseUnit } from '../unit/parse.js';
import { normalizeBody } from './body.js';
import type { DesiredUnit } from './types.js';

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
  /** a record could not be used, or etcd failed; the watch carries on */
  problem(msg: string, err?: unknown): void;
}

export class ScheduleSource {
  private records = new Map<string, ScheduleRecord>();
  private readonly watch: PrefixWatch;
  private listCount = 0;

  constructor(
    client: Etcd3,
    keys: Keyspace,
    machineId: string,
    private readonly events: ScheduleEvents,
    /** how often to check whether etcd is back while the watch is cut off */
    probeMs = 1000,
  ) {
    this.watch = new PrefixWatch(client, { prefix: keys.machineSchedule(machineId) }, {
      replace: (items) => {
        const next = new Map<string, ScheduleRecord>();
        for (const kv of items) this.put(next, kv);
        this.records = next;
        this.listCount++;
        events.changed();
      },
      event: (e) => {
        if (e.type === 'put') this.put(this.records, e);
        else this.records.delete(lastSegment(e.key));
        events.changed();
      },
      live: (live) => events.connection(live),
      problem: (msg, err) => events.problem(msg, err),
    }, { probeMs });
  }

  /** True once a list has succeeded: before that, desired state is unknown and nothing may be removed. */
  get isSynced(): boolean {
    return this.watch.synced;
  }

  /** True while the watch is connected: the in-memory records are current. */
  get isLive(): boolean {
    return this.watch.live;
  }

  /** Completed lists so far (each replaced the records whole). */
  get lists(): number {
    return this.listCount;
  }

  snapshot(): ScheduleRecord[] {
    return [...this.records.values()];
  }

  /** Ends the current watch and lists again. */
  resync(): void {
    this.watch.resync();
  }

  /** Starts listing and watching; resolves after the first attempt (it keeps trying). */
  start(): Promise<void> {
    return this.watch.start();
  }

  /** Stops the watch and waits for its loop. */
  stop(): Promise<void> {
    return this.watch.stop();
  }

  private put(into: Map<string, ScheduleRecord>, kv: KeyValue): void {
    const name = lastSegment(kv.key);
    let parsed: unknown;
    try {
      parsed = JSON.parse(kv.value);
    } catch {
      parsed = undefined;
    }
    const r = scheduleSchema.safeParse(parsed);
    if (!r.success || r.data.name !== name) {
      this.events.problem(`ignoring malformed schedule record ${kv.key}`);
      into.delete(name);
      return;
    }
    const next = typeof r.data.next === 'string' && r.data.next !== '' ? { next: r.data.next } : {};
    into.set(name, { name, hash: r.data.hash, targetState: r.data.targetState as ScheduleRecord['targetState'], ...next });
  }
}

/** Unit bodies by hash. Immutable, so cached without expiry; only found bodies are cached. */
/** Bodies read in one transaction, below etcd's --max-txn-ops (128). */
const BODIES_PER_READ = 100;

export class BodyCache {
  private readonly bodies = new Map<string, { text: string; hasInstall: boolean }>();

  constructor(private readonly client: Etcd3, private readonly keys: Keyspace) {}

  get(hash: string): { text: string; hasInstall: boolean } | undefined {
    return this.bodies.get(hash);
  }

  /**
   * Fetches the missing ones, up to 100 in one read-only transaction (a
   * host given units of 20 templates asks etcd once, not 20 times). etcd
   * errors propagate (the pass is retried).
   */
  async fetch(hashes: Iterable<string>): Promise<void> {
    const missing = [...new Set(hashes)].filter((h) => !this.bodies.has(h));
    for (let i = 0; i < missing.length; i += BODIES_PER_READ) {
      const part = missing.slice(i, i + BODIES_PER_READ);
      const res = await this.client.kv.txn({
        compare: [],
        success: part.map((h) => ({ request_range: { key: Buffer.from(this.keys.body(h)) } })),
        failure: [],
      });
      res.responses.forEach((r, j) => {
        const kv = r.response_range.kvs[0];
        if (kv === undefined) return;
        const text = kv.value.toString();
        this.bodies.set(part[j]!, { text: normalizeBody(text), hasInstall: hasInstallSection(text, part[j]) });
      });
    }
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
