/** The short CI run of the bad-input properties (the long one: npm run fuzz). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { properties } from '../fuzz/properties.js';

/** Cases per property in CI; the cloud-config renderer (Handlebars + YAML, ~15 ms a case) gets fewer. */
const RUNS: Record<string, number> = { 'cloud-config renderer': 2_000 };
const runsOf = (name: string) => RUNS[name] ?? 3_000;

describe('bad input at scale (short run)', () => {
  it.each(Object.keys(properties).map((name) => [name, runsOf(name)] as const))('%s: typed errors only, nothing injected (%i cases)', (name, numRuns) => {
    expect(() => fc.assert(properties[name as keyof typeof properties] as fc.IProperty<unknown>, { numRuns })).not.toThrow();
  }, 300_000);
});
