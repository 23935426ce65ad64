/**
 * The fleetx release a sandbox's hosts install at first boot: `npm pack` of
 * the checkout (dependencies bundled, dist/ included), made once per
 * `sandbox up` and served to the hosts as a file:// URL with its sha256:
 * the same mechanism and the same install script as a production release
 * fetched over https (cloud-config/README.md), with a local source.
 *
 * A pack is reused while the files it is made from are unchanged (same
 * paths, sizes and modification times: `packStamp`), so an `up` that only
 * adds or repairs a host does not pack again.
 *
 * The pack is made from the checkout's dist/ as it is (`--ignore-scripts`:
 * no build as root in someone's checkout), so a dist/ older than src/ is
 * refused, as bin/fleetx.mjs refuses to run it: hosts run the code under test.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failedError, usageError } from '../errors/errors.js';
import { run, SYSTEM_PATH } from './run.js';

export interface Release {
  /** The tarball on the machine. */
  file: string;
  /** file:// URL of it, as hosts see it (the release dir is bound read-only at the same path). */
  url: string;
  sha256: string;
}

/** The most recently modified .ts file under dir (undefined without one). */
function newestSource(dir: string): { path: string; mtimeMs: number } | undefined {
  let newest: { path: string; mtimeMs: number } | undefined;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue;
    const path = join(e.parentPath, e.name);
    const { mtimeMs } = statSync(path);
    if (!newest || mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
  }
  return newest;
}

/**
 * @throws FleetxError 'usage' when the checkout has no dist/ or an older one than src/.
 */
export function checkBuilt(repoRoot: string): void {
  const hint = `run \`npm run build\` in ${repoRoot} (npm ci does it too)`;
  if (!existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))) throw usageError(`${repoRoot} is not built: dist/ is missing`, hint);
  const src = join(repoRoot, 'src');
  const stale = existsSync(src) ? newestSource(src) : undefined;
  const info = join(repoRoot, 'dist', '.tsbuildinfo');
  if (stale && (!existsSync(info) || stale.mtimeMs > statSync(info).mtimeMs)) throw usageError(`${repoRoot}: dist/ is older than ${stale.path}`, hint);
}

/** What `npm pack` reads (package.json's "files", the manifest, the bundled dependencies as npm installed them). */
const PACKED = ['package.json', 'package-lock.json', 'node_modules/.package-lock.json', 'bin', 'dist', 'units', 'services', 'demo/web.mjs', 'cloud-config', 'README.md'];

/** Every file under `path` as "relative path, size, mtime" lines. */
function listing(root: string, rel: string, out: string[]): void {
  const path = join(root, rel);
  if (!existsSync(path)) return;
  const st = statSync(path);
  if (!st.isDirectory()) {
    out.push(`${rel} ${st.size} ${st.mtimeMs}`);
    return;
  }
  for (const name of readdirSync(path).sort()) listing(root, join(rel, name), out);
}

/** A fingerprint of what a pack of `repoRoot` would hold: changes when any of its files does. */
export function packStamp(repoRoot: string): string {
  const lines = [repoRoot];
  for (const p of PACKED) listing(repoRoot, p, lines);
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

interface PackRecord extends Release {
  stamp: string;
}

/**
 * Packs the checkout into `dir`, or reuses the pack there when the checkout has not changed since.
 * @throws FleetxError 'usage' (not built), 'failed' when npm pack fails or the pack lacks dist/.
 */
export async function packRelease(repoRoot: string, dir: string): Promise<Release> {
  checkBuilt(repoRoot);
  const stamp = packStamp(repoRoot);
  const recordFile = join(dir, 'release.json');
  try {
    const rec = JSON.parse(readFileSync(recordFile, 'utf8')) as PackRecord;
    if (rec.stamp === stamp && existsSync(rec.file)) return { file: rec.file, url: rec.url, sha256: rec.sha256 };
  } catch {
    // No pack yet, or an unreadable record: pack.
  }
  const tmp = join(dir, '.pack');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const r = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp, repoRoot], {
    timeoutMs: 300_000,
    env: { PATH: process.env.PATH ?? SYSTEM_PATH, HOME: process.env.HOME ?? '/root', npm_config_update_notifier: 'false', npm_config_fund: 'false' },
  });
  if (r.code !== 0) throw failedError(`npm pack of ${repoRoot} failed (exit ${r.code})`, r.stderr.trim().split('\n').slice(-10).join('\n'));
  const [packed] = JSON.parse(r.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  if (!packed?.files.some((f) => f.path === 'dist/cli/main.js')) throw failedError(`npm pack of ${repoRoot} has no dist/cli/main.js`, 'check "files" in package.json');
  const file = join(dir, packed.filename.replace(/^@[^/]+\//, '').replace(/\//g, '-'));
  renameSync(join(tmp, packed.filename), file);
  rmSync(tmp, { recursive: true, force: true });
  const release: Release = { file, url: `file://${file}`, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
  writeFileSync(recordFile, `${JSON.stringify({ ...release, stamp } satisfies PackRecord, null, 2)}\n`);
  return release;
}
