import { defineConfig } from 'vitest/config';

/**
 * The fault matrix (test/faults/, docs/RELIABILITY.md): `npm run test:faults`.
 * Its own config so `npm test` stays within its budget; CI runs both.
 * Cells run one at a time on one shared sandbox per file.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['./test/setup/build.ts'],
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 180_000,
    hookTimeout: 240_000,
    reporters: ['default', './test/reporters/summary.ts'],
  },
});
