/**
 * Placement constraints between units and machines, as fleet evaluated them.
 * Pure functions: the scheduler calls these for every (unit, machine) pair, so
 * compiled globs are cached.
 */
import picomatch from 'picomatch';
import type { XFleetOptions } from './types.js';

/**
 * fleet matched Conflicts globs with Go's path.Match: only `*`, `?` and
 * `[...]` are special. Turn off picomatch's extras (braces, extglobs, `!`
 * negation, `**`) so a glob means the same thing it meant in fleet, and let
 * `*` match a leading dot.
 */
const GLOB_OPTIONS: picomatch.PicomatchOptions = {
  dot: true,
  nobrace: true,
  noextglob: true,
  noglobstar: true,
  nonegate: true,
  posix: true,
};

const cache = new Map<string, (name: string) => boolean>();
const CACHE_MAX = 4096;

/** True when `name` matches the path.Match-style glob `glob`. */
export function globMatches(glob: string, name: string): boolean {
  let m = cache.get(glob);
  if (m === undefined) {
    m = picomatch(glob, GLOB_OPTIONS);
    // Globs come from unit files, so the set is small; the bound only guards
    // against a pathological stream of distinct globs.
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(glob, m);
  }
  return m(name);
}

interface NamedUnit {
  name: string;
  xfleet: XFleetOptions;
}

/**
 * True when a and b may not share a machine: a's Conflicts globs match b's
 * name, or b's match a's (fleet checks both directions). A unit never
 * conflicts with itself, so `app@*.service` on app@1 does not exclude app@1.
 */
export function unitsConflict(a: NamedUnit, b: NamedUnit): boolean {
  if (a.name === b.name) return false;
  return a.xfleet.conflicts.some((g) => globMatches(g, b.name)) || b.xfleet.conflicts.some((g) => globMatches(g, a.name));
}

/**
 * True when a machine's metadata satisfies a unit's MachineMetadata: every
 * required key must be present (keys AND) with one of the listed values
 * (values OR). An empty requirement matches every machine; a key listed with
 * no values matches none (as fleet's HasMetadata).
 */
export function metadataMatches(required: Record<string, string[]>, metadata: Record<string, string>): boolean {
  for (const key of Object.keys(required)) {
    if (!Object.hasOwn(metadata, key)) return false;
    if (!required[key]!.includes(metadata[key]!)) return false;
  }
  return true;
}
