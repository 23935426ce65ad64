#!/usr/bin/env node
// Entry point: fleetx ships as TypeScript and runs through tsx's loader, so a
// checkout works right after `npm ci` with no build step and no build output
// to keep in sync.
import { register } from 'tsx/esm/api';

register();

// gRPC sets the TLS server name to the endpoint's host, so TLS to etcd by IP
// address (normal for etcd) makes Node print DEP0123 on every connection.
// It is noise for operators; every other warning still shows.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const code = typeof rest[0] === 'object' && rest[0] !== null ? rest[0].code : rest[1];
  if (code === 'DEP0123') return;
  emitWarning(warning, ...rest);
};
const { runCli } = await import('../src/cli/main.ts');
await runCli(process.argv.slice(2));
