/**
 * Garbage collection of unit bodies ({p}/body/{hash}), safe against
 * concurrent submits.
 *
 * How: read all units and all body keys in ONE transaction, so both are
 * seen at the same revision R, and compute the bodies no unit references.
 * Delete them in a transaction guarded by two compares:
 *   - per body: its mod_revision <= R. Registry.createUnit puts the body in
 *     the same transaction as the unit that references it, so a submit that
 *     lands after the scan has re-put the body and the delete fails; a
 *     submit after the delete re-creates the body it needs.
 *   - a RANGE compare over {p}/unit/: every unit key has mod_revision <= R,
 *     i.e. no unit was created or re-pointed since the scan (deleted units
 *     do not appear in the range and only remove references). This also
 *     covers any writer that points a unit at an existing body without
 *     re-putting it.
 * Revisions ({p}/revision/, see docs/ROLLOUT.md) reference bodies too and
 * get the same treatment: scanned with the units, a range compare over
 * their prefix, and written in the same transaction as their body.
 * On failure we rescan (a few rounds). A per-body "is it referenced" check
 * is not expressible in etcd (no compare on "some value mentions this
 * hash"), and a global "units changed" counter would need every writer to
 * bump it; these compares need nothing from writers. The cost: gc retries
 * while units change under it, which is fine for a background chore.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import type { Keyspace } from './keys.js';
import { lastSegment } from './keys.js';
import { decodeKv, nextRevision, prefixEnd } from './codec.js';

/** etcd's default --max-txn-ops is 128; each body costs a compare and a delete. */
const BATCH = 60;
const ROUNDS = 5;

/** Test seam: runs between the scan and the delete, to interleave a concurrent writer deterministically. */
export interface GcHooks {
  afterScan?: (round: number) => Promise<void>;
}

/**
 * Deletes unreferenced bodies (only `candidates` if given) and returns the
 * hashes deleted. Best effort: gives up quietly after a few rounds of
 * contention, the next gc will catch up. Throws etcd3 errors unconverted.
 */
export async function collectBodies(client: Etcd3, keys: Keyspace, candidates?: readonly string[], hooks: GcHooks = {}): Promise<string[]> {
  const deleted: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const scan = await scanAtOneRevision(client, keys);
    await hooks.afterScan?.(round);
    let garbage = scan.bodies.filter((b) => !scan.referenced.has(b.hash));
    if (candidates) garbage = garbage.filter((b) => candidates.includes(b.hash));
    if (garbage.length === 0) return deleted;

    let conflicted = false;
    for (let i = 0; i < garbage.length; i += BATCH) {
      const batch = garbage.slice(i, i + BATCH);
      const bound = nextRevision(scan.revision);
      const units = Buffer.from(keys.units());
      const revisions = Buffer.from(keys.allRevisions());
      const res = await client.kv.txn({
        compare: [
          { key: units, range_end: prefixEnd(keys.units()), target: 'Mod', result: 'Less', mod_revision: bound },
          { key: revisions, range_end: prefixEnd(keys.allRevisions()), target: 'Mod', result: 'Less', mod_revision: bound },
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
    success: [range(keys.units(), false), range(keys.bodies(), true), range(keys.allRevisions(), false)],
    failure: [],
  });
  const [units, bodies, revisions] = res.responses.map((r) => r.response_range.kvs);
  const referenced = new Set<string>();
  for (const kv of [...(units ?? []), ...(revisions ?? [])]) {
    const rec = decodeKv<{ hash: string }>(kv);
    referenced.add(rec.hash);
  }
  return {
    revision: res.header.revision,
    referenced,
    bodies: (bodies ?? []).map((kv: IKeyValue) => ({ key: kv.key, hash: lastSegment(kv.key.toString()) })),
  };
}
