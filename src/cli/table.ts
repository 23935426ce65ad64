/**
 * fleetctl printed tab-aligned tables with an upper-case legend. These
 * helpers keep that look, and the field selection of --fields.
 */
import { usageError } from '../errors/errors.js';

/** The flags of the list commands (list-units, list-unit-files, list-machines). */
export interface ListOptions {
  fields?: string;
  full: boolean;
  legend: boolean;
}

export interface TableOptions {
  fields: string[];
  legend: boolean;
}

/** Align rows into columns separated by at least one tab stop's worth of spaces. */
export function formatTable(rows: Record<string, string>[], opts: TableOptions): string {
  const lines: string[][] = [];
  if (opts.legend) lines.push(opts.fields.map((f) => f.toUpperCase()));
  for (const r of rows) lines.push(opts.fields.map((f) => r[f] ?? '-'));
  if (lines.length === 0) return '';
  const widths = opts.fields.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines
    .map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]! + 1))).join('\t').trimEnd())
    .join('\n');
}

/** Parse a --fields value against the fields a command knows. */
export function parseFields(value: string | undefined, known: readonly string[], defaults: readonly string[]): string[] {
  if (value === undefined) return [...defaults];
  const fields = value.split(',').map((f) => f.trim()).filter(Boolean);
  if (fields.length === 0) throw usageError('--fields must name at least one field', `known fields: ${known.join(', ')}`);
  const unknown = fields.filter((f) => !known.includes(f));
  if (unknown.length > 0) {
    throw usageError(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in --fields`, `known fields: ${known.join(', ')}`);
  }
  return fields;
}

/** fleetctl shortened machine IDs to 8 characters and an ellipsis unless --full. */
export function shortMachine(id: string, full: boolean): string {
  return full || id.length <= 8 ? id : `${id.slice(0, 8)}...`;
}
