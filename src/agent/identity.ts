/**
 * Who this host is: machine id, IP, metadata. Parsing is pure
 * (parseMetadataFlag, mergeMetadata; the config file's parseAgentConfig is in
 * config.ts); resolveIdentity does the few reads (machine-id file, config
 * file, network interfaces).
 */
import { readFile } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { usageError } from '../errors/errors.js';

export interface Identity {
  id: string;
  ip: string;
  hostname: string;
  /** from flags and config file; {p}/machine-meta/{id} is merged on top later */
  metadata: Record<string, string>;
}

export interface IdentityOptions {
  /** explicit id (tests); otherwise read from machineIdFile */
  machineId?: string;
  machineIdFile?: string; // default /etc/machine-id
  ip?: string;
  /** `--metadata k=v,k2=v2`, possibly given several times */
  metadata?: string[];
  /** YAML file: { ip?, metadata?: {k: v} } */
  configFile?: string;
}

/** A metadata key (flags, config file). */
export const META_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const MACHINE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** `k=v,k2=v2` → {k: v, k2: v2}. Throws 'usage' on a malformed pair. */
export function parseMetadataFlag(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of value.split(',')) {
    const pair = raw.trim();
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = eq < 0 ? '' : pair.slice(0, eq).trim();
    if (eq < 0 || !META_KEY.test(key)) {
      throw usageError(`--metadata: "${pair}" is not key=value`, 'e.g. --metadata region=eu,disk=ssd');
    }
    out[key] = pair.slice(eq + 1).trim();
  }
  return out;
}

/** The agent's config file, parsed by config.ts. */
export type AgentConfig = { ip?: string; metadata?: Record<string, string> };

/** Later sources win: config file < flags < etcd machine-meta. */
export function mergeMetadata(...layers: Array<Record<string, string> | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of layers) if (l) Object.assign(out, l);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The first non-internal IPv4 address, in interface-name order. */
export function firstIPv4(ifaces = networkInterfaces()): string | undefined {
  for (const name of Object.keys(ifaces).sort()) {
    for (const a of ifaces[name] ?? []) {
      if (a.family === 'IPv4' && !a.internal) return a.address;
    }
  }
  return undefined;
}

/**
 * Throws 'usage' when no machine id or IP can be found, 'invalid' for a bad
 * config file.
 */
export async function resolveIdentity(opts: IdentityOptions): Promise<Identity> {
  const id = opts.machineId ?? (await readMachineId(opts.machineIdFile ?? '/etc/machine-id'));
  if (!MACHINE_ID.test(id)) throw usageError(`machine id "${id}" is not valid`, 'letters, digits, "_.-", at most 128 characters');
  let config: AgentConfig = {};
  if (opts.configFile) {
    let text: string;
    try {
      text = await readFile(opts.configFile, 'utf8');
    } catch (e) {
      throw usageError(`--config ${opts.configFile} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    // yaml and the config's schema are loaded only by an agent that has a config file (memory: issue 10)
    const { parseAgentConfig } = await import('./config.js');
    config = parseAgentConfig(text, opts.configFile);
  }
  const flagMeta = (opts.metadata ?? []).map(parseMetadataFlag);
  const ip = opts.ip ?? config.ip ?? firstIPv4();
  if (!ip) throw usageError('no IPv4 address found for this host', 'pass --ip');
  return { id, ip, hostname: hostname(), metadata: mergeMetadata(config.metadata, ...flagMeta) };
}

async function readMachineId(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (e) {
    throw usageError(`cannot read machine id from ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, 'pass --machine-id');
  }
}
