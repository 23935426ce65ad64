/**
 * Presence: the machine record {p}/machine/{id} and every state record the
 * agent writes live under ONE lease. etcd3's Lease sends keepalives every
 * TTL/3; when it reports the lease lost (etcd expired it, or no keepalive
 * got through for 2 × TTL) the loop grants a new lease, writes the machine
 * record again and tells the reporter to rewrite its state records
 * (`registered`). While no lease is live, put() throws 'unavailable' and the
 * reporter keeps its records pending.
 *
 * Failed registrations are retried after a backoff with jitter
 * (registry/backoff.ts): after an etcd outage, agents do not all come back
 * in the same instant.
 *
 * {p}/machine-meta/{id} (set by `fleetx set-metadata`) is read on each
 * registration and watched (a PrefixWatch on that one key), so the machine record always carries the merged
 * metadata (config file < flags < machine-meta).
 */
import type { Etcd3, Lease } from 'etcd3';
import { unavailableError } from '../errors/errors.js';
import type { Keyspace } from '../registry/keys.js';
import type { MachineRecord } from '../registry/records.js';
import type { Identity } from './identity.js';
import { Backoff, type BackoffOptions } from '../registry/backoff.js';
import type { RecordChange } from '../registry/dirty-writer.js';
import { MergedWrites } from '../registry/merged-writes.js';
import { metadataOf, withOverrides } from '../registry/metadata.js';
import { PrefixWatch } from '../registry/watch.js';
import { abortable, sleep, StopSignal, type Stopper } from './util.js';

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
  /** the backoff between failed registrations (default 250 ms doubling to 5 s) */
  retry?: BackoffOptions;
}

export class Registration {
  private lease?: Lease;
  private live = false;
  private etcdMeta: Record<string, string> = {};
  private readonly retries: Backoff;
  private readonly metaWatch: PrefixWatch;
  private readonly merged = new MergedWrites((changes) => this.commit(changes));
  /** ends the backoff sleep between failed registrations (retryNow) */
  private wake?: StopSignal;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: Keyspace,
    private readonly identity: Identity,
    private readonly opts: RegistrationOptions,
    private readonly events: RegistrationEvents,
  ) {
    this.retries = new Backoff(opts.retry ?? { initialMs: 250, maxMs: 5000 });
    const refresh = () => void this.refreshMeta().catch((e) => this.events.problem('updating machine metadata failed', e));
    this.metaWatch = new PrefixWatch(client, { key: keys.machineMeta(identity.id) }, {
      // every list (the first, and after a reconnection: a change may have been missed) and every change
      replace: () => void (this.live && refresh()),
      event: refresh,
      problem: (msg, err) => this.events.problem(msg, err),
    }, { list: 'revision' });
  }

  get isLive(): boolean {
    return this.live;
  }

  /** Writes key=value under the current lease. Throws 'unavailable' when there is none. */
  async put(key: string, value: string): Promise<void> {
    const lease = this.lease;
    if (!lease || !this.live) throw unavailableError('no live etcd lease (re-registering)');
    await lease.put(key).value(value).exec();
  }

  /**
   * Puts (under the current lease) and deletes in ONE transaction: a pass
   * that started 40 units reports them in one request, not 40. Writes asked
   * for in the same turn (the state reporter's and the health monitor's
   * after one systemd signal) share a transaction (MergedWrites). Throws
   * 'unavailable' when a put is asked for and no lease is live.
   */
  async write(changes: ReadonlyArray<{ key: string; value?: string }>): Promise<void> {
    if (changes.some((c) => c.value !== undefined)) this.liveLease();
    await this.merged.write([...changes]);
  }

  private async commit(changes: RecordChange[]): Promise<void> {
    const leaseId = changes.some((c) => c.value !== undefined) ? await this.liveLease().grant() : undefined;
    await this.client.kv.txn({
      compare: [],
      success: changes.map((c) =>
        c.value === undefined
          ? { request_delete_range: { key: Buffer.from(c.key) } }
          : { request_put: { key: Buffer.from(c.key), value: Buffer.from(c.value), lease: leaseId } },
      ),
      failure: [],
    });
  }

  private liveLease(): Lease {
    if (!this.lease || !this.live) throw unavailableError('no live etcd lease (re-registering)');
    return this.lease;
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
    while (!stop.stopped) {
      const lease = this.client.lease(this.opts.ttlSec, { autoKeepAlive: true });
      const lost = new Promise<unknown>((resolve) => lease.on('lost', resolve));
      try {
        const id = await abortable(lease.grant(), stop);
        this.lease = lease;
        this.etcdMeta = await abortable(this.readMeta(), stop);
        await abortable(lease.put(this.keys.machine(this.identity.id)).value(JSON.stringify(this.machineRecord())).exec(), stop);
        this.live = true;
        this.retries.reset();
        this.events.registered(id);
        const why = await Promise.race([lost, new Promise<'stop'>((r) => stop.onStop(() => r('stop')))]);
        if (why === 'stop') return; // lease kept: see release()/revoke()
        this.live = false;
        this.events.lost(why);
      } catch (e) {
        this.live = false;
        if (stop.stopped) return; // keep the lease as it is: see release()/revoke()
        lease.release();
        if (this.retries.attempts === 0) this.events.problem('registering the machine failed; retrying', e);
        const wake = new StopSignal();
        this.wake = wake;
        const off = stop.onStop(() => wake.stop());
        await sleep(this.retries.next(), wake);
        off();
        this.wake = undefined;
      }
    }
  }

  /**
   * etcd answers again (a watch reconnected): a registration waiting out its
   * backoff retries now. Without this, the machine, state and health
   * records stayed gone for up to the 5 s backoff after etcd was back, and
   * the presence syncer took those instances out of the balancer. The
   * watches' own backoff already spreads the agents.
   */
  retryNow(): void {
    this.wake?.stop();
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

  /** Watches {p}/machine-meta/{id} (this machine's own key only); resolves after the first attempt. */
  watchMeta(): Promise<void> {
    return this.metaWatch.start();
  }

  /** Stops the machine-meta watch and waits for it. */
  stopWatchingMeta(): Promise<void> {
    return this.metaWatch.stop();
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

