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
import type { Etcd3 } from 'etcd3';
import { FleetxError } from '../errors/errors.js';

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
