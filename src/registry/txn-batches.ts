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
  let compares = 0;
  let ops = 0;
  let bytes = 0;
  for (const item of items) {
    const fits = compares + item.compares <= limits.maxCompares && ops + item.ops <= limits.maxOps && bytes + item.bytes <= limits.maxBytes;
    if (!fits && current.length > 0) {
      batches.push(current);
      current = [];
      compares = ops = bytes = 0;
    }
    current.push(item);
    compares += item.compares;
    ops += item.ops;
    bytes += item.bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
