import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { globMatches, metadataMatches, unitsConflict } from '../../src/unit/constraints.js';
import { parseUnit } from '../../src/unit/parse.js';
import { parseXFleet } from '../../src/unit/xfleet.js';
import type { XFleetOptions } from '../../src/unit/types.js';

const xf = (conflicts: string[] = []): XFleetOptions => ({ conflicts, machineOf: [], machineMetadata: {}, global: false, replaces: [] });
const unit = (name: string, conflicts: string[] = []) => ({ name, xfleet: xf(conflicts) });

describe('the mission unit', () => {
  const u = parseUnit('[Service]\nExecStart=/usr/bin/docker run --name app-%i busybox:latest\n[X-Fleet]\nConflicts=app@*.service\n');
  const inst = (n: string) => ({ name: `app@${n}.service`, xfleet: parseXFleet(u, `app@${n}.service`) });
  it('app@1 conflicts with app@2, both ways', () => {
    expect(unitsConflict(inst('1'), inst('2'))).toBe(true);
    expect(unitsConflict(inst('2'), inst('1'))).toBe(true);
  });
  it('app@1 does not conflict with itself', () => {
    expect(unitsConflict(inst('1'), inst('1'))).toBe(false);
  });
  it('app@1 does not conflict with other units', () => {
    expect(unitsConflict(inst('1'), unit('db.service'))).toBe(false);
    expect(unitsConflict(inst('1'), unit('app.service'))).toBe(false);
  });
});

describe('globMatches (Go path.Match semantics)', () => {
  it.each<[string, string, string, boolean]>([
    ['exact name', 'a.service', 'a.service', true],
    ['exact name, different', 'a.service', 'b.service', false],
    ['* matches any run', 'app@*.service', 'app@12.service', true],
    ['* matches the empty run', 'app@*.service', 'app@.service', true],
    ['* does not change the suffix', 'app@*.service', 'app@1.socket', false],
    ['* matches dots', 'ping.*', 'ping.1.service', true],
    ['* matches a leading dot', '*service', '.service', true],
    ['? matches one character', 'a?.service', 'a1.service', true],
    ['? needs exactly one character', 'a?.service', 'a.service', false],
    ['[...] class', 'web[12].service', 'web2.service', true],
    ['[...] class, no match', 'web[12].service', 'web3.service', false],
    ['[a-c] range', 'w[a-c].service', 'wb.service', true],
    ['[^...] negated class', 'w[^a].service', 'wb.service', true],
    ['[^...] negated class, excluded', 'w[^a].service', 'wa.service', false],
    ['braces are literal (not picomatch expansion)', '{a,b}.service', 'a.service', false],
    ['leading ! is literal (not negation)', '!a.service', 'b.service', false],
    ['extglob syntax is literal', '+(a).service', 'a.service', false],
    ['match is anchored at both ends', 'app', 'app.service', false],
    ['case-sensitive', 'App.service', 'app.service', false],
  ])('%s: %s vs %s', (_d, glob, name, expected) => {
    expect(globMatches(glob, name)).toBe(expected);
    expect(globMatches(glob, name)).toBe(expected); // cached path
  });
});

describe('unitsConflict', () => {
  it.each<[string, ReturnType<typeof unit>, ReturnType<typeof unit>, boolean]>([
    ['no Conflicts on either side', unit('a.service'), unit('b.service'), false],
    ["a's glob matches b", unit('a.service', ['b*.service']), unit('b1.service'), true],
    ["b's glob matches a (reverse direction)", unit('a.service'), unit('b.service', ['a.service']), true],
    ['globs that match neither', unit('a.service', ['x.service']), unit('b.service', ['y.service']), false],
    ['same name never conflicts', unit('a.service', ['*']), unit('a.service', ['*']), false],
    ['one of several globs matches', unit('a.service', ['x.service', 'b.*']), unit('b.service'), true],
    ['a template glob does not match a plain name', unit('a@1.service', ['a@*.service']), unit('a.service'), false],
  ])('%s', (_d, a, b, expected) => {
    expect(unitsConflict(a, b)).toBe(expected);
  });

  const nameArb = fc.constantFrom('a.service', 'a@1.service', 'a@2.service', 'b.service', 'b@x.socket', 'db.service');
  const globArb = fc.constantFrom('a*', 'a@*.service', '*.service', 'b?service', '[ab].service', 'db.service', '*', 'zzz');
  const unitArb = fc.tuple(nameArb, fc.array(globArb, { maxLength: 3 })).map(([n, g]) => unit(n, g));

  it('is symmetric', () => {
    fc.assert(
      fc.property(unitArb, unitArb, (a, b) => {
        expect(unitsConflict(a, b)).toBe(unitsConflict(b, a));
      }),
      { numRuns: 1000 },
    );
  });

  it('a unit never conflicts with itself', () => {
    fc.assert(fc.property(unitArb, (a) => !unitsConflict(a, a)));
  });

  it('equals "some glob matches in either direction" for distinct names', () => {
    fc.assert(
      fc.property(unitArb, unitArb, (a, b) => {
        fc.pre(a.name !== b.name);
        const ref = a.xfleet.conflicts.some((g) => globMatches(g, b.name)) || b.xfleet.conflicts.some((g) => globMatches(g, a.name));
        expect(unitsConflict(a, b)).toBe(ref);
      }),
    );
  });
});

describe('metadataMatches', () => {
  const m = { region: 'us-east', disk: 'ssd' };
  it.each<[string, Record<string, string[]>, Record<string, string>, boolean]>([
    ['empty requirement matches a machine with metadata', {}, m, true],
    ['empty requirement matches a machine without metadata', {}, {}, true],
    ['one key, matching value', { region: ['us-east'] }, m, true],
    ['one key, other value', { region: ['us-west'] }, m, false],
    ['repeated values OR', { region: ['us-west', 'us-east'] }, m, true],
    ['different keys AND, all match', { region: ['us-east'], disk: ['ssd'] }, m, true],
    ['different keys AND, one fails', { region: ['us-east'], disk: ['hdd'] }, m, false],
    ['missing key on the machine', { role: ['db'] }, m, false],
    ['a key with no allowed values matches nothing (as fleet)', { region: [] }, m, false],
    ['values compare exactly (case-sensitive)', { region: ['US-EAST'] }, m, false],
    ['inherited object keys are not metadata', { constructor: ['x'] }, {}, false],
  ])('%s', (_d, required, metadata, expected) => {
    expect(metadataMatches(required, metadata)).toBe(expected);
  });

  it('agrees with a reference model', () => {
    const key = fc.constantFrom('a', 'b', 'c');
    const val = fc.constantFrom('1', '2', '3');
    fc.assert(
      fc.property(fc.dictionary(key, fc.array(val, { minLength: 1, maxLength: 3 })), fc.dictionary(key, val), (req, md) => {
        const ref = Object.entries(req).every(([k, vs]) => k in md && vs.includes(md[k]!));
        expect(metadataMatches(req, md)).toBe(ref);
      }),
      { numRuns: 500 },
    );
  });
});
