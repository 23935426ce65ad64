/**
 * The order in which a pass's operations go to etcd, pure. A pass of more
 * than one transaction's worth (a bulk start of 10,000 units is 10,000+
 * schedule keys) sends several transactions at once, since etcd commits
 * concurrent ones together (one raft round and one WAL sync for several);
 * one after another, the engine spent its time waiting on commits. What
 * must not change is what the sorted operations promise (plan.ts): every
 * schedule key deleted before any new one lands, so a unit moved or
 * displaced is never on two machines, nor a conflicting pair on one, for
 * longer than one transaction. Hence waves, each of whose transactions may
 * run side by side, and each wave after the previous one is committed:
 *
 *   1. transactions of deletes only (concurrently),
 *   2. the one transaction holding the last deletes and the first puts, alone,
 *   3. the rest (puts of schedule keys and unschedulable records, concurrently).
 *
 * The transactions are exactly the chunks of the sorted list that one
 * transaction at a time wrote before (same count, same contents); a pass
 * that fits in one transaction is one wave of one. (Unsorted input still
 * keeps its order of deletes and puts: a wave holds consecutive
 * transactions of one kind only.)
 */
import type { EngineOp } from './plan.js';

export function writeWaves(ops: readonly EngineOp[], maxOps: number): EngineOp[][][] {
  const waves: EngineOp[][][] = [];
  let kind: Kind | undefined;
  for (let i = 0; i < ops.length; i += maxOps) {
    const part = ops.slice(i, i + maxOps);
    const k = kindOf(part);
    // consecutive transactions of deletes only, or of no deletes, share a wave; a mixed one is alone
    if (k !== 'mixed' && k === kind) waves[waves.length - 1]!.push(part);
    else waves.push([part]);
    kind = k;
  }
  return waves;
}

type Kind = 'deletes' | 'mixed' | 'no-deletes';

function kindOf(part: readonly EngineOp[]): Kind {
  const d = part.filter((op) => op.type === 'delete-schedule').length;
  return d === part.length ? 'deletes' : d > 0 ? 'mixed' : 'no-deletes';
}
