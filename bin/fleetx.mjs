#!/usr/bin/env node
// Entry point: runs the compiled JavaScript in dist/ (`npm run build`, which
// `npm ci` and `npm pack` run through the `prepare` script). No TypeScript
// loader at run time: start-up is Node's own plus what a command imports.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = new URL('../dist/.tsbuildinfo', import.meta.url);
const howToBuild = `run \`npm run build\` in ${root} (npm ci does it too)`;

if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) {
  process.stderr.write(`fleetx: not built: dist/ is missing\n  ${howToBuild}\n`);
  process.exit(70);
}
// In a checkout (src/ beside dist/), a build older than a source file would
// run old code: tests and sandbox hosts run this file, so refuse instead.
// An installed package has no src/ (and no build info) and skips this.
const stale = newestSource(new URL('../src/', import.meta.url));
if (stale && (!existsSync(built) || stale.mtimeMs > statSync(built).mtimeMs)) {
  process.stderr.write(`fleetx: dist/ is older than src/${stale.path}\n  ${howToBuild}\n`);
  process.exit(70);
}

// gRPC sets the TLS server name to the endpoint's host, so TLS to etcd by IP
// address (normal for etcd) makes Node print DEP0123 on every connection.
// It is noise for operators; every other warning still shows.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const code = typeof rest[0] === 'object' && rest[0] !== null ? rest[0].code : rest[1];
  if (code === 'DEP0123') return;
  emitWarning(warning, ...rest);
};
const { runCli } = await import('../dist/cli/main.js');
await runCli(process.argv.slice(2));

/** The most recently modified .ts file under dir, or undefined without src/ (an installed package). */
function newestSource(dir) {
  if (!existsSync(dir)) return undefined;
  let newest;
  for (const path of readdirSync(dir, { recursive: true })) {
    if (!path.endsWith('.ts')) continue;
    const { mtimeMs } = statSync(new URL(path, dir));
    if (!newest || mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
  }
  return newest;
}
