/**
 * Unit-name specifiers in [X-Fleet] values, expanded by fleet itself (systemd
 * never reads that section). Other sections are left alone: systemd expands
 * their specifiers on the host.
 */
import { invalidError } from '../errors/errors.js';
import type { UnitName } from './types.js';

export const SPECIFIERS = ['%n', '%N', '%p', '%P', '%i', '%I', '%%'] as const;

/** systemd's unit_name_unescape: `-` is `/`, `\xNN` is the byte NN. */
export function unescapeUnitPart(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})|-/g, (m, hex: string | undefined) => (hex === undefined ? '/' : String.fromCharCode(parseInt(hex, 16))));
}

/**
 * Expand %n (full name), %N (name without type), %p / %P (prefix, raw /
 * unescaped), %i / %I (instance, raw / unescaped; '' for non-instances) and
 * %% (a literal %). Throws FleetxError 'invalid' for any other %X and for a
 * lone % at the end.
 */
export function expandSpecifiers(value: string, name: UnitName): string {
  if (!value.includes('%')) return value;
  const instance = name.instance ?? '';
  return value.replace(/%(.?)/gs, (_m, c: string) => {
    switch (c) {
      case 'n': return name.full;
      case 'N': return name.full.slice(0, name.full.length - name.type.length - 1);
      case 'p': return name.prefix;
      case 'P': return unescapeUnitPart(name.prefix);
      case 'i': return instance;
      case 'I': return unescapeUnitPart(instance);
      case '%': return '%';
      case '':
        throw invalidError(`${JSON.stringify(value)} ends in a lone "%"`, 'write %% for a literal percent sign');
      default:
        throw invalidError(`unknown specifier "%${c}" in ${JSON.stringify(value)}`, `[X-Fleet] values support ${SPECIFIERS.join(' ')}`);
    }
  });
}
