#!/usr/bin/env node
// Entry point: fleetx ships as TypeScript and runs through tsx's loader, so a
// checkout works right after `npm ci` with no build step and no build output
// to keep in sync.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/main.ts');
await runCli(process.argv.slice(2));
