/**
 * The leader fence. Leadership is a key ({p}/engine/leader) created under the
 * leader's lease; its value is the leader's machine id and its create
 * revision is unique to one term. Every engine write is a transaction that
 * compares both, so a deposed leader (lease expired, key deleted and
 * recreated by someone else, or even re-elected itself in a later term)
 * cannot write with a stale view. Comparing the value alone would not be
 * enough: the same machine may win a later term while an old pass of its
 * previous term is still applying.
 */
import type { Etcd3, IRequestOp, ITxnResponse } from 'etcd3';
import { FleetxError, isFleetxError, unavailableError } from '../errors/errors.js';

/** One leadership term. */
export interface Fence {
  /** the leader key, {p}/engine/leader */
  key: string;
  /** the leader's machine id, stored as the key's value */
  id: string;
  /** create revision of the leader key in this term (etcd revisions are strings) */
  createRevision: string;
}

/** Thrown when a fenced transaction fails its comparison: this term is over. */
export class FencedOutError extends FleetxError {
  constructor(fence: Fence) {
    super('conflict', `engine leadership of ${fence.id} (term at revision ${fence.createRevision}) is over; write rejected`, {
      hint: 'another engine is leader now, or this one lost its lease; it will campaign again',
      retryable: false,
    });
  }
}

export function isFencedOut(e: unknown): e is FencedOutError {
  return e instanceof FencedOutError;
}

/**
 * A transaction builder whose success branch runs only while `fence` holds.
 * Call `.then(...ops).commit()` on it (never `await` the builder itself: it
 * has a `then` method).
 */
export function fenced(client: Etcd3, fence: Fence) {
  return client
    .if(fence.key, 'Value', '==', fence.id)
    .and(fence.key, 'Create', '==', fence.createRevision);
}

/** What a fenced transaction needs besides its operations. */
export interface FencedTxnOptions {
  /** names the caller in errors, e.g. 'engine' or 'rollout controller' */
  who: string;
  /** what the transaction does, for errors ("read rollouts") */
  what: string;
  timeoutMs: number;
  /** keys that must still be at the mod revision they were read at */
  guards?: ReadonlyArray<{ key: string; modRevision: string }>;
  /** converts library errors (e.g. the registry's toFleetxError); FleetxErrors pass through untouched */
  convert?: (e: unknown) => FleetxError;
}

type Op = IRequestOp | { op(): Promise<IRequestOp> };

/**
 * One transaction whose operations run only while `fence` holds and every
 * guard is unchanged. Errors: FencedOutError when the term is over; a
 * retryable 'conflict' when only a guarded key changed; etcd3's own errors
 * through `convert`, by default 'unavailable'.
 */
export async function fencedTxn(client: Etcd3, fence: Fence, ops: Op[], o: FencedTxnOptions): Promise<ITxnResponse> {
  let b = fenced(client, fence);
  for (const g of o.guards ?? []) b = b.and(g.key, 'Mod', '==', g.modRevision);
  // With guards a failure may be theirs: the else branch reads the leader key to tell which.
  const withElse = (o.guards?.length ?? 0) > 0 ? b.then(...ops).else(client.get(fence.key)) : b.then(...ops);
  const res = await commitOrConvert(withElse, o);
  if (res.succeeded) return res;
  const leader = res.responses[0]?.response_range.kvs[0];
  if ((o.guards?.length ?? 0) === 0 || leader === undefined || leader.value.toString() !== fence.id || leader.create_revision !== fence.createRevision) {
    throw new FencedOutError(fence);
  }
  throw new FleetxError('conflict', `${o.who}: cannot ${o.what}: a record changed since it was read; retrying on the next pass`, { retryable: true });
}

/** Reads in one transaction at one revision, with no fence (for callers that only look). */
export async function snapshotTxn(client: Etcd3, anyKey: string, ops: Op[], o: FencedTxnOptions): Promise<ITxnResponse> {
  // a comparison that always holds (every key's version, 0 when missing, is > -1)
  return commitOrConvert(client.if(anyKey, 'Version', '>', -1).then(...ops), o);
}

async function commitOrConvert(b: ReturnType<Etcd3['if']>, o: FencedTxnOptions): Promise<ITxnResponse> {
  try {
    return await b.options({ deadline: Date.now() + o.timeoutMs }).commit();
  } catch (e) {
    if (isFleetxError(e)) throw e;
    if (o.convert !== undefined) throw o.convert(e);
    throw unavailableError(`${o.who}: cannot ${o.what} in etcd: ${(e as Error)?.message ?? String(e)}`, e);
  }
}
