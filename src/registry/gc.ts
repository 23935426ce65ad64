/**
 * Garbage collection of unit bodies ({p}/body/{hash}), safe against
 * concurrent submits.
 *
 * How: read all units and all body keys in ONE transaction, so both are
 * seen at the same revision R, and compute the bodies no unit references.
 * Delete them in a transaction guarded by
 *   - a RANGE compare over {p}/unit/: every unit key has mod_revision <= R,
 *     i.e. no unit was created or re-pointed since the scan (deleting units
 *     only removes references, and deleted keys do not appear in the range);
 *   - per body: its mod_revision <= R, i.e. nobody re-put it since the scan.
 * Every write that makes a unit reference a body (Registry.createUnit) puts
 * the body in the same transaction as the unit. So a concurrent submit
 * either commits first (its unit key has a revision > R, our compare fails,
 * we rescan) or after us (it re-creates the body it needs). A per-body
 * reference check is not possible in etcd (no compare on "some value
 * mentions this hash"), and a global "units changed" counter would need
 * every writer to bump it; the range compare needs nothing from writers.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import type { UnitRecord } from './records.js';
import type { Keyspace } from './keys.js';
import { lastSegment } from './keys.js';
import { decodeKv, nextRevision, prefixEnd } from './codec.js';

/** etcd's default --max-txn-ops is 128; each body costs a compare and a delete. */
const BATCH = 60;
const ROUNDS = 5;

/**
 * Deletes unreferenced bodies (only `candidates` if given) and returns the
 * hashes deleted. Best effort: gives up quietly after a few rounds of
 * contention, the next gc will catch up. Throws etcd3 errors unconverted.
 */
export async function collectBodies(client: Etcd3, keys: Keyspace, candidates?: readonly string[]): Promise<string[]> {
  const deleted: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const scan = await scanAtOneRevision(client, keys);
    let garbage = scan.bodies.filter((b) => !scan.referenced.has(b.hash));
    if (candidates) garbage = garbage.filter((b) => candidates.includes(b.hash));
    if (garbage.length === 0) return deleted;

    let conflicted = false;
    for (let i = 0; i < garbage.length; i += BATCH) {
      const batch = garbage.slice(i, i + BATCH);
      const bound = nextRevision(scan.revision);
      const units = Buffer.from(keys.units());
      const res = await client.kv.txn({
        compare: [
          { key: units, range_end: prefixEnd(keys.units()), target: 'Mod', result: 'Less', mod_revision: bound },
          ...batch.map((b) => ({ key: b.key, target: 'Mod' as const, result: 'Less' as const, mod_revision: bound })),
        ],
        success: batch.map((b) => ({ request_delete_range: { key: b.key } })),
        failure: [],
      });
      if (res.succeeded) deleted.push(...batch.map((b) => b.hash));
      else conflicted = true;
    }
    if (!conflicted) return deleted;
  }
  return deleted;
}

interface Scan {
  revision: string;
  referenced: Set<string>;
  bodies: Array<{ key: Buffer; hash: string }>;
}

async function scanAtOneRevision(client: Etcd3, keys: Keyspace): Promise<Scan> {
  const range = (prefix: string, keysOnly: boolean) => ({
    request_range: { key: Buffer.from(prefix), range_end: prefixEnd(prefix), keys_only: keysOnly },
  });
  const res = await client.kv.txn({
    compare: [],
    success: [range(keys.units(), false), range(keys.bodies(), true)],
    failure: [],
  });
  const [units, bodies] = res.responses.map((r) => r.response_range.kvs);
  const referenced = new Set<string>();
  for (const kv of units ?? []) {
    const rec = decodeKv<UnitRecord>(kv);
    referenced.add(rec.hash);
  }
  return {
    revision: res.header.revision,
    referenced,
    bodies: (bodies ?? []).map((kv: IKeyValue) => ({ key: kv.key, hash: lastSegment(kv.key.toString()) })),
  };
}
