/**
 * vitest globalSetup: compiles src/ to dist/ (incremental, a no-op when
 * nothing changed) before any test runs. Tests and sandbox hosts spawn
 * bin/fleetx.mjs, which runs dist/: without this a test could exercise the
 * code of an older build than the one under test.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export default function build(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe', encoding: 'utf8' });
  } catch (e) {
    const out = e as { stdout?: string; stderr?: string };
    throw new Error(`the build failed (npm run build), so no test runs against an old dist/:\n${out.stdout ?? ''}${out.stderr ?? ''}`);
  }
}
