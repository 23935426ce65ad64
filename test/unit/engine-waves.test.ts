/**
 * writeWaves: the order of a pass's transactions when several are in
 * flight at once. What must hold: the same transactions as one at a time
 * (same chunks, same order), and no put can land before a delete that
 * precedes it in the list, unless both are in one transaction.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EngineOp } from '../../src/engine/plan.js';
import { writeWaves } from '../../src/engine/waves.js';

const del = (i: number): EngineOp => ({ type: 'delete-schedule', machine: 'm', name: `d${i}`, reason: 'r' });
const put = (i: number): EngineOp => ({ type: 'put-schedule', machine: 'm', record: { name: `p${i}`, hash: 'h', targetState: 'launched' }, reason: 'r' });
const unsched = (i: number): EngineOp => ({ type: 'delete-unschedulable', name: `u${i}`, reason: 'r' });
const shape = (waves: EngineOp[][][]) => waves.map((w) => w.map((t) => t.map((op) => (op.type === 'delete-schedule' ? 'd' : 'p')).join('')));

describe('writeWaves', () => {
  it.each([
    ['nothing: no wave', [], 2, []],
    ['one transaction: one wave of one', [del(1), put(1), put(2)], 3, [['dpp']]],
    ['deletes only: one wave', [del(1), del(2), del(3), del(4)], 2, [['dd', 'dd']]],
    ['puts only: one wave', [put(1), put(2), put(3)], 2, [['pp', 'p']]],
    ['deletes, then the mixed one alone, then puts', [del(1), del(2), del(3), put(1), put(2), put(3), put(4)], 2, [['dd'], ['dp'], ['pp', 'p']]],
    ['deletes ending on a boundary: two waves', [del(1), del(2), put(1), unsched(1)], 2, [['dd'], ['pp']]],
  ])('%s', (_what, ops, max, want) => {
    expect(shape(writeWaves(ops, max))).toEqual(want);
  });

  const arbOps = fc.array(fc.constantFrom('del', 'put', 'unsched'), { maxLength: 40 }).map((ks) =>
    ks.map((k, i) => (k === 'del' ? del(i) : k === 'put' ? put(i) : unsched(i))),
  );

  it('keeps the transactions of one-at-a-time writing, and every delete before the puts after it', () => {
    fc.assert(
      fc.property(arbOps, fc.integer({ min: 1, max: 7 }), (ops, max) => {
        const waves = writeWaves(ops, max);
        const txns = waves.flat();
        expect(txns.flat()).toEqual(ops);
        for (const t of txns.slice(0, -1)) expect(t.length).toBe(max);
        // where each op lands: (wave, transaction)
        const at = new Map<EngineOp, { wave: number; txn: EngineOp[] }>();
        waves.forEach((w, wave) => w.forEach((txn) => txn.forEach((op) => at.set(op, { wave, txn }))));
        ops.forEach((a, i) => {
          if (a.type !== 'delete-schedule') return;
          for (const b of ops.slice(i + 1)) {
            if (b.type === 'delete-schedule') continue;
            const [x, y] = [at.get(a)!, at.get(b)!];
            expect(x.txn === y.txn || x.wave < y.wave).toBe(true);
          }
        });
      }),
    );
  });
});
