/**
 * What the engine's and the rollout controller's etcd adapters share: the
 * client, the keyspace, a time limit per call, the error conversion, and a
 * count of the requests made (each pass reports what it cost etcd).
 */
import type { Etcd3, IRequestOp, ITxnResponse } from 'etcd3';
import type { FleetxError } from '../errors/errors.js';
import { fencedTxn, snapshotTxn, type Fence, type FencedTxnOptions } from './fence.js';
import type { Keyspace } from './keys.js';

type Op = IRequestOp | { op(): Promise<IRequestOp> };

export abstract class FencedStore {
  /** etcd requests made so far (reads and writes), for cost accounting */
  requests = 0;

  constructor(
    protected readonly client: Etcd3,
    protected readonly keys: Keyspace,
    protected readonly callTimeoutMs = 5000,
    /** converts library errors (e.g. the registry's toFleetxError); FleetxErrors pass through untouched */
    protected readonly convert?: (e: unknown) => FleetxError,
  ) {}

  /** names the store in errors */
  protected abstract readonly who: string;

  /** Counts one request; a metered copy also counts it for its parent. */
  protected count(): void {
    this.requests++;
  }

  /** One fenced transaction (see fencedTxn); without a fence, one snapshot read. */
  protected txn(fence: Fence | undefined, ops: Op[], what: string, guards: FencedTxnOptions['guards'] = []): Promise<ITxnResponse> {
    this.count();
    const o: FencedTxnOptions = { who: this.who, what, timeoutMs: this.callTimeoutMs, guards, ...(this.convert ? { convert: this.convert } : {}) };
    return fence ? fencedTxn(this.client, fence, ops, o) : snapshotTxn(this.client, this.keys.leader(), ops, o);
  }
}
