import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RecordChange } from '../../src/registry/dirty-writer.js';
import { mergeCalls, MergedWrites } from '../../src/registry/merged-writes.js';
import type { TxnLimits } from '../../src/registry/txn-batches.js';

const limits: TxnLimits = { maxCompares: 100, maxOps: 4, maxBytes: 1000 };
const call = (id: string, ...keys: string[]) => ({ id, changes: keys.map((key) => ({ key, value: 'v' })) });
const ids = (groups: Array<Array<{ id: string }>>) => groups.map((g) => g.map((c) => c.id));

describe('mergeCalls', () => {
  it.each([
    ['nothing, no transaction', [], []],
    ['state and health of one signal: one transaction', [call('state', 's/a'), call('health', 'h/a')], [['state', 'health']]],
    ['up to the operation limit', [call('a', 'a1', 'a2'), call('b', 'b1', 'b2'), call('c', 'c1')], [['a', 'b'], ['c']]],
    ['a call that alone exceeds the limit stays whole', [call('a', '1', '2', '3', '4', '5'), call('b', 'b')], [['a'], ['b']]],
    ['the same key twice is never one transaction', [call('a', 'k'), call('b', 'x'), call('c', 'k')], [['a', 'b'], ['c']]],
  ])('%s', (_name, calls, want) => {
    expect(ids(mergeCalls(calls, limits))).toEqual(want);
  });

  it('keeps every call whole and in order, within the limits, with no key twice in a transaction', () => {
    const calls = fc.array(fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { minLength: 1, maxLength: 5 }), { maxLength: 20 })
      .map((cs) => cs.map((keys, i) => call(String(i), ...new Set(keys))));
    fc.assert(fc.property(calls, (cs) => {
      const groups = mergeCalls(cs, limits);
      expect(groups.flat().map((c) => c.id)).toEqual(cs.map((c) => c.id));
      for (const g of groups) {
        const keys = g.flatMap((c) => c.changes.map((ch) => ch.key));
        expect(new Set(keys).size).toBe(keys.length);
        if (g.length > 1) expect(keys.length).toBeLessThanOrEqual(limits.maxOps);
      }
    }));
  });
});

describe('MergedWrites', () => {
  it('sends the writes of one turn as one transaction, and settles each with it', async () => {
    const sent: RecordChange[][] = [];
    const w = new MergedWrites(async (changes) => void sent.push(changes));
    await Promise.all([w.write([{ key: 's/a', value: '1' }]), w.write([{ key: 'h/a', value: '2' }, { key: 'h/b' }])]);
    expect(sent).toEqual([[{ key: 's/a', value: '1' }, { key: 'h/a', value: '2' }, { key: 'h/b' }]]);
    await w.write([{ key: 's/a', value: '3' }]);
    expect(sent).toHaveLength(2);
  });

  it('a failed transaction fails every call in it, and only those', async () => {
    const w = new MergedWrites(async (changes) => {
      if (changes.some((c) => c.key === 'bad')) throw new Error('etcd said no');
    }, limits);
    const results = await Promise.allSettled([
      w.write([{ key: 'bad', value: '1' }]),
      w.write([{ key: 'x', value: '1' }]),
      w.write([{ key: '1', value: '1' }, { key: '2', value: '1' }, { key: '3', value: '1' }]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
  });

  it('an empty write sends nothing', async () => {
    let n = 0;
    await new MergedWrites(async () => void n++).write([]);
    expect(n).toBe(0);
  });
});
