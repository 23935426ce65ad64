/**
 * The long bad-input run (issue 9): `npm run fuzz` runs every property of
 * test/fuzz/properties.ts (unit parser, template renderer, service files,
 * cloud-config renderer) FLEETX_FUZZ_RUNS times (default 100,000 each) and
 * prints the count and the seed; FLEETX_FC_SEED=<n> replays a run.
 */
import { runAll } from '../test/fuzz/properties.js';

const runs = Number(process.env.FLEETX_FUZZ_RUNS ?? 100_000);
const seed = Number(process.env.FLEETX_FC_SEED ?? Date.now() % 2_147_483_647);
console.log(`fuzz: ${runs} cases per property, seed ${seed} (replay: FLEETX_FC_SEED=${seed} npm run fuzz)`);
const total = runAll(runs, seed, (l) => console.log(`  ${l}`));
console.log(`fuzz: ${total} cases, seed ${seed}, no crash, no injected directive, key, command or file`);
