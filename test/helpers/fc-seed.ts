/**
 * The fast-check seed a run pins, from the environment: FLEETX_FC_SEED=<n>
 * anywhere (to replay a failure: fast-check prints the seed), else a fixed
 * one under CI=true, else none (explore new cases). A value that is not an
 * integer is refused: silently running on seed 0 (Number('abc') is NaN)
 * would replay nothing while looking pinned.
 */

export const CI_SEED = 20261122;

export function fcSeed(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env.FLEETX_FC_SEED;
  if (raw === undefined) return env.CI === 'true' ? CI_SEED : undefined;
  const text = raw.trim();
  const seed = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(seed)) {
    throw new Error(`FLEETX_FC_SEED must be an integer, the seed a failed property test printed (e.g. FLEETX_FC_SEED=1234567), got "${raw}"; unset it to explore new cases`);
  }
  return seed;
}
