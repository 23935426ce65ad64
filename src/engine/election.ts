/**
 * Leader election of the engine through one etcd key, {p}/engine/leader.
 *
 * A campaign is one transaction: "if the key does not exist, create it with
 * my id under my lease, else read it". The winner's term is identified by the
 * key's create revision (see fence.ts). Followers then watch the key and
 * campaign again as soon as it is deleted (lease expired, leader resigned).
 * The same loop re-confirms a leader: any change to the key, a re-list of
 * its watch (after a disconnection), a lost lease or a fenced write that
 * failed (recheck()) makes it look again. There is no periodic poll by
 * default: an idle cluster sends etcd only keepalives and watch streams
 * (an optional `pollMs` brings the old safety net back).
 *
 * A failed campaign is retried after a backoff with jitter (registry/
 * backoff.ts) that nothing but stop() cuts short: during an etcd outage
 * every failed lease grant also reports the lease `lost`, and when that woke
 * the loop at once it spun (fleetx logged ~37,500 failed campaigns in 8 s).
 * A run of failures is reported once, as one `warning` when campaigning
 * starts failing; `campaignFailures` counts them all.
 *
 * Never trust "the lease is not lost yet": etcd3 reports `lost` about 2 x TTL
 * after the last keepalive while etcd expires the lease after 1 x TTL. So a
 * leader whose lease was not renewed for a whole TTL deposes itself, and every
 * write is fenced anyway.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue, Lease } from 'etcd3';
import { FleetxError, isFleetxError, unavailableError } from '../errors/errors.js';
import { Backoff, sleep, type BackoffOptions } from '../registry/backoff.js';
import { PrefixWatch } from '../registry/watch.js';
import type { Fence } from '../registry/fence.js';
import { etcd3 } from '../registry/libraries.js';

export type ElectionState = 'idle' | 'follower' | 'leader' | 'stopped';

export interface ElectionEvents {
  state: [state: ElectionState];
  /** this process leads from now on; every write must use this fence */
  elected: [fence: Fence];
  /** the term of `fence` is over (or may be: the lease was not renewed in time) */
  deposed: [fence: Fence, reason: string];
  /** campaigning started failing (once per run of failures), or a resign failed; the election retries by itself */
  warning: [error: FleetxError];
}

export interface ElectionOptions {
  client: Etcd3;
  /** the leader key, keyspace(prefix).leader() */
  key: string;
  /** this machine's id: the leader key's value */
  id: string;
  /** TTL of the election lease in seconds (default 10). etcd expires the key this long after a crash. */
  ttlSeconds?: number;
  /**
   * safety-net re-check while nothing happens on the key, ms (default 0:
   * none; the key's watch and the lease's events are what wake the loop)
   */
  pollMs?: number;
  /** first pause after a failed campaign, ms (default 1 000); grows with jitter up to 10 s while failures go on */
  retryMs?: number;
  /** overrides the retry backoff (tests pin its randomness) */
  backoff?: BackoffOptions;
  /** deadline of each etcd call, ms (default 5 000) */
  callTimeoutMs?: number;
}

type Outcome = { kind: 'leader'; fence: Fence; revision: string } | { kind: 'follower'; leader: string; revision: string };

export class Election extends EventEmitter<ElectionEvents> {
  private readonly client: Etcd3;
  private readonly key: string;
  private readonly id: string;
  private readonly ttlMs: number;
  private readonly pollMs: number;
  private readonly retryMs: number;
  private readonly callTimeoutMs: number;

  private current: ElectionState = 'idle';
  private fence: Fence | undefined;
  private lease: Lease | undefined;
  private leaseLost = false;
  private lastRenewal = 0;
  private wake: (() => void) | undefined;
  /** a nudge that arrived while no pause was waiting: the next pause returns at once */
  private pending = false;
  private watch: PrefixWatch | undefined;
  private readonly retries: Backoff;
  private failures = 0;
  private trouble: number | undefined;
  private readonly abort = new AbortController();
  private guard: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;

  constructor(opts: ElectionOptions) {
    super();
    this.client = opts.client;
    this.key = opts.key;
    this.id = opts.id;
    this.ttlMs = (opts.ttlSeconds ?? 10) * 1000;
    this.pollMs = opts.pollMs ?? 0;
    this.retryMs = opts.retryMs ?? 1000;
    this.callTimeoutMs = opts.callTimeoutMs ?? 5000;
    this.retries = new Backoff(opts.backoff ?? { initialMs: this.retryMs, maxMs: Math.max(this.retryMs, 10_000) });
  }

  /**
   * The last moment (Date.now() ms) this election knew it was cut off from
   * etcd: its lease went unrenewed for over half the TTL (keepalives go out
   * every TTL/3), a campaign failed, or the lease was lost. The engine holds
   * vanished machines for a while after it (absence.ts, fleet #1289).
   */
  get troubleAt(): number | undefined {
    return this.trouble;
  }

