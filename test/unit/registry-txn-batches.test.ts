import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packTxns, type TxnItem, type TxnLimits } from '../../src/registry/txn-batches.js';

const limits: TxnLimits = { maxCompares: 4, maxOps: 6, maxBytes: 100 };
const item = (id: number, ops = 1, bytes = 10, compares = 1) => ({ id, compares, ops, bytes });
const ids = (batches: Array<Array<{ id: number }>>) => batches.map((b) => b.map((i) => i.id));
/** An item that also puts the shared key `key` (1 operation, 10 bytes, counted once per transaction). */
const sharing = (id: number, key: string) => ({ id, compares: 0, ops: 2, bytes: 20, shared: { key, ops: 1, bytes: 10 } });

type Sum = 'compares' | 'ops' | 'bytes';
/** What a transaction of these items holds: a shared key once. */
function total(batch: readonly TxnItem[], k: Sum): number {
  const seen = new Set<string>();
  let n = 0;
  for (const i of batch) {
    n += i[k];
    if (k !== 'compares' && i.shared && seen.has(i.shared.key)) n -= i.shared[k];
    if (i.shared) seen.add(i.shared.key);
  }
  return n;
}

describe('packTxns', () => {
  it.each([
    ['nothing gives no transaction', [], []],
    ['a few small items share one', [item(1), item(2), item(3)], [[1, 2, 3]]],
    ['compares fill up first', [item(1), item(2), item(3), item(4), item(5)], [[1, 2, 3, 4], [5]]],
    ['operations fill up first', [item(1, 3), item(2, 3), item(3, 1)], [[1, 2], [3]]],
    ['bytes fill up first', [item(1, 1, 60), item(2, 1, 60), item(3, 1, 30)], [[1], [2, 3]]],
    ['an item too big alone gets its own', [item(1), item(2, 9), item(3)], [[1], [2], [3]]],
    ['a shared key counts once per transaction', [1, 2, 3, 4, 5, 6].map((id) => sharing(id, 'body')), [[1, 2, 3, 4, 5], [6]]],
    ['and again in the next one', [sharing(1, 'a'), sharing(2, 'b'), sharing(3, 'a'), sharing(4, 'b'), sharing(5, 'a')], [[1, 2, 3, 4], [5]]],
  ])('%s', (_what, items: Array<TxnItem & { id: number }>, want) => {
    expect(ids(packTxns(items, limits))).toEqual(want);
  });

  // some items also put one of two shared keys (1 operation and 30 or 50 bytes each)
  const arbItem = fc
    .record({ compares: fc.integer({ min: 0, max: 5 }), ops: fc.integer({ min: 0, max: 8 }), bytes: fc.integer({ min: 0, max: 120 }), key: fc.constantFrom(undefined, 'a', 'b') })
    .map(({ key, ...r }): TxnItem => {
      if (key === undefined) return r;
      const shared = { key, ops: 1, bytes: key === 'a' ? 30 : 50 };
      return { compares: r.compares, ops: r.ops + shared.ops, bytes: r.bytes + shared.bytes, shared };
    });

  it('keeps every item once and in order, and no batch of several items exceeds a limit', () => {
    fc.assert(
      fc.property(fc.array(arbItem, { maxLength: 60 }), (raw) => {
        const items = raw.map((r, id) => ({ ...r, id }));
        const batches = packTxns(items, limits);
        expect(batches.flat().map((i) => i.id)).toEqual(items.map((i) => i.id));
        for (const b of batches) {
          expect(b.length).toBeGreaterThan(0);
          if (b.length === 1) continue;
          expect(total(b, 'compares')).toBeLessThanOrEqual(limits.maxCompares);
          expect(total(b, 'ops')).toBeLessThanOrEqual(limits.maxOps);
          expect(total(b, 'bytes')).toBeLessThanOrEqual(limits.maxBytes);
        }
      }),
    );
  });

  it('starts a new batch only when the next item would not fit', () => {
    fc.assert(
      fc.property(fc.array(arbItem, { maxLength: 60 }), (items) => {
        const batches = packTxns(items, limits);
        for (let i = 1; i < batches.length; i++) {
          const grown = [...batches[i - 1]!, batches[i]![0]!];
          expect(total(grown, 'compares') > limits.maxCompares || total(grown, 'ops') > limits.maxOps || total(grown, 'bytes') > limits.maxBytes).toBe(true);
        }
      }),
    );
  });
});
