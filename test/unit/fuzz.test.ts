/** The short CI run of the bad-input properties (the long one: npm run fuzz). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { properties } from '../fuzz/properties.js';

describe('bad input at scale (short run)', () => {
  it.each(Object.keys(properties))('%s: typed errors only, nothing injected (3,000 cases)', (name) => {
    expect(() => fc.assert(properties[name as keyof typeof properties] as fc.IProperty<unknown>, { numRuns: 3_000 })).not.toThrow();
  });
});
