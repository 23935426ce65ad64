/**
 * The engine's etcd adapter. Every call is one fenced transaction, so a
 * deposed leader neither reads a view it would act on nor writes:
 *   readView    1 request: the five prefixes at one revision (a consistent snapshot)
 *   readBodies  1 request per 100 bodies not yet cached
 *   apply       1 request per 100 operations
 * It counts its requests so a pass can report what it cost etcd. Reads
 * without a fence (`fleetx why`, which only looks) are plain snapshots.
 *
 * Errors: FencedOutError when the fence no longer holds; otherwise what
 * `convert` makes of etcd3's error (the engine passes the registry's
 * toFleetxError), by default FleetxError 'unavailable' (retryable).
 */
import type { IKeyValue, IRequestOp } from 'etcd3';
import type { Fence } from '../registry/fence.js';
import { FencedStore } from '../registry/fenced-store.js';
import type { EngineOp } from './plan.js';
import type { RawKV, RawView } from './view.js';

/** etcd's default --max-txn-ops is 128; stay below it. */
export const MAX_TXN_OPS = 100;

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
    for (const part of chunks(hashes, MAX_TXN_OPS)) {
      const res = await this.txn(fence, part.map((h) => this.client.get(this.keys.body(h))), 'read unit bodies');
      res.responses.forEach((r, i) => {
        const kv = r.response_range.kvs[0];
        if (kv !== undefined) out.set(part[i]!, kv.value.toString());
      });
    }
    return out;
  }

  /** Writes the operations in fenced transactions of at most MAX_TXN_OPS. Returns how many transactions. */
  async apply(fence: Fence, ops: EngineOp[]): Promise<number> {
    const parts = chunks(ops, MAX_TXN_OPS);
    for (const part of parts) await this.txn(fence, part.map((op) => this.toRequest(op)), 'write the schedule');
    return parts.length;
  }

  private toRequest(op: EngineOp): IRequestOp {
    const k = this.keys;
    const put = (key: string, value: unknown): IRequestOp => ({ request_put: { key: Buffer.from(key), value: Buffer.from(JSON.stringify(value)) } });
    const del = (key: string): IRequestOp => ({ request_delete_range: { key: Buffer.from(key) } });
    switch (op.type) {
      case 'put-schedule':
        return put(k.schedule(op.machine, op.record.name), op.record);
      case 'delete-schedule':
        return del(k.schedule(op.machine, op.name));
      case 'put-unschedulable':
        return put(k.unschedulable(op.record.name), op.record);
      case 'delete-unschedulable':
        return del(k.unschedulable(op.name));
    }
  }


}

function toRaw(kv: IKeyValue): RawKV {
  return { key: kv.key.toString(), value: kv.value.toString() };
}

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
