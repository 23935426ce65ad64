import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, realpath, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { FleetxError, conflictError, invalidError, isFleetxError } from '../errors/errors.js';
import { parseUnitName } from '../unit/name.js';

/**
 * The first line of every file fleetx writes. Files without it are not
 * ours (hand-written units, masks, `systemctl --runtime` links): fleetx
 * never reads them as its own, overwrites or removes them.
 */
export const MANAGED_MARKER = '# Managed by fleetx: edits are overwritten; remove with fleetx, not by hand.';

/** Unit files in one directory, written atomically and only ever our own. */
export class UnitFiles {
  constructor(readonly dir: string) {}

  /** See Systemd.writeUnitFile. */
  async write(name: string, text: string): Promise<boolean> {
    const file = this.pathOf(name);
    const content = `${MANAGED_MARKER}\n${text.endsWith('\n') ? text : `${text}\n`}`;
    const current = await this.readOwn(name, file);
    if (current !== undefined && `${MANAGED_MARKER}\n${current}` === content) return false;
    await fsOp(`creating ${this.dir}`, () => mkdir(this.dir, { recursive: true }));
    // Same directory, so rename is atomic; the name ends in .tmp, which systemd
    // ignores. Its length is fixed: derived from the unit's name, a long but
    // valid name gave a temporary name longer than the file system allows.
    const tmp = path.join(this.dir, `.fleetx-${randomBytes(8).toString('hex')}.tmp`);
    try {
      await fsOp(`writing ${tmp}`, async () => {
        const fh = await open(tmp, 'wx', 0o644);
        try {
          await fh.writeFile(content);
          await fh.sync();
        } finally {
          await fh.close();
        }
      });
      await fsOp(`renaming ${tmp} to ${file}`, () => rename(tmp, file));
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    return true;
  }

  /** The body fleetx wrote (marker line removed), or undefined when there is no file. */
  async read(name: string): Promise<string | undefined> {
    return this.readOwn(name, this.pathOf(name));
  }

  async remove(name: string): Promise<boolean> {
    const file = this.pathOf(name);
    if ((await this.readOwn(name, file)) === undefined) return false;
    await fsOp(`removing ${file}`, () => unlink(file));
    return true;
  }

  async list(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.dir, { withFileTypes: true });
    } catch (e) {
      if (errno(e) === 'ENOENT') return [];
      throw fsError(`listing ${this.dir}`, e);
    }
    const names: string[] = [];
    for (const ent of entries) {
      if (!ent.isFile() || ent.name.startsWith('.')) continue;
      const text = await readFile(path.join(this.dir, ent.name), 'utf8').catch(() => '');
      if (text.startsWith(`${MANAGED_MARKER}\n`)) names.push(ent.name);
    }
    return names.sort();
  }

  /**
   * Validates the name and returns its path. A name is a single path
   * component: parseUnitName already refuses '/', and we also refuse
   * hidden names and anything path.join would move out of the directory.
   * The only way left to resolve elsewhere is a symlink at the name itself,
   * which readOwn refuses (after realpath-ing it for the message). There is
   * no realpath comparison of the directory: through /proc/PID/root (how
   * tests reach a container's /run) realpath drops the container's root.
   */
  pathOf(name: string): string {
    parseUnitName(name);
    if (name.startsWith('.') || name !== path.basename(name)) {
      throw invalidError(`unit name ${JSON.stringify(name)} must be a plain file name that does not start with "."`);
    }
    const file = path.join(this.dir, name);
    if (path.dirname(file) !== path.resolve(this.dir)) throw invalidError(`unit name ${JSON.stringify(name)} leaves ${this.dir}`);
    return file;
  }

  /** Body of our file, undefined if absent; 'conflict' if something else is there. */
  private async readOwn(name: string, file: string): Promise<string | undefined> {
    let st;
    try {
      st = await lstat(file);
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      throw fsError(`inspecting ${file}`, e);
    }
    if (st.isSymbolicLink()) {
      const target = await realpath(file).catch(() => '(dangling)');
      throw conflictError(`${file} is a symlink to ${target} (a mask or a link fleetx did not make); refusing to touch it`, `remove it by hand if ${name} should be managed by fleetx`);
    }
    if (!st.isFile()) throw conflictError(`${file} is not a regular file; refusing to touch it`);
    const text = await fsOp(`reading ${file}`, () => readFile(file, 'utf8'));
    if (!text.startsWith(`${MANAGED_MARKER}\n`)) {
      throw conflictError(`${file} was not written by fleetx; refusing to touch it`, `remove it by hand if ${name} should be managed by fleetx`);
    }
    return text.slice(MANAGED_MARKER.length + 1);
  }
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function fsError(what: string, e: unknown): FleetxError {
  if (isFleetxError(e)) return e;
  return new FleetxError('failed', `${what}: ${(e as Error).message}`, { cause: e });
}

async function fsOp<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw fsError(what, e);
  }
}
