/**
 * X-Fleet options come from the unit BODY, stored once per content hash.
 * Bodies are immutable per hash, so parsed files are cached by hash for the
 * life of the leader and only new hashes are fetched; options are cached per
 * (hash, name) because specifiers (%i, %p) expand differently per instance.
 * Missing bodies are not cached: one may appear later.
 */
import { parseUnit } from '../unit/parse.js';
import type { UnitFile, XFleetOptions } from '../unit/types.js';
import type { UnitRecord } from '../registry/records.js';
import type { XFleetLookup } from './plan.js';

/** Reads X-Fleet options of `name` from its parsed body; throws (FleetxError 'invalid') on bad options. */
export type XFleetParser = (file: UnitFile, name: string) => XFleetOptions;

type Parsed = { file: UnitFile } | { error: string };

export class XFleetCache {
  private readonly files = new Map<string, Parsed>();
  private readonly options = new Map<string, XFleetOptions | { error: string }>();

  constructor(private readonly parseXFleet: XFleetParser) {}

  /** Hashes of these units whose bodies are not cached yet (deduplicated, sorted). */
  missing(units: readonly UnitRecord[]): string[] {
    const out = new Set<string>();
    for (const u of units) if (!this.files.has(u.hash)) out.add(u.hash);
    return [...out].sort();
  }

  addBody(hash: string, text: string): void {
    try {
      this.files.set(hash, { file: parseUnit(text, `body ${hash}`) });
    } catch (e) {
      this.files.set(hash, { error: `cannot parse body ${hash}: ${message(e)}` });
    }
  }

  /** X-Fleet options per unit name; units whose body is unknown are absent. */
  lookup(units: readonly UnitRecord[]): XFleetLookup {
    const out = new Map<string, XFleetOptions | { error: string }>();
    for (const u of units) {
      const parsed = this.files.get(u.hash);
      if (parsed === undefined) continue;
      if ('error' in parsed) {
        out.set(u.name, parsed);
        continue;
      }
      const key = `${u.hash}\0${u.name}`;
      let opts = this.options.get(key);
      if (opts === undefined) {
        try {
          opts = this.parseXFleet(parsed.file, u.name);
        } catch (e) {
          opts = { error: `invalid [X-Fleet] section: ${message(e)}` };
        }
        this.options.set(key, opts);
      }
      out.set(u.name, opts);
    }
    return out;
  }

  /** Forgets hashes no unit uses any more, so the cache follows the cluster's size. */
  prune(units: readonly UnitRecord[]): void {
    const used = new Set(units.map((u) => u.hash));
    for (const h of this.files.keys()) if (!used.has(h)) this.files.delete(h);
    const names = new Set(units.map((u) => `${u.hash}\0${u.name}`));
    for (const k of this.options.keys()) if (!names.has(k)) this.options.delete(k);
  }

  get size(): number {
    return this.files.size;
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
