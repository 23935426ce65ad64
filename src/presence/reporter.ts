/**
 * Writes {p}/presence-status/{svc}/{unit} under the syncer's OWN lease: if
 * the syncer dies, its statuses vanish with the lease and rollouts wait
 * instead of trusting stale data. Writes only what changed (state, address,
 * and sessions while draining); 'unknown' and units no longer reported are deleted. On a new
 * lease, the existing keys are listed first so leftovers of an earlier run
 * are overwritten or deleted.
 *
 * Errors: report() throws FleetxError ('unavailable' when etcd or the lease
 * is gone, 'usage' for permissions); the lease is then dropped and a new
 * one granted on the next call.
 */
import type { Etcd3, Lease } from 'etcd3';
import type { Keyspace } from '../registry/keys.js';
import { lastSegment } from '../registry/keys.js';
import { toFleetxError, type ErrorContext } from '../registry/errors.js';
import type { Observed, PresenceStatusRecord } from './types.js';

export interface ReporterOptions {
  client: Etcd3;
  keys: Keyspace;
  service: string;
  ttlSec: number;
  connection: ErrorContext;
  now: () => Date;
  /** called when the lease is lost, so the owner schedules a report */
  onLost: (err: unknown) => void;
}

export class StatusReporter {
  private lease?: Lease;
  /** unit -> the record's comparable part as last written ('' = found, not written by us) */
  private written = new Map<string, string>();

  constructor(private readonly o: ReporterOptions) {}

  /** Makes the status keys match `observed`; returns the records written. */
  async report(observed: readonly Observed[]): Promise<PresenceStatusRecord[]> {
    const { client, keys, service } = this.o;
    if (!this.lease && observed.length === 0 && this.written.size === 0) return []; // no lease just to write nothing
    try {
      const lease = await this.ensureLease();
      const done: PresenceStatusRecord[] = [];
      const seen = new Set<string>();
      for (const o of observed) {
        if (o.state === 'unknown') continue;
        seen.add(o.unit);
        // sessions only while draining: rollouts wait on them there, and an
        // instance in service would otherwise be rewritten on every poll
        const sessions = o.state === 'draining' && o.sessions !== undefined ? { sessions: o.sessions } : {};
        const body = { service, unit: o.unit, state: o.state, ...sessions, ...(o.address ? { address: o.address } : {}) };
        const same = JSON.stringify(body);
        if (this.written.get(o.unit) === same) continue;
        const rec: PresenceStatusRecord = { ...body, updatedAt: this.o.now().toISOString() };
        await lease.put(keys.presenceStatus(service, o.unit)).value(JSON.stringify(rec)).exec();
        this.written.set(o.unit, same);
        done.push(rec);
      }
      for (const unit of [...this.written.keys()]) {
        if (seen.has(unit)) continue;
        await client.delete().key(keys.presenceStatus(service, unit)).exec();
        this.written.delete(unit);
      }
      return done;
    } catch (e) {
      this.dropLease();
      throw toFleetxError(e, this.o.connection);
    }
  }

  /** Revokes the lease, which deletes every status this syncer wrote. Never throws. */
  async close(timeoutMs = 2000): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    await Promise.race([lease.revoke().catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs))]);
  }

  private async ensureLease(): Promise<Lease> {
    if (this.lease) return this.lease;
    const lease = this.o.client.lease(this.o.ttlSec, { autoKeepAlive: true });
    lease.on('lost', (err) => {
      if (this.lease !== lease) return;
      this.dropLease();
      this.o.onLost(err);
    });
    try {
      await lease.grant();
    } catch (e) {
      lease.release();
      throw e;
    }
    this.lease = lease;
    const existing = await this.o.client.getAll().prefix(this.o.keys.presenceStatuses(this.o.service)).keys();
    this.written = new Map(existing.map((k) => [lastSegment(k), '']));
    return lease;
  }

  private dropLease(): void {
    const lease = this.lease;
    this.lease = undefined;
    this.written = new Map([...this.written.keys()].map((u) => [u, '']));
    lease?.release();
  }
}
