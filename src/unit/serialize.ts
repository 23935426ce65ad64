/**
 * The normalized text form of a unit: `[Section]` then `Key=Value` lines,
 * sections in order of first appearance, a blank line between sections, a
 * trailing newline. parseUnit(serializeUnit(u)) equals u for every u that
 * parseUnit produces, so this text is what gets hashed and stored.
 */
import { invalidError } from '../errors/errors.js';
import { KEY_RE, SECTION_RE, unwritableValue } from './syntax.js';
import type { UnitFile, UnitOption } from './types.js';

/**
 * Write a unit file. Throws FleetxError 'invalid' for an option that would
 * read back differently: bad section or key name, or a value with a line
 * break, NUL, surrounding blanks or a trailing (continuation) backslash.
 */
export function serializeUnit(u: UnitFile): string {
  const sections = new Map<string, UnitOption[]>();
  for (const o of u.options) {
    check(o);
    let list = sections.get(o.section);
    if (list === undefined) sections.set(o.section, (list = []));
    list.push(o);
  }
  const blocks: string[] = [];
  for (const [name, opts] of sections) {
    blocks.push(`[${name}]\n` + opts.map((o) => `${o.name}=${o.value}\n`).join(''));
  }
  return blocks.join('\n');
}

function check(o: UnitOption): void {
  if (!SECTION_RE.test(o.section)) throw invalidError(`cannot write section name ${JSON.stringify(o.section)}: it must be non-empty, without brackets, control characters or surrounding blanks`);
  if (!KEY_RE.test(o.name)) throw invalidError(`cannot write option name ${JSON.stringify(o.name)} in [${o.section}]: option names use letters, digits and "_.-"`);
  const why = unwritableValue(o.value);
  if (why !== undefined) throw invalidError(`cannot write the value of ${o.name} in [${o.section}] on one line: ${why}`);
}
