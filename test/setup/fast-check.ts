/**
 * Property tests explore new random cases on every local run (a failure
 * prints its seed and counterexample). In CI (CI=true) the seed is pinned so
 * a landing run is reproducible; FLEETX_FC_SEED=<n> pins it anywhere, e.g.
 * to replay a failure.
 */
import fc from 'fast-check';

const pinned = process.env.FLEETX_FC_SEED ?? (process.env.CI === 'true' ? '20261122' : undefined);
if (pinned !== undefined) fc.configureGlobal({ seed: Number(pinned) });