  /** Failed campaigns since the election started (each one waited its backoff). */
  get campaignFailures(): number {
    return this.failures;
  }

  get state(): ElectionState {
    return this.current;
  }

  /** The fence of the current term, while leader. */
  get leaderFence(): Fence | undefined {
    return this.fence;
  }

  start(): void {
    if (this.loop !== undefined || this.current === 'stopped') return;
    this.loop = this.run();
  }

  /** Makes the loop look at the leader key now (e.g. after a fenced write failed). */
  recheck(): void {
    this.nudge();
  }

  /** Ends the loop, resigns if leader (so a follower takes over at once) and revokes the lease. */
  async stop(): Promise<void> {
    if (this.current === 'stopped') return this.loop;
    const fence = this.fence;
    this.setState('stopped');
    this.abort.abort();
    this.nudge();
    await this.loop;
    if (fence !== undefined) {
      this.fence = undefined;
      this.emit('deposed', fence, 'stopped');
      await this.resign(fence).catch((e) => this.warn(e, 'resign'));
    }
    await this.lease?.revoke({ deadline: this.deadline() }).catch((e) => this.warn(e, 'revoke lease'));
    this.lease = undefined;
  }

  private async run(): Promise<void> {
    // One watcher on the key for the whole life of the election, opened
    // before the first campaign: every change after a campaign's read is
    // seen (an older event only causes one extra look). Creating a watcher
    // per wait would churn etcd3's watch stream, whose cancellations count
    // as failures in its circuit breaker.
    await this.openWatch();
    this.guard = setInterval(() => {
      if (this.lease !== undefined && Date.now() - this.lastRenewal > this.ttlMs / 2) this.trouble = Date.now();
      if (this.fence !== undefined && this.renewalOverdue()) {
        this.depose('lease not renewed within its TTL');
        this.nudge();
      }
    }, Math.min(1000, Math.max(100, this.ttlMs / 10)));
    try {
      await this.campaignLoop();
    } finally {
      clearInterval(this.guard);
      await this.watch?.stop();
      this.watch = undefined;
    }
  }

  private async campaignLoop(): Promise<void> {
    while (!this.isStopped()) {
      let revision: string | undefined;
      try {
        const leaseId = await this.ensureLease();
        if (this.isStopped()) break;
        const outcome = await this.campaign(leaseId);
        if (this.isStopped()) break;
        this.retries.reset();
        if (outcome.kind === 'leader' && this.renewalOverdue()) {
          // The key is ours, but nothing proves the lease outlives this
          // moment: wait for a keepalive to succeed (or the lease to be lost)
          // instead of flapping between elected and deposed.
          if (this.fence !== undefined) this.depose('lease not renewed within its TTL');
        } else {
          this.apply(outcome);
          revision = outcome.revision;
        }
      } catch (e) {
        this.failures++;
        this.trouble = Date.now();
        if (e instanceof etcd3.EtcdLeaseInvalidError) this.dropLease('lease expired or was revoked');
        else if (this.retries.attempts === 0) this.warn(e, 'campaign');
        if (this.fence !== undefined && this.renewalOverdue()) this.depose('lease not renewed within its TTL');
        if (this.isStopped()) break;
        // nudges (a lost lease, a key event) do not cut this short: only stop() does
        await sleep(this.retries.next(), this.abort.signal);
        this.pending = false;
        continue;
      }
      if (this.isStopped()) break;
      await this.pause(revision === undefined ? this.retryMs : this.pollMs);
    }
  }

  /** One transaction: create the key if absent, else read it. */
  private async campaign(leaseId: string, reclaimed = false): Promise<Outcome> {
    const res = await this.client
      .if(this.key, 'Create', '==', 0)
      .then(this.client.put(this.key).value(this.id).lease(leaseId))
      .else(this.client.get(this.key))
      .options({ deadline: this.deadline() })
      .commit();
    const revision = res.header.revision;
    if (res.succeeded) return { kind: 'leader', fence: { key: this.key, id: this.id, createRevision: revision }, revision };
    const kv: IKeyValue | undefined = res.responses[0]?.response_range.kvs[0];
    if (kv === undefined) return { kind: 'follower', leader: '', revision }; // deleted in between: watch sees it
    const value = kv.value.toString();
    // Our own key under our live lease: the term continues (or resumes after a self-deposition).
    if (value === this.id && kv.lease === leaseId) {
      return { kind: 'leader', fence: { key: this.key, id: this.id, createRevision: kv.create_revision }, revision };
    }
    if (value === this.id && !reclaimed) {
      // One agent runs per machine, so our id under another lease is the
      // term of this machine's previous agent process, killed before it
      // could resign. Waiting for its lease to lapse would stall scheduling
      // for a whole TTL; take the key back now. The compare on its create
      // revision deletes nothing newer, and that old term's writes are
      // fenced out by the same create revision.
      await this.client
        .if(this.key, 'Create', '==', kv.create_revision)
        .and(this.key, 'Value', '==', this.id)
        .then(this.client.delete().key(this.key))
        .options({ deadline: this.deadline() })
        .commit();
      return this.campaign(leaseId, true);
    }
    return { kind: 'follower', leader: value, revision };
  }

