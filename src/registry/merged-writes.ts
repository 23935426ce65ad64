/**
 * Record writes that callers make in the same turn of the event loop go out
 * together, in as few etcd transactions as etcd's limits allow. An agent's
 * state reporter and health monitor both flush after the same systemd
 * signal: merged, that is one request instead of two, which is what etcd
 * (and each agent's gRPC stack) pays for most when a thousand hosts report
 * at once (issue 10's bench:scale).
 *
 * Each call stays whole: its changes land in one transaction, all or none,
 * and its promise settles with that transaction. Calls that name the same
 * key are never merged (etcd refuses a transaction that puts one key twice);
 * transactions of one turn are sent side by side, as the calls were before.
 */
import type { RecordChange } from './dirty-writer.js';
import { ETCD_TXN_LIMITS, packTxns, type TxnLimits } from './txn-batches.js';

interface Call {
  changes: RecordChange[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class MergedWrites {
  private pending: Call[] = [];
  private scheduled = false;

  /** `commit` writes changes in one transaction and throws when it could not (nothing was written). */
  constructor(
    private readonly commit: (changes: RecordChange[]) => Promise<void>,
    private readonly limits: TxnLimits = ETCD_TXN_LIMITS,
  ) {}

  write(changes: RecordChange[]): Promise<void> {
    if (changes.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.pending.push({ changes, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // setImmediate runs after this turn's timers and I/O callbacks: flushes
      // that timers due at the same moment started are in `pending` by then
      setImmediate(() => this.send());
    });
  }

  private send(): void {
    this.scheduled = false;
    const calls = this.pending;
    this.pending = [];
    for (const batch of mergeCalls(calls, this.limits)) {
      this.commit(batch.flatMap((c) => c.changes)).then(
        () => batch.forEach((c) => c.resolve()),
        (err: unknown) => batch.forEach((c) => c.reject(err)),
      );
    }
  }
}

/**
 * Pure: calls grouped, in order, into transactions within `limits`; a call
 * that names a key an earlier call of the group names starts a new group.
 */
export function mergeCalls<T extends { changes: readonly RecordChange[] }>(calls: readonly T[], limits: TxnLimits = ETCD_TXN_LIMITS): T[][] {
  const out: T[][] = [];
  let run: T[] = [];
  let keys = new Set<string>();
  const flushRun = () => {
    if (run.length > 0) out.push(...packTxns(run.map((call) => ({ call, compares: 0, ops: call.changes.length, bytes: bytesOf(call.changes) })), limits).map((b) => b.map((i) => i.call)));
    run = [];
    keys = new Set();
  };
  for (const call of calls) {
    if (call.changes.some((c) => keys.has(c.key))) flushRun();
    run.push(call);
    for (const c of call.changes) keys.add(c.key);
  }
  flushRun();
  return out;
}

function bytesOf(changes: readonly RecordChange[]): number {
  let n = 0;
  for (const c of changes) n += Buffer.byteLength(c.key) + (c.value === undefined ? 0 : Buffer.byteLength(c.value));
  return n;
}
