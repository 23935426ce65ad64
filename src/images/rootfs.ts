/**
 * A Node runtime for images, taken from this machine: no image download.
 * The machine's own node binary plus the shared libraries `ldd` names make
 * a root filesystem that runs `node` (Debian's node links only libc,
 * libstdc++, libm, libgcc_s, libdl, libpthread and the loader).
 */
import { failedError } from '../errors/errors.js';
import { runOk } from '../sandbox/run.js';

/** Pure: the absolute library paths in `ldd` output (the vdso has none and is skipped). */
export function lddPaths(text: string): string[] {
  const paths = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) paths.add(m[1]);
  }
  return [...paths].sort();
}

/**
 * Writes an uncompressed tarball holding `node` and its libraries at their
 * own paths (symlinks followed). `podman import` turns it into a base image.
 * @throws FleetxError 'failed' when ldd or tar fail.
 */
export async function writeNodeRootfs(target: string, node = '/usr/bin/node'): Promise<string[]> {
  return writeRootfs(target, [node]);
}

/** The same for any of this machine's binaries (e.g. journalctl for the log sidecar's stand-in). */
export async function writeRootfs(target: string, binaries: string[]): Promise<string[]> {
  const members = new Set<string>();
  for (const bin of binaries) {
    const libs = lddPaths((await runOk('ldd', [bin])).stdout);
    if (libs.length === 0) throw failedError(`ldd found no libraries for ${bin}`);
    for (const p of [bin, ...libs]) members.add(p.replace(/^\//, ''));
  }
  const list = [...members];
  await runOk('tar', ['--dereference', '-cf', target, '-C', '/', '--', ...list], { timeoutMs: 120_000 });
  return list;
}
