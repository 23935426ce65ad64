/**
 * Packing many small writes into few etcd transactions, within etcd's
 * limits: at most --max-txn-ops (128 by default in etcd 3.4) compares and
 * as many operations per transaction, and at most --max-request-bytes
 * (1.5 MiB by default) per request. Pure: the callers send the batches.
 */

/** One unit of work that must land in a single transaction (its compares guard its operations). */
export interface TxnItem {
  compares: number;
  ops: number;
  bytes: number;
  /**
   * The part of `ops` and `bytes` (a body that many instances of one
   * template put) that a transaction holds once, however many of its items
   * carry it: the sender puts each key once per transaction.
   */
  shared?: { key: string; ops: number; bytes: number };
}

export interface TxnLimits {
  maxCompares: number;
  maxOps: number;
  maxBytes: number;
}

/**
 * Below etcd's defaults with room to spare: 100 of 128 operations, and
 * 1 MiB of keys and values of 1.5 MiB per request (headers and encoding
 * take the rest).
 */
export const ETCD_TXN_LIMITS: TxnLimits = { maxCompares: 100, maxOps: 100, maxBytes: 1024 * 1024 };

/**
 * Groups items, in order, into batches within the limits. An item that
 * exceeds a limit on its own gets a batch of its own (etcd then refuses
 * it with a clear error, rather than this splitting what must stay whole).
 */
export function packTxns<T extends TxnItem>(items: readonly T[], limits: TxnLimits = ETCD_TXN_LIMITS): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let shared = new Set<string>();
  let compares = 0;
  let ops = 0;
  let bytes = 0;
  for (const item of items) {
    let add = addedBy(item, shared);
    const fits = compares + item.compares <= limits.maxCompares && ops + add.ops <= limits.maxOps && bytes + add.bytes <= limits.maxBytes;
    if (!fits && current.length > 0) {
      batches.push(current);
      current = [];
      shared = new Set();
      compares = ops = bytes = 0;
      add = addedBy(item, shared);
    }
    current.push(item);
    if (item.shared) shared.add(item.shared.key);
    compares += item.compares;
    ops += add.ops;
    bytes += add.bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** What an item adds to a transaction that already holds the shared keys `held`. */
function addedBy(item: TxnItem, held: ReadonlySet<string>): { ops: number; bytes: number } {
  if (item.shared === undefined || !held.has(item.shared.key)) return { ops: item.ops, bytes: item.bytes };
  return { ops: item.ops - item.shared.ops, bytes: item.bytes - item.shared.bytes };
}
