/**
 * The engine's etcd adapter. Every call is one fenced transaction, so a
 * deposed leader cannot write (a pass's view usually comes from the term's
 * watches instead, view-cache.ts; its writes are fenced all the same):
 *   readView    1 request: the five prefixes at one revision (a consistent snapshot)
 *   readBodies  1 request per 100 bodies not yet cached
 *   apply       1 request per 100 operations, up to TXNS_IN_FLIGHT at once
 *               in the order waves.ts gives (deletes committed before puts)
 * It counts its requests so a pass can report what it cost etcd. Reads
 * without a fence (`fleetx why`, which only looks) are plain snapshots.
 *
 * Errors: FencedOutError when the fence no longer holds; 'conflict' when a
 * write's guard (a unit's mod revision) failed; otherwise what
 * `convert` makes of etcd3's error (the engine passes the registry's
 * toFleetxError), by default FleetxError 'unavailable' (retryable).
 */
import type { IKeyValue, IRequestOp } from 'etcd3';
import PQueue from 'p-queue';
import { isFencedOut, type Fence } from '../registry/fence.js';
import { FencedStore } from '../registry/fenced-store.js';
import type { EngineOp } from './plan.js';
import type { RawKV, RawView } from './view.js';
import type { OwnWrite } from './view-cache.js';
import { writeWaves } from './waves.js';

/** etcd's default --max-txn-ops is 128; stay below it. */
export const MAX_TXN_OPS = 100;

/**
 * Transactions of one pass in flight at once. etcd commits concurrent
 * transactions in one raft round and WAL sync, so a pass of 10,000 schedule
 * keys no longer waits on 100 commits in a row; a few are enough to fill
 * etcd's batches, more only queue there.
 */
export const TXNS_IN_FLIGHT = 4;

export class EngineStore extends FencedStore {
  protected readonly who = 'engine';

  async readView(fence?: Fence): Promise<RawView> {
    const prefixes = [
      this.keys.units(),
      this.keys.machines(),
      this.keys.machineMetas(),
      this.keys.schedules(),
      this.keys.unschedulables(),
    ];
    const res = await this.txn(fence, prefixes.map((p) => this.client.getAll().prefix(p)), 'read cluster state');
    const [units, machines, machineMetas, schedules, unschedulable] = res.responses.map((r) => r.response_range.kvs.map(toRaw));
    return {
      revision: res.header.revision,
      units: units ?? [],
      machines: machines ?? [],
      machineMetas: machineMetas ?? [],
      schedules: schedules ?? [],
      unschedulable: unschedulable ?? [],
    };
  }

  /** Bodies by hash; a hash whose key does not exist is absent from the map. */
  async readBodies(fence: Fence | undefined, hashes: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    await bounded(chunks(hashes, MAX_TXN_OPS).map((part) => async () => {
      const res = await this.txn(fence, part.map((h) => this.client.get(this.keys.body(h))), 'read unit bodies');
      res.responses.forEach((r, i) => {
        const kv = r.response_range.kvs[0];
        if (kv !== undefined) out.set(part[i]!, kv.value.toString());
      });
    }));
    return out;
  }

  /**
   * Writes the operations in fenced transactions of at most MAX_TXN_OPS,
   * wave after wave (waves.ts), the transactions of a wave side by side.
   * `hooks.guards` adds, per transaction, keys that must still be at the
   * mod revision the plan was made from (a failure is a retryable
   * 'conflict'); `hooks.committed` hears of each transaction that
   * committed, with its revision. Returns how many transactions. On a
   * failure no further transaction starts; the ones in flight end first,
   * then the error is thrown (a FencedOutError before any other), and the
   * next pass reconciles.
   */
  async apply(fence: Fence, ops: EngineOp[], hooks: ApplyHooks = {}): Promise<number> {
    let n = 0;
    for (const wave of writeWaves(ops, MAX_TXN_OPS)) {
      n += wave.length;
      await bounded(wave.map((part) => async () => {
        const res = await this.txn(fence, part.map((op) => this.toRequest(op)), 'write the schedule', hooks.guards?.(part) ?? []);
        hooks.committed?.(part, res.header.revision);
      }));
    }
    return n;
  }

  /** The key an operation writes, and what it leaves there (undefined: deleted). */
  written(op: EngineOp): OwnWrite {
    const k = this.keys;
    switch (op.type) {
      case 'put-schedule':
        return { part: 'schedules', key: k.schedule(op.machine, op.record.name), value: JSON.stringify(op.record) };
      case 'delete-schedule':
        return { part: 'schedules', key: k.schedule(op.machine, op.name), value: undefined };
      case 'put-unschedulable':
        return { part: 'unschedulable', key: k.unschedulable(op.record.name), value: JSON.stringify(op.record) };
      case 'delete-unschedulable':
        return { part: 'unschedulable', key: k.unschedulable(op.name), value: undefined };
    }
  }

  private toRequest(op: EngineOp): IRequestOp {
    const w = this.written(op);
    return w.value === undefined
      ? { request_delete_range: { key: Buffer.from(w.key) } }
      : { request_put: { key: Buffer.from(w.key), value: Buffer.from(w.value) } };
  }
}

export interface ApplyHooks {
  guards?: (part: readonly EngineOp[]) => Array<{ key: string; modRevision: string }>;
  committed?: (part: readonly EngineOp[], revision: string) => void;
}

function toRaw(kv: IKeyValue): RawKV {
  return { key: kv.key.toString(), value: kv.value.toString(), modRevision: kv.mod_revision };
}

/**
 * Runs the tasks, TXNS_IN_FLIGHT at a time. After a failure nothing more
 * starts; it waits for the running ones and throws the first error, a
 * FencedOutError in preference (the term is over: the pass must stop).
 */
async function bounded(tasks: Array<() => Promise<unknown>>): Promise<void> {
  if (tasks.length === 1) {
    await tasks[0]!();
    return;
  }
  const queue = new PQueue({ concurrency: TXNS_IN_FLIGHT });
  const failures: unknown[] = [];
  for (const task of tasks) {
    void queue.add(async () => {
      if (failures.length > 0) return;
      await task().catch((e: unknown) => void failures.push(e));
    });
  }
  await queue.onIdle();
  if (failures.length > 0) throw failures.find(isFencedOut) ?? failures[0];
}

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
