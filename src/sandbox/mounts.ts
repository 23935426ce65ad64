/**
 * The overlay that gives each host its own writable view of the machine's
 * root. Mount state is read from /proc/self/mountinfo, never assumed, so that
 * cleanup after a crash knows what is really there.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, normalize } from 'node:path';
import { FleetxError, failedError } from '../errors/errors.js';
import { run, runOk } from './run.js';
import { sleep } from './proc.js';

/** mountinfo escapes blanks and backslashes in paths as octal. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Mount points at or under `dir`, deepest first (the order to unmount them). */
export function mountsUnder(dir: string): string[] {
  const base = dir.replace(/\/+$/, '');
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => unescape(line.split(' ')[4] ?? ''))
    .filter((p) => p === base || p.startsWith(`${base}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

export async function mountOverlay(upper: string, work: string, merged: string): Promise<void> {
  if (mountsUnder(merged).includes(merged)) return;
  await runOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=/,upperdir=${upper},workdir=${work}`, merged]);
}

/**
 * Unmounts everything under `dir`, retrying while processes still let go.
 * @throws FleetxError 'failed' when something stays mounted.
 */
export async function unmountAll(dir: string, timeoutMs = 10_000): Promise<void> {
  // A slip such as "/" here would unmount the machine's own filesystems.
  if (!isAbsolute(dir) || normalize(dir).split('/').filter(Boolean).length < 2) {
    throw new FleetxError('internal', `refusing to unmount everything under ${JSON.stringify(dir)}`);
  }
  const until = Date.now() + timeoutMs;
  for (;;) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    let last = '';
    for (const p of points) {
      const r = await run('umount', [p]);
      if (r.code !== 0) last = r.stderr.trim();
    }
    if (mountsUnder(dir).length === 0) return;
    if (Date.now() >= until) {
      throw failedError(`cannot unmount ${mountsUnder(dir).join(', ')}: ${last}`, 'check `fuser -m` for processes using it');
    }
    await sleep(200);
  }
}
