/** Reading options back out of a parsed unit. */
import type { UnitFile } from './types.js';

/**
 * All values of a list option, with systemd's reset semantics: an empty
 * assignment (`Environment=`) clears the values assigned before it.
 */
export function optionValues(u: UnitFile, section: string, name: string): string[] {
  let values: string[] = [];
  for (const o of u.options) {
    if (o.section !== section || o.name !== name) continue;
    if (o.value === '') values = [];
    else values.push(o.value);
  }
  return values;
}

/** The value of a single-valued option: the last assignment wins (may be ''); undefined if never set. */
export function optionValue(u: UnitFile, section: string, name: string): string | undefined {
  let value: string | undefined;
  for (const o of u.options) if (o.section === section && o.name === name) value = o.value;
  return value;
}

/** Section names in order of first appearance. */
export function sectionNames(u: UnitFile): string[] {
  return [...new Set(u.options.map((o) => o.section))];
}
