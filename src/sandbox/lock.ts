/**
 * One `up` or `down` at a time per sandbox: two at once would boot the same
 * host twice or delete what the other is creating. The lock is a file
 * holding the owner's pid; a lock whose owner is dead is taken over.
 */
import { openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { conflictError } from '../errors/errors.js';
import { isAlive } from './proc.js';

function tryCreate(file: string): boolean {
  try {
    const fd = openSync(file, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/**
 * Runs fn holding the lock file.
 * @throws FleetxError 'conflict' when a live process holds it.
 */
export async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  if (!tryCreate(file)) {
    const owner = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
      throw conflictError(`another fleetx sandbox command (pid ${owner}) is working on this sandbox`, `wait for it, or remove ${file} if that is wrong`);
    }
    rmSync(file, { force: true });
    if (!tryCreate(file)) throw conflictError(`another fleetx sandbox command took ${file} just now`);
  }
  try {
    return await fn();
  } finally {
    rmSync(file, { force: true });
  }
}
