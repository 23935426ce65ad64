/**
 * The etcd driver: keeps `{etcdPrefix}/{unit} = "address:port"` for every
 * instance that is in, and no key for one that is out, for watchers such as
 * confd, vulcand or nginx templates. The keys are plain (no lease): if the
 * syncer dies, the LB keeps its last good set rather than losing every
 * backend at once.
 *
 * apply() reads the prefix back each time, so keys left by an earlier run
 * for instances nobody asks about any more are reported 'in' and then
 * deleted by the next decision. Errors: 'unavailable'/'usage' from etcd,
 * converted once by toFleetxError; never per-instance.
 */
import type { Etcd3 } from 'etcd3';
import { usageError } from '../../errors/errors.js';
import { toFleetxError, type ErrorContext } from '../../registry/errors.js';
import type { Desired, Observed, PresenceDriver } from '../types.js';

export interface EtcdDriverOptions {
  client: Etcd3;
  /** e.g. /lb/app; keys are {etcdPrefix}/{unit} */
  etcdPrefix: string;
  connection: ErrorContext;
}

export class EtcdDriver implements PresenceDriver {
  readonly kind = 'etcd';
  private readonly prefix: string;

  /** @throws FleetxError 'usage' for a prefix that does not start with "/". */
  constructor(private readonly opts: EtcdDriverOptions) {
    const p = opts.etcdPrefix.replace(/\/+$/, '');
    if (!p.startsWith('/')) throw usageError(`presence.etcdPrefix "${opts.etcdPrefix}" must start with "/"`);
    this.prefix = `${p}/`;
  }

  async apply(desired: readonly Desired[]): Promise<Observed[]> {
    const { client } = this.opts;
    try {
      const current = await this.read();
      for (const d of desired) {
        const key = this.prefix + d.unit;
        const want = d.want === 'in' ? `${d.address}:${d.port}` : undefined;
        if (want === current.get(d.unit)) continue;
        if (want === undefined) await client.delete().key(key).exec();
        else await client.put(key).value(want).exec();
        if (want === undefined) current.delete(d.unit);
        else current.set(d.unit, want);
      }
      const out: Observed[] = desired.map((d) => observed(d.unit, current.get(d.unit)));
      const asked = new Set(desired.map((d) => d.unit));
      for (const [unit, value] of current) if (!asked.has(unit)) out.push(observed(unit, value));
      return out;
    } catch (e) {
      throw toFleetxError(e, this.opts.connection);
    }
  }

  async close(): Promise<void> {
    // the client belongs to the syncer
  }

  private async read(): Promise<Map<string, string>> {
    const all = await this.opts.client.getAll().prefix(this.prefix).strings();
    const m = new Map<string, string>();
    for (const [k, v] of Object.entries(all)) {
      const unit = k.slice(this.prefix.length);
      if (unit !== '' && !unit.includes('/')) m.set(unit, v);
    }
    return m;
  }
}

function observed(unit: string, value: string | undefined): Observed {
  if (value === undefined) return { unit, state: 'out' };
  return { unit, state: 'in', address: value.replace(/:\d+$/, '') };
}