  private apply(outcome: Outcome): void {
    if (outcome.kind === 'follower') {
      if (this.fence !== undefined) this.depose(`leader key now held by ${outcome.leader || 'nobody'}`);
      this.setState('follower');
      return;
    }
    const next = outcome.fence;
    if (this.fence !== undefined && this.fence.createRevision === next.createRevision) return;
    if (this.fence !== undefined) this.depose('a new term started');
    this.fence = next;
    this.setState('leader');
    this.emit('elected', next);
  }

  private depose(reason: string): void {
    const fence = this.fence;
    if (fence === undefined) return;
    this.fence = undefined;
    if (this.current === 'leader') this.setState('follower');
    this.emit('deposed', fence, reason);
  }

  /**
   * Opens the key watch; resolves when it is in place, or after its first
   * attempt failed (it keeps trying). Every change, and every re-list after
   * the first (something may have been missed), makes the loop look again.
   */
  private openWatch(): Promise<void> {
    if (this.isStopped()) return Promise.resolve();
    let lists = 0;
    this.watch = new PrefixWatch(this.client, { key: this.key }, {
      replace: () => void (lists++ > 0 && this.nudge()),
      event: () => this.nudge(),
      problem: () => undefined, // campaigns report etcd trouble; the watch recovers by itself
    }, { list: 'revision', backoff: { initialMs: this.retryMs, maxMs: Math.max(this.retryMs, 10_000) } });
    return this.watch.start();
  }

  /** Makes the loop look at the key now, or as soon as it next waits. */
  private nudge(): void {
    if (this.wake !== undefined) this.wake();
    else this.pending = true;
  }

  /** Waits for a nudge (key changed, lease lost, recheck, stop) or `ms` (0: only a nudge). */
  private pause(ms: number): Promise<void> {
    if (this.pending || this.isStopped()) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      // With no poll (ms 0) only a nudge ends the wait: no timer. (A far-off
      // one, setTimeout's maximum of 24.8 days, was kept here for a while
      // because engine-watch's compaction test failed without it; it passed
      // 5 times out of 5 without it on 2026-12-05, after the registry's
      // watch and keepalive fixes.)
      const timer = ms > 0 ? setTimeout(() => done(), ms) : undefined;
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.pending = false;
        resolve();
      };
      this.wake = done;
    });
  }

  private async ensureLease(): Promise<string> {
    if (this.lease === undefined || this.leaseLost) {
      if (this.lease !== undefined) this.dropLease('lease lost');
      const lease = this.client.lease(this.ttlMs / 1000, { deadline: this.deadline() });
      this.lease = lease;
      this.leaseLost = false;
      this.lastRenewal = Date.now();
      // A renewal counts from when its keepalive was SENT: etcd's expiry is at
      // least that plus the TTL, so this bound errs on the safe side.
      let sentAt: number | undefined;
      lease.on('keepaliveFired', () => {
        sentAt ??= Date.now();
      });
      lease.on('keepaliveSucceeded', () => {
        if (this.lease === lease && sentAt !== undefined) this.lastRenewal = sentAt;
        sentAt = undefined;
      });
      lease.on('lost', () => {
        if (this.lease !== lease) return;
        this.trouble = Date.now();
        this.leaseLost = true;
        this.depose('lease lost');
        this.nudge();
      });
    }
    return this.lease.grant();
  }

  private dropLease(reason: string): void {
    this.depose(reason);
    this.lease?.release();
    this.lease = undefined;
    this.leaseLost = false;
  }

  private renewalOverdue(): boolean {
    return Date.now() - this.lastRenewal > this.ttlMs;
  }

  private async resign(fence: Fence): Promise<void> {
    await this.client
      .if(fence.key, 'Value', '==', fence.id)
      .and(fence.key, 'Create', '==', fence.createRevision)
      .then(this.client.delete().key(fence.key))
      .options({ deadline: this.deadline() })
      .commit();
  }

  private deadline(): number {
    return Date.now() + this.callTimeoutMs;
  }

  /** a method, not a field read, so the compiler does not narrow it across awaits */
  private isStopped(): boolean {
    return this.current === 'stopped';
  }

  private setState(state: ElectionState): void {
    if (this.current === state) return;
    this.current = state;
    this.emit('state', state);
  }

  private warn(e: unknown, what: string): void {
    const err = isFleetxError(e) ? e : unavailableError(`engine election: ${what} failed: ${(e as Error)?.message ?? String(e)}`, e);
    this.emit('warning', err);
  }
}
