/**
 * The leader's view of the cluster kept from its watches, so a pass does
 * not read and decode the whole cluster again (at 10,000 units that is
 * ~6 MB and 25,000 records per pass). Pure: fed by the watches of the five
 * prefixes a pass needs (view-feed.ts) and by the engine's own committed
 * writes; hands out the same RawView a full read would.
 *
 * Per prefix it holds exactly what its watch delivered: the last list,
 * then each event in order (PrefixWatch's contract: list + events = etcd's
 * content at the last revision delivered). On top of that, the engine's own
 * writes (schedule and unschedulable keys) from the moment their
 * transaction committed until the watch delivers them: without them, a
 * pass right after a write would not see its own placements and would
 * place the same units again. A write is dropped once its prefix's watch
 * covered it (its key's event, any event of a later revision, or a re-list
 * at or after its revision): from then on the watch's copy is as new or
 * newer.
 *
 * Prefixes are watched separately, so the view is not one snapshot: one
 * prefix can be a few events behind another. What keeps that safe is in
 * the writes, not here: every write is fenced and guarded on the mod
 * revision of the units it concerns (engine.ts), so a plan made from a
 * unit record that changed since is refused by etcd and made again.
 */
import type { RawKV, RawView } from './view.js';

export type ViewPart = 'units' | 'machines' | 'machineMetas' | 'schedules' | 'unschedulable';

export const VIEW_PARTS: readonly ViewPart[] = ['units', 'machines', 'machineMetas', 'schedules', 'unschedulable'];

/** One key written by the engine: a value, or undefined for a delete. */
export interface OwnWrite {
  part: ViewPart;
  key: string;
  value: string | undefined;
}

interface Entry {
  value: string;
  mod: bigint;
}

interface Part {
  listed: boolean;
  /** highest revision the watch delivered (its list's revision, then each event's) */
  seen: bigint;
  entries: Map<string, Entry>;
  /** own writes the watch has not delivered yet: key -> value (undefined: deleted) at revision */
  own: Map<string, { value: string | undefined; rev: bigint }>;
}

export class ViewCache {
  private readonly parts = new Map<ViewPart, Part>(
    VIEW_PARTS.map((p) => [p, { listed: false, seen: 0n, entries: new Map(), own: new Map() }]),
  );

  /** True once every part was listed: before that, "no records" means "unknown". */
  get ready(): boolean {
    return VIEW_PARTS.every((p) => this.part(p).listed);
  }

  /** The watch listed the part again: this is its whole content at `revision`. */
  replace(part: ViewPart, items: ReadonlyArray<{ key: string; value: string; modRevision: string }>, revision: string): void {
    const p = this.part(part);
    p.entries = new Map(items.map((kv) => [kv.key, { value: kv.value, mod: BigInt(kv.modRevision) }]));
    p.listed = true;
    const rev = BigInt(revision);
    if (rev > p.seen) p.seen = rev;
    // the list holds every write up to its revision
    for (const [key, w] of p.own) if (w.rev <= rev) p.own.delete(key);
  }

  /** One event of the part's watch, in order. */
  put(part: ViewPart, key: string, value: string, modRevision: string): void {
    const p = this.part(part);
    const mod = BigInt(modRevision);
    p.entries.set(key, { value, mod });
    this.advance(p, key, mod);
  }

  delete(part: ViewPart, key: string, modRevision: string): void {
    const p = this.part(part);
    p.entries.delete(key);
    this.advance(p, key, BigInt(modRevision));
  }

  /** The engine's transaction that committed at `revision` wrote these keys. */
  wrote(writes: readonly OwnWrite[], revision: string): void {
    const rev = BigInt(revision);
    for (const w of writes) {
      const p = this.part(w.part);
      if (p.seen > rev) continue; // the watch delivered that revision whole already
      p.own.set(w.key, { value: w.value, rev });
    }
  }

  /** Mod revision of a key as the view has it ('0' when absent); own writes count. */
  modRevision(part: ViewPart, key: string): string {
    const p = this.part(part);
    const own = p.own.get(key);
    if (own !== undefined) return own.value === undefined ? '0' : String(own.rev);
    return String(p.entries.get(key)?.mod ?? 0n);
  }

  /**
   * What a full read would return, as far as the watches and own writes
   * know. `revision` is the highest revision any part has seen (for reports).
   */
  raw(): RawView {
    let top = 0n;
    const out = {} as Record<ViewPart, RawKV[]>;
    for (const name of VIEW_PARTS) {
      const p = this.part(name);
      if (p.seen > top) top = p.seen;
      const merged = new Map<string, RawKV>();
      for (const [key, e] of p.entries) merged.set(key, { key, value: e.value, modRevision: String(e.mod) });
      for (const [key, w] of p.own) {
        if (w.rev > top) top = w.rev;
        if (w.value === undefined) merged.delete(key);
        else merged.set(key, { key, value: w.value, modRevision: String(w.rev) });
      }
      out[name] = [...merged.values()];
    }
    return { revision: String(top), ...out };
  }

  /**
   * An event of `key` at `rev` was delivered. Events come in revision
   * order, but the events of one revision (one transaction) one by one: an
   * own write is covered by its own key's event, or by any event of a later
   * revision (then every event of its revision was delivered).
   */
  private advance(p: Part, key: string, rev: bigint): void {
    const own = p.own.get(key);
    if (own !== undefined && own.rev <= rev) p.own.delete(key);
    if (rev <= p.seen) return;
    p.seen = rev;
    for (const [k, w] of p.own) if (w.rev < rev) p.own.delete(k);
  }

  private part(name: ViewPart): Part {
    return this.parts.get(name)!;
  }
}
