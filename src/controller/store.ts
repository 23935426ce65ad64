/**
 * The controller's etcd adapter. Every call is one fenced transaction (the
 * leader key's value and create revision, as src/registry/fence.ts), so a
 * deposed leader neither acts on what it read nor writes:
 *   readRollouts  1 request: rollout records and control commands
 *   readDetails   1 request per 13 rollouts: their instances' unit records,
 *                 template, presence status, holds, revision, the revision
 *                 a revert goes back to, and service,
 *                 plus every state, health, machine and schedule record (one
 *                 range each; schedule keys so a unit's stop/start reaches its
 *                 agent in the same transaction, see writes.ts)
 *   commit        1 request per batch of a WritePlan (usually one)
 * It counts its requests so a pass can report what it cost etcd.
 *
 * Errors: FencedOutError when the fence no longer holds; FleetxError
 * 'conflict' (retryable) when a guarded key changed since it was read;
 * otherwise what `convert` makes of etcd3's error (the registry's
 * toFleetxError), by default 'unavailable'.
 */
import type { Etcd3, IKeyValue, IRequestOp } from 'etcd3';
import type { FleetxError } from '../errors/errors.js';
import type { Fence } from '../registry/fence.js';
import { FencedStore } from '../registry/fenced-store.js';
import { prefixEnd } from '../registry/codec.js';
import { lastSegment, type Keyspace } from '../registry/keys.js';
import type { Batch } from './writes.js';
import { commonPrefix, type RawDetails, type RawKV, type RawReports, type RolloutEntry } from './view.js';

/** Rollouts read together in one detail transaction (7 ranges each, 4 shared). */
const ROLLOUTS_PER_READ = 13;

export class ControllerStore extends FencedStore {
  protected readonly who = 'rollout controller';

  constructor(
    client: Etcd3,
    keys: Keyspace,
    callTimeoutMs = 5000,
    convert?: (e: unknown) => FleetxError,
    private readonly parent?: ControllerStore,
  ) {
    super(client, keys, callTimeoutMs, convert);
  }

  protected override count(): void {
    super.count();
    this.parent?.count();
  }

  /** The same store with its own request counter (one per pass; passes may overlap with passOnce() calls). */
  metered(): ControllerStore {
    return new ControllerStore(this.client, this.keys, this.callTimeoutMs, this.convert, this);
  }

  async readRollouts(fence: Fence): Promise<{ rollouts: RawKV[]; controls: RawKV[] }> {
    const res = await this.txn(fence, [this.range(this.keys.rollouts()), this.range(rolloutControls(this.keys))], 'read rollouts');
    const [rollouts, controls] = res.responses.map((r) => r.response_range.kvs.map(toRaw));
    return { rollouts: rollouts ?? [], controls: controls ?? [] };
  }

  /** Details per rollout (same order as `entries`) and every state, health, machine and schedule record. */
  async readDetails(fence: Fence, entries: RolloutEntry[]): Promise<{ details: RawDetails[] } & RawReports> {
    const out: { details: RawDetails[] } & RawReports = { details: [], states: [], healths: [], machines: [], schedules: [] };
    for (let i = 0; i < entries.length; i += ROLLOUTS_PER_READ) {
      const part = entries.slice(i, i + ROLLOUTS_PER_READ);
      const first = i === 0;
      const ops: IRequestOp[] = first
        ? [this.range(this.keys.states()), this.range(this.keys.healths()), this.range(this.keys.machines()), this.range(this.keys.schedules())]
        : [];
      for (const e of part) {
        const r = e.rollout.value;
        const names = Object.keys(r.instances);
        ops.push(
          // an empty instance list must not read every unit
          names.length > 0 ? this.range(this.keys.unit(commonPrefix(names))) : this.get(this.keys.unit(r.template)),
          this.get(this.keys.unit(r.template)),
          this.range(this.keys.presenceStatuses(e.service)),
          this.range(this.keys.presenceHolds(e.service)),
          this.get(r.toRevision !== undefined ? this.keys.revision(e.service, r.toRevision) : this.keys.service(e.service)),
          this.get(r.revertTo !== undefined ? this.keys.revision(e.service, r.revertTo.revision) : this.keys.service(e.service)),
          this.get(this.keys.service(e.service)),
        );
      }
      const res = await this.txn(fence, ops, 'read rollout instances');
      const kvs = res.responses.map((x) => x.response_range.kvs.map(toRaw));
      let k = 0;
      if (first) {
        out.states = kvs[k++] ?? [];
        out.healths = kvs[k++] ?? [];
        out.machines = kvs[k++] ?? [];
        out.schedules = kvs[k++] ?? [];
      }
      for (const e of part) {
        const names = new Set(Object.keys(e.rollout.value.instances));
        const units = (kvs[k++] ?? []).filter((kv) => names.has(kv.key.slice(this.keys.units().length)));
        const [template, statuses, holds, revision, revertRevision, service] = [kvs[k++]?.[0], kvs[k++] ?? [], kvs[k++] ?? [], kvs[k++]?.[0], kvs[k++]?.[0], kvs[k++]?.[0]];
        out.details.push({
          units,
          ...(template ? { template } : {}),
          statuses,
          holds,
          ...(revision && e.rollout.value.toRevision !== undefined ? { revision } : {}),
          ...(revertRevision && e.rollout.value.revertTo !== undefined ? { revertRevision } : {}),
          ...(service ? { service } : {}),
        });
      }
    }
    return out;
  }

  /** Writes the batches in order, each a fenced transaction guarded by the rollout key's mod revision. */
  async commit(fence: Fence, rolloutKey: string, rolloutModRevision: string, batches: Batch[]): Promise<void> {
    for (const b of batches) {
      const guards = [{ key: rolloutKey, modRevision: rolloutModRevision }, ...b.guards];
      const ops = b.ops.map((o): IRequestOp =>
        o.type === 'put'
          ? { request_put: { key: Buffer.from(o.key), value: Buffer.from(o.value) } }
          : { request_delete_range: { key: Buffer.from(o.key) } },
      );
      await this.txn(fence, ops, `write the rollout of ${lastSegment(rolloutKey)}`, guards);
    }
  }

  private range(prefix: string): IRequestOp {
    return { request_range: { key: Buffer.from(prefix), range_end: prefixEnd(prefix) } };
  }

  private get(key: string): IRequestOp {
    return { request_range: { key: Buffer.from(key) } };
  }
}

/** {p}/rollout-control/ (the keyspace names one service's key only). */
export function rolloutControls(keys: Keyspace): string {
  return keys.rolloutControl('');
}

function toRaw(kv: IKeyValue): RawKV {
  return { key: kv.key.toString(), value: kv.value.toString(), modRevision: kv.mod_revision };
}
