import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packTxns, type TxnItem, type TxnLimits } from '../../src/registry/txn-batches.js';

const limits: TxnLimits = { maxCompares: 4, maxOps: 6, maxBytes: 100 };
const item = (id: number, ops = 1, bytes = 10, compares = 1) => ({ id, compares, ops, bytes });
const ids = (batches: Array<Array<{ id: number }>>) => batches.map((b) => b.map((i) => i.id));

describe('packTxns', () => {
  it.each([
    ['nothing gives no transaction', [], []],
    ['a few small items share one', [item(1), item(2), item(3)], [[1, 2, 3]]],
    ['compares fill up first', [item(1), item(2), item(3), item(4), item(5)], [[1, 2, 3, 4], [5]]],
    ['operations fill up first', [item(1, 3), item(2, 3), item(3, 1)], [[1, 2], [3]]],
    ['bytes fill up first', [item(1, 1, 60), item(2, 1, 60), item(3, 1, 30)], [[1], [2, 3]]],
    ['an item too big alone gets its own', [item(1), item(2, 9), item(3)], [[1], [2], [3]]],
  ])('%s', (_what, items, want) => {
    expect(ids(packTxns(items, limits))).toEqual(want);
  });

  const arbItem = fc.record({ compares: fc.integer({ min: 0, max: 5 }), ops: fc.integer({ min: 0, max: 8 }), bytes: fc.integer({ min: 0, max: 120 }) });

  it('keeps every item once and in order, and no batch of several items exceeds a limit', () => {
    fc.assert(
      fc.property(fc.array(arbItem, { maxLength: 60 }), (raw) => {
        const items = raw.map((r, id) => ({ ...r, id }));
        const batches = packTxns(items, limits);
        expect(batches.flat().map((i) => i.id)).toEqual(items.map((i) => i.id));
        for (const b of batches) {
          expect(b.length).toBeGreaterThan(0);
          if (b.length === 1) continue;
          const sum = (k: keyof TxnItem) => b.reduce((n, i) => n + i[k], 0);
          expect(sum('compares')).toBeLessThanOrEqual(limits.maxCompares);
          expect(sum('ops')).toBeLessThanOrEqual(limits.maxOps);
          expect(sum('bytes')).toBeLessThanOrEqual(limits.maxBytes);
        }
      }),
    );
  });

  it('starts a new batch only when the next item would not fit', () => {
    fc.assert(
      fc.property(fc.array(arbItem, { maxLength: 60 }), (items) => {
        const batches = packTxns(items, limits);
        for (let i = 1; i < batches.length; i++) {
          const prev = batches[i - 1]!;
          const next = batches[i]![0]!;
          const sum = (k: keyof TxnItem) => prev.reduce((n, x) => n + x[k], 0) + next[k];
          expect(sum('compares') > limits.maxCompares || sum('ops') > limits.maxOps || sum('bytes') > limits.maxBytes).toBe(true);
        }
      }),
    );
  });
});
