/**
 * The text of a unit's secrets EnvironmentFile. Pure.
 *
 * systemd reads it with its env-file parser: inside double quotes a
 * backslash escapes `"`, `\`, `` ` `` and `$`, and nothing is expanded, so
 * every value is written double-quoted with those four escaped. Values are one
 * line (names.ts refuses line breaks), so no assignment can end early and add
 * another variable.
 */
import type { SecretReference } from './references.js';

export function quoteEnvValue(value: string): string {
  return `"${value.replace(/[\\"`$]/g, (c) => `\\${c}`)}"`;
}

export interface EnvFilePlan {
  /** the file's text, when every secret the unit names has a value */
  text?: string;
  /** secret names without a value (not set, or not readable) */
  missing: string[];
}

/** Lines in the unit's order; `values` maps secret name to value. */
export function envFileText(refs: readonly SecretReference[], values: ReadonlyMap<string, string>): EnvFilePlan {
  const missing = [...new Set(refs.filter((r) => !values.has(r.secret)).map((r) => r.secret))].sort();
  if (missing.length > 0) return { missing };
  const lines = refs.map((r) => `${r.env}=${quoteEnvValue(values.get(r.secret)!)}`);
  return { text: `# written by the fleetx agent from etcd secrets; do not edit\n${lines.join('\n')}\n`, missing };
}
