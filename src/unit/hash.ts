import { createHash } from 'node:crypto';
import { serializeUnit } from './serialize.js';
import type { UnitFile } from './types.js';

/**
 * Content hash of a unit: sha256 hex of its normalized text, so comments,
 * blank lines, CRLF and repeated section headers do not change it.
 * Throws what serializeUnit throws.
 */
export function unitHash(u: UnitFile): string {
  return createHash('sha256').update(serializeUnit(u), 'utf8').digest('hex');
}
