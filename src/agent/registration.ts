/**
 * Presence: the machine record {p}/machine/{id} and every state record the
 * agent writes live under ONE lease. etcd3's Lease sends keepalives every
 * TTL/3; when it reports the lease lost (etcd expired it, or no keepalive
 * got through for 2 × TTL) the loop grants a new lease, writes the machine
 * record again and tells the reporter to rewrite its state records
 * (`registered`). While no lease is live, put() throws 'unavailable' and the
 * reporter keeps its records pending.
 *
 * {p}/machine-meta/{id} (set by `fleetx set-metadata`) is read on each
 * registration and watched, so the machine record always carries the merged
 * metadata (config file < flags < machine-meta).
 */
import type { Etcd3, Lease } from 'etcd3';
import { unavailableError } from '../errors/errors.js';
import type { Keyspace } from '../registry/keys.js';
import type { MachineRecord } from '../registry/records.js';
import type { Identity } from './identity.js';
import { metadataOf, withOverrides } from '../registry/metadata.js';
import { abortable, backoff, sleep, type Stopper } from './util.js';

export interface RegistrationEvents {
  /** a new lease is live and the machine record written: rewrite state records */
  registered(leaseId: string): void;
  lost(err: unknown): void;
  problem(msg: string, err?: unknown): void;
}

export interface RegistrationOptions {
  ttlSec: number;
  version: string;
  startedAt: string;
}

export class Registration {
  private lease?: Lease;
  private live = false;
  private etcdMeta: Record<string, string> = {};

  constructor(
    private readonly client: Etcd3,
    private readonly keys: Keyspace,
    private readonly identity: Identity,
    private readonly opts: RegistrationOptions,
    private readonly events: RegistrationEvents,
  ) {}

  get isLive(): boolean {
    return this.live;
  }

  /** Writes key=value under the current lease. Throws 'unavailable' when there is none. */
  async put(key: string, value: string): Promise<void> {
    const lease = this.lease;
    if (!lease || !this.live) throw unavailableError('no live etcd lease (re-registering)');
    await lease.put(key).value(value).exec();
  }

  async delete(key: string): Promise<void> {
    await this.client.delete().key(key).exec();
  }

  machineRecord(): MachineRecord {
    return {
      id: this.identity.id,
      ip: this.identity.ip,
      hostname: this.identity.hostname,
      metadata: withOverrides(this.identity.metadata, this.etcdMeta),
      version: this.opts.version,
      startedAt: this.opts.startedAt,
    };
  }

  /** Keeps a lease and the machine record alive until stop. */
  async run(stop: Stopper): Promise<void> {
    let attempt = 0;
    while (!stop.stopped) {
      const lease = this.client.lease(this.opts.ttlSec, { autoKeepAlive: true });
      const lost = new Promise<unknown>((resolve) => lease.on('lost', resolve));
      try {
        const id = await abortable(lease.grant(), stop);
        this.lease = lease;
        this.etcdMeta = await abortable(this.readMeta(), stop);
        await abortable(lease.put(this.keys.machine(this.identity.id)).value(JSON.stringify(this.machineRecord())).exec(), stop);
        this.live = true;
        attempt = 0;
        this.events.registered(id);
        const why = await Promise.race([lost, new Promise<'stop'>((r) => stop.onStop(() => r('stop')))]);
        if (why === 'stop') return; // lease kept: see release()/revoke()
        this.live = false;
        this.events.lost(why);
      } catch (e) {
        this.live = false;
        if (stop.stopped) return; // keep the lease as it is: see release()/revoke()
        lease.release();
        this.events.problem('registering the machine failed; retrying', e);
        await sleep(backoff(attempt++), stop);
      }
    }
  }

  /**
   * Re-reads machine-meta and rewrites the machine record if it changed.
   * Called by the meta watch; errors propagate.
   */
  async refreshMeta(): Promise<void> {
    const meta = await this.readMeta();
    if (JSON.stringify(meta) === JSON.stringify(this.etcdMeta)) return;
    this.etcdMeta = meta;
    await this.put(this.keys.machine(this.identity.id), JSON.stringify(this.machineRecord()));
  }

  /** Watches {p}/machine-meta/{id} (this machine's own key only) until stop. */
  async watchMeta(stop: Stopper): Promise<void> {
    let attempt = 0;
    while (!stop.stopped) {
      try {
        const w = this.client.watch().key(this.keys.machineMeta(this.identity.id)).watcher();
        let off = () => {};
        try {
          const refresh = () => void this.refreshMeta().catch((e) => this.events.problem('updating machine metadata failed', e));
          await new Promise<void>((resolve) => {
            off = stop.onStop(resolve);
            // (re)connected: a change may have happened while the watch was down
            w.on('connected', () => { attempt = 0; if (this.live) refresh(); });
            w.on('put', refresh);
            w.on('delete', refresh);
            w.on('error', (e) => {
              this.events.problem('machine-meta watch failed; watching again', e);
              resolve();
            });
          });
        } finally {
          off();
          // cancel() waits for etcd's answer and can hang while the stream reconnects
          await Promise.race([w.cancel().catch(() => undefined), sleep(1000)]);
        }
        await sleep(backoff(attempt++), stop);
      } catch (e) {
        this.events.problem('watching machine metadata failed', e);
        await sleep(backoff(attempt++), stop);
      }
    }
  }

  /** Stops keepalives; the lease (and with it the records) expires after the TTL unless a restarted agent registers first. */
  release(): void {
    this.live = false;
    this.lease?.release();
  }

  /** Revokes the lease now: the machine and its state records disappear at once (--purge-on-exit). */
  async revoke(): Promise<void> {
    this.live = false;
    await this.lease?.revoke();
  }

  private async readMeta(): Promise<Record<string, string>> {
    const v = await this.client.get(this.keys.machineMeta(this.identity.id)).json().catch(() => null);
    return metadataOf(v);
  }
}

