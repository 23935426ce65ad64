/** cloud-config render: a role's user-data, on stdout or into a file (0600: it holds secrets). */
import { chmodSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { usageError } from '../../errors/errors.js';
import { renderRole } from '../../provision/provision.js';
import type { Io } from '../io.js';

export interface CloudConfigRenderOptions {
  role: string;
  files: string[];
  sets: string[];
  /** Write the user-data to this file (relative to io.cwd, mode 0600) instead of stdout. */
  output?: string;
}

/** Throws 'not-found' (no such role), 'usage' (bad --set, unreadable or unwritable files), 'invalid' (bad values). */
export async function cloudConfigRenderCommand(opts: CloudConfigRenderOptions, io: Io): Promise<void> {
  const { text } = renderRole({ role: opts.role, files: opts.files, sets: opts.sets, cwd: io.cwd });
  if (opts.output === undefined) {
    io.stdout(text);
    return;
  }
  try {
    const out = resolve(io.cwd, opts.output);
    writeFileSync(out, text, { mode: 0o600 });
    chmodSync(out, 0o600); // a file that already existed keeps its mode otherwise
  } catch (e) {
    throw usageError(`cannot write ${opts.output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
