/** render: template + values -> unit text, on stdout or into a file. */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { usageError } from '../../errors/errors.js';
import { findTemplate } from '../../template/find.js';
import { renderTemplate } from '../../template/render.js';
import { loadValues } from '../../template/values.js';
import type { Io } from '../io.js';

export interface RenderCommandOptions {
  template: string;
  sets: string[];
  files: string[];
  /** Write the unit to this file (relative to io.cwd) instead of stdout. */
  output?: string;
}

/** Throws 'not-found' (no such template), 'usage' (bad --set / unreadable files), 'invalid' (bad values or template). */
export async function renderCommand(opts: RenderCommandOptions, io: Io): Promise<void> {
  const found = findTemplate(opts.template, io.cwd);
  const values = loadValues({ files: opts.files, sets: opts.sets, cwd: io.cwd });
  // The unit name doubles as the template name: messages name it, and [X-Fleet] is checked against it.
  const { text } = renderTemplate(readFileSync(found.path, 'utf8'), values, { templateName: found.unitName });
  const body = text.endsWith('\n') ? text : `${text}\n`;
  if (opts.output === undefined) {
    io.stdout(body);
    return;
  }
  const out = resolve(io.cwd, opts.output);
  try {
    writeFileSync(out, body);
  } catch (e) {
    throw usageError(`cannot write ${opts.output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
