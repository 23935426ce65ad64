import { describe, expect, it } from 'vitest';
import { CI_SEED, fcSeed } from '../helpers/fc-seed.js';

describe('FLEETX_FC_SEED', () => {
  it.each([
    { why: 'unset, local: explore', env: {}, seed: undefined },
    { why: 'unset, CI: pinned', env: { CI: 'true' }, seed: CI_SEED },
    { why: 'a seed a failure printed', env: { FLEETX_FC_SEED: '1234567' }, seed: 1234567 },
    { why: 'a negative seed', env: { FLEETX_FC_SEED: '-42' }, seed: -42 },
    { why: 'blanks around it', env: { FLEETX_FC_SEED: ' 7 ' }, seed: 7 },
    { why: 'it wins over CI', env: { FLEETX_FC_SEED: '9', CI: 'true' }, seed: 9 },
  ])('$why', ({ env, seed }) => {
    expect(fcSeed(env)).toBe(seed);
  });

  it.each(['abc', '', '1.5', '12abc', '0x10', '1e3', '99999999999999999999'])('refuses %j with an error naming the variable and what it wants', (value) => {
    expect(() => fcSeed({ FLEETX_FC_SEED: value })).toThrow(/^FLEETX_FC_SEED must be an integer.*got "/);
  });
});
