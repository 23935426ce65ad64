/**
 * Machine metadata: what an agent reports (config file < flags) with the
 * overrides of `fleetx set-metadata` ({p}/machine-meta/{id}) on top. An
 * override with an empty value removes that key, so an operator can take a
 * key away that the agent itself reports.
 */

/** Decodes {p}/machine-meta/{id}: the map itself, or `{ metadata: map }`; anything else is empty. */
export function metadataOf(v: unknown): Record<string, string> {
  if (v === null || typeof v !== 'object') return {};
  const o = v as Record<string, unknown>;
  const src = o.metadata !== null && typeof o.metadata === 'object' ? (o.metadata as Record<string, unknown>) : o;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(src)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** `own` with `overrides` applied: a value replaces, an empty value removes. Keys sorted. */
export function withOverrides(own: Record<string, string>, overrides: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = { ...own };
  for (const [k, v] of Object.entries(overrides ?? {})) {
    if (v === '') delete out[k];
    else out[k] = v;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
