/**
 * A container unit's image pull step: the `ExecStartPre=` line that runs
 * `docker pull IMAGE` or `podman pull IMAGE` (units/app@.service.hbs has
 * one). The agent runs that same step ahead of a restart onto a new body
 * (src/agent/prepull.ts), so the image is on the host before the instance
 * leaves the load balancer; the unit's own pull at start then finds it
 * there. The unit text is the only source of the image: no extra field or
 * label to keep in step with what the unit really runs.
 *
 * Only a plain line is recognised: an absolute path to a binary named
 * docker or podman, then `pull`, then words without `$` (environment
 * variables are systemd's to expand, not ours). Specifiers (%i, %p …) are
 * expanded for the instance's name. Anything else: no pull step, and the
 * rollout does not wait for one.
 */
import { optionValues } from './options.js';
import { parseUnitName } from './name.js';
import { expandSpecifiers } from './specifiers.js';
import type { UnitFile } from './types.js';

export const RUNTIMES = ['docker', 'podman'] as const;

export interface PullStep {
  /** the command as systemd would run it (argv[0] an absolute path) */
  argv: string[];
  /** the image reference pulled (the last word) */
  image: string;
}

/** The unit's first image pull step, for the named instance; undefined when it has none. */
export function pullStep(u: UnitFile, unitName: string): PullStep | undefined {
  const name = parseUnitName(unitName);
  for (const line of optionValues(u, 'Service', 'ExecStartPre')) {
    const words = execWords(line.replace(/^[-@:+!]+/, ''));
    if (words === undefined || words.length < 3) continue;
    const [bin, verb] = words;
    const base = bin!.slice(bin!.lastIndexOf('/') + 1);
    if (!bin!.startsWith('/') || !(RUNTIMES as readonly string[]).includes(base) || verb !== 'pull') continue;
    if (words.some((w) => w.includes('$'))) continue;
    let argv: string[];
    try {
      argv = words.map((w) => expandSpecifiers(w, name));
    } catch {
      continue; // a specifier systemd knows and fleetx does not: leave the pull to the unit
    }
    return { argv, image: argv.at(-1)! };
  }
  return undefined;
}

/**
 * A command line split into words as systemd does for Exec*= (whitespace
 * separates; "double" and 'single' quotes group; a backslash escapes the
 * next character). undefined for an unterminated quote.
 */
export function execWords(line: string): string[] | undefined {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote !== undefined) return undefined;
  if (inWord) words.push(cur);
  return words;
}
