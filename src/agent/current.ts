/**
 * The current side: what this host has, read from systemd and from the unit
 * files fleetx wrote. Only fleetx's own files and the scheduled names are
 * looked at; foreign units are never touched.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { isFleetxError } from '../errors/errors.js';
import type { Systemd } from '../systemd/types.js';
import { optionValues } from '../unit/options.js';
import { parseUnit } from '../unit/parse.js';
import { normalizeBody } from './body.js';
import type { CurrentUnit } from './types.js';

export interface CurrentResult {
  current: Map<string, CurrentUnit>;
  /** scheduled names whose unit file exists but was not written by fleetx: never overwritten */
  foreign: Set<string>;
}

/** Where systemd puts runtime enablement links (EnableUnitFiles with runtime=true). */
export const RUNTIME_DIR = '/run/systemd/system';

/**
 * Reads current state for fleetx's files plus `scheduled` names.
 * `hashOfText` maps a file's content to the hash of a known body.
 * systemd/filesystem errors propagate (the pass is retried later).
 */
export async function readCurrent(
  sd: Systemd,
  scheduled: Iterable<string>,
  hashOfText: (text: string) => string | undefined,
  runtimeDir = RUNTIME_DIR,
): Promise<CurrentResult> {
  const own = new Set(await sd.listUnitFiles());
  const foreign = new Set<string>();
  const texts = new Map<string, string>();
  // side by side: one after another, 40 new units' lookups were 40 round trips through libuv's pool
  await Promise.all([...own].map(async (name) => {
    const t = await sd.readUnitFile(name);
    if (t !== undefined) texts.set(name, t);
  }));
  await Promise.all([...scheduled].filter((name) => !own.has(name)).map(async (name) => {
    try {
      await sd.readUnitFile(name); // no file: undefined; someone else's file: 'conflict'
    } catch (e) {
      if (isFleetxError(e) && e.kind === 'conflict') foreign.add(name);
      else throw e;
    }
  }));

  const names = [...new Set([...own, ...scheduled])].filter((n) => !foreign.has(n)).sort();
  const statuses = new Map((await sd.listUnits(names)).map((s) => [s.name, s]));
  const current = new Map<string, CurrentUnit>();
  for (const name of names) {
    const s = statuses.get(name);
    const text = texts.get(name);
    const unit: CurrentUnit = {
      name,
      fileHash: text === undefined ? undefined : (hashOfText(normalizeBody(text)) ?? 'unknown'),
      loadState: s?.loadState ?? 'not-found',
      activeState: s?.activeState ?? 'inactive',
      subState: s?.subState ?? 'dead',
      enabled: text === undefined ? false : await runtimeEnabled(name, text, runtimeDir),
      // a file systemd has not picked up yet (written, then the agent died before daemon-reload)
      needsReload: text !== undefined && (s?.loadState ?? 'not-found') === 'not-found',
    };
    if (s?.mainPid !== undefined) unit.mainPid = s.mainPid;
    current.set(name, unit);
  }
  return { current, foreign };
}

/**
 * Whether the unit's runtime enablement links exist: one per WantedBy/
 * RequiredBy/UpheldBy target under runtimeDir/T.wants|.requires|.upholds.
 * (systemd's UnitFileState would say the same; the adapter does not expose it.)
 */
export async function runtimeEnabled(name: string, text: string, runtimeDir = RUNTIME_DIR): Promise<boolean> {
  let links: string[];
  try {
    const u = parseUnit(text, name);
    links = [
      ...optionValues(u, 'Install', 'WantedBy').flatMap(splitWords).map((t) => join(runtimeDir, `${t}.wants`, name)),
      ...optionValues(u, 'Install', 'RequiredBy').flatMap(splitWords).map((t) => join(runtimeDir, `${t}.requires`, name)),
      ...optionValues(u, 'Install', 'UpheldBy').flatMap(splitWords).map((t) => join(runtimeDir, `${t}.upholds`, name)),
    ];
  } catch {
    return false;
  }
  for (const l of links) {
    try {
      await lstat(l);
      return true;
    } catch {
      // not linked there
    }
  }
  return false;
}

const splitWords = (v: string): string[] => v.split(/\s+/).filter((w) => w !== '');
