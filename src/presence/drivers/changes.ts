/**
 * Shared by drivers that push changes and cannot read the LB back (webhook,
 * command): remember what was last applied per instance and call only when
 * that differs. The first apply() after start pushes every instance once,
 * because what the LB holds is unknown then. A failed call keeps the last
 * known state (or 'unknown') and is retried on the next apply(); a
 * FleetxError 'usage' from send() (bad config) is thrown from apply().
 *
 * No session counts: after a successful 'out' call the instance is reported
 * 'out' at once; the rollout's drainTimeout is what waits for open requests.
 */
import PQueue from 'p-queue';
import { isFleetxError } from '../../errors/errors.js';
import type { Desired, Observed, PresenceDriver, PresenceState } from '../types.js';

/** What webhook and command receive for one instance. */
export interface PresenceChange {
  service: string;
  unit: string;
  /** the machine's IP; "" when the instance's machine is unknown (only when going out) */
  address: string;
  port: number;
  state: 'in' | 'out';
}

/** Hooks (webhook calls, commands) running at once for one service. */
const SEND_CONCURRENCY = 8;

interface Applied {
  state: PresenceState;
  address: string;
  port: number;
}

export abstract class ChangeDriver implements PresenceDriver {
  abstract readonly kind: string;
  private readonly applied = new Map<string, Applied>();

  constructor(protected readonly service: string) {}

  /** Pushes one change; throws (any error) when the LB did not take it. */
  protected abstract send(change: PresenceChange): Promise<void>;

  async apply(desired: readonly Desired[]): Promise<Observed[]> {
    // Changes of different instances go out side by side, a few at a time
    // (the first apply after start pushes every instance); the result keeps
    // the order asked.
    const queue = new PQueue({ concurrency: SEND_CONCURRENCY });
    const out = await queue.addAll(desired.map((d) => () => this.applyOne(d)));
    // instances no longer asked about were taken out (decide keeps them until then)
    const asked = new Set(desired.map((d) => d.unit));
    for (const unit of this.applied.keys()) if (!asked.has(unit)) this.applied.delete(unit);
    return out;
  }

  private async applyOne(d: Desired): Promise<Observed> {
    const change: PresenceChange = { service: this.service, unit: d.unit, address: d.address ?? '', port: d.port, state: d.want };
    const last = this.applied.get(d.unit);
    const same = last && last.state === d.want && (d.want === 'out' || (last.address === change.address && last.port === d.port));
    if (!same) {
      try {
        await this.send(change);
        this.applied.set(d.unit, { state: d.want, address: change.address, port: d.port });
      } catch (e) {
        if (isFleetxError(e) && e.kind === 'usage') throw e; // config, not this instance
        return { unit: d.unit, state: last?.state ?? 'unknown', ...(last?.address ? { address: last.address } : {}), error: message(e) };
      }
    }
    return { unit: d.unit, state: d.want, ...(change.address ? { address: change.address } : {}) };
  }

  async close(): Promise<void> {}
}

export const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
