/**
 * Property tests explore new random cases on every local run (a failure
 * prints its seed and counterexample). In CI (CI=true) the seed is pinned so
 * a landing run is reproducible; FLEETX_FC_SEED=<n> pins it anywhere, e.g.
 * to replay a failure. A seed that is not an integer stops the run.
 */
import fc from 'fast-check';
import { fcSeed } from '../helpers/fc-seed.js';

const seed = fcSeed(process.env);
if (seed !== undefined) fc.configureGlobal({ seed });
