/**
 * The services' health checks, kept current from etcd: {p}/service/ holds
 * a handful of records, so every change re-lists the prefix (one request)
 * rather than applying events. The watch is a ChangeFeed
 * (registry/changes.ts): after a watch error, compaction or a disconnection
 * it re-lists by itself and reports that as a change, so this re-lists too.
 *
 * A record whose check cannot be used maps its template to `undefined`, so
 * its instances stay 'unknown' rather than falling back to type 'none'.
 */
import type { Etcd3 } from 'etcd3';
import { Backoff } from '../registry/backoff.js';
import { ChangeFeed } from '../registry/changes.js';
import type { Keyspace } from '../registry/keys.js';
import { storedHealthCheckSchema } from '../service/schema.js';
import type { HealthCheck } from '../service/types.js';
import type { ChecksByTemplate } from './monitor.js';
import type { HealthRecord } from './types.js';

export interface ServiceChecksEvents {
  /** once, before the first changed(): the health records this machine has in etcd (left by a previous agent process) */
  previous?(records: HealthRecord[]): void;
  /** the full map, after every successful list */
  changed(checks: ChecksByTemplate): void;
  problem(msg: string, err?: unknown): void;
}

/** The check of a stored service record (service/schema.ts), or undefined when it is unusable. */
export function checkOf(record: unknown): HealthCheck | undefined {
  const parsed = storedHealthCheckSchema.safeParse(record !== null && typeof record === 'object' ? (record as { health?: unknown }).health : undefined);
  return parsed.success ? parsed.data : undefined;
}

/** Template -> check over service records (key order; the first service of a template wins). */
export function checksFrom(records: ReadonlyArray<{ key: string; value: string }>): { checks: Map<string, HealthCheck | undefined>; bad: string[] } {
  const checks = new Map<string, HealthCheck | undefined>();
  const bad: string[] = [];
  for (const { key, value } of [...records].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    let rec: unknown;
    try {
      rec = JSON.parse(value);
    } catch {
      bad.push(key);
      continue;
    }
    const template = (rec as { template?: unknown } | null)?.template;
    if (typeof template !== 'string' || template === '') {
      bad.push(key);
      continue;
    }
    const check = checkOf(rec);
    if (check === undefined) bad.push(key);
    if (!checks.has(template)) checks.set(template, check);
  }
  return { checks, bad };
}

export class ServiceChecks {
  private readonly watches: ChangeFeed;
  private readonly retries: Backoff;
  private stopped = false;
  private wanted = false;
  private listing?: Promise<void>;
  private retry?: NodeJS.Timeout;
  private reported = '';
  private seeded = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: Keyspace,
    private readonly events: ServiceChecksEvents,
    private readonly retryMs = 1000,
    /** the machine whose previous health records are read once (events.previous) */
    private readonly machineId?: string,
  ) {
    const backoff = { initialMs: retryMs, maxMs: Math.max(retryMs, 5000) };
    this.retries = new Backoff(backoff);
    this.watches = new ChangeFeed(client, [keys.services()], () => this.relist(), (why, e) => events.problem(why, e), { backoff });
  }

  /** Opens the watch, then lists (retrying until it works). Returns once the watch is confirmed. */
  async start(): Promise<void> {
    await this.watches.start();
    this.relist();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    await this.watches.stop();
    await this.listing;
  }

  /** Coalesced: one list at a time, one more if a change came in meanwhile. */
  private relist(): void {
    this.wanted = true;
    if (this.listing || this.stopped) return;
    this.listing = this.listLoop().finally(() => (this.listing = undefined));
  }

  private async listLoop(): Promise<void> {
    while (this.wanted && !this.stopped) {
      this.wanted = false;
      try {
        if (!this.seeded && this.machineId !== undefined) {
          const prev = await this.client.getAll().prefix(this.keys.machineHealth(this.machineId)).strings();
          if (this.stopped) return;
          this.events.previous?.(healthRecords(Object.values(prev)));
          this.seeded = true;
        }
        const kvs = await this.client.getAll().prefix(this.keys.services()).strings();
        if (this.stopped) return;
        const { checks, bad } = checksFrom(Object.entries(kvs).map(([key, value]) => ({ key, value })));
        const sig = bad.join(',');
        if (bad.length > 0 && sig !== this.reported) this.events.problem(`unusable health check in ${bad.join(', ')}; its instances stay unknown`);
        this.reported = sig;
        this.retries.reset();
        this.events.changed(checks);
      } catch (e) {
        if (this.stopped) return;
        if (this.retries.attempts === 0) this.events.problem('listing services failed; retrying', e);
        this.retry = setTimeout(() => this.relist(), this.retries.next());
        return;
      }
    }
  }
}

/** Health records out of raw values; unreadable ones are skipped (they only seed a restart). */
function healthRecords(values: readonly string[]): HealthRecord[] {
  const out: HealthRecord[] = [];
  for (const v of values) {
    try {
      const r = JSON.parse(v) as HealthRecord;
      if (r && typeof r.unit === 'string' && typeof r.machine === 'string' && typeof r.hash === 'string' && typeof r.since === 'string') out.push(r);
    } catch {
      // not ours to judge: the record is simply not taken over
    }
  }
  return out;
}
