import { describe, expect, it } from 'vitest';
import { metadataOf, withOverrides } from '../../src/registry/metadata.js';

describe('machine metadata overrides', () => {
  it.each([
    ['no overrides keep what the agent reports', { a: '1' }, undefined, { a: '1' }],
    ['an override replaces a value', { a: '1' }, { a: '2' }, { a: '2' }],
    ['an override adds a key', { a: '1' }, { b: '2' }, { a: '1', b: '2' }],
    ['an empty override removes a reported key', { a: '1', b: '2' }, { a: '' }, { b: '2' }],
    ['an empty override of an absent key is a no-op', {}, { a: '' }, {}],
  ])('%s', (_what, own, overrides, expected) => {
    expect(withOverrides(own, overrides)).toEqual(expected);
  });

  it.each([
    ['a plain map', { a: '1' }, { a: '1' }],
    ['a { metadata } object', { metadata: { a: '1' } }, { a: '1' }],
    ['non-string values are dropped', { a: 1, b: 'x' }, { b: 'x' }],
    ['null', null, {}],
  ])('decodes %s', (_what, v, expected) => {
    expect(metadataOf(v)).toEqual(expected);
  });
});
