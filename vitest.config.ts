import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // the fault matrix has its own config and script (npm run test:faults)
    exclude: ['test/faults/**', '**/node_modules/**'],
    // Builds dist/ first: tests spawn bin/fleetx.mjs, which runs the build.
    globalSetup: ['./test/setup/build.ts'],
    setupFiles: ['./test/setup/fast-check.ts'],
    // Integration suites start real etcd servers and boot real systemd hosts;
    // running files one at a time keeps a 2-core machine from thrashing.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/reporters/summary.ts'],
  },
});
