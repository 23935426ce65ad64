/**
 * The sandbox's state file, stateDir/state.json: what `up` made, so that
 * `status` and `down` (possibly from another process, after a crash) know
 * what to look at. It is written before each thing is created, so it always
 * names at least what exists. Also meant for a later `resolveConnection`
 * fallback (etcd.endpoints).
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ETCD_NAME, MAX_ETCD_MEMBERS } from './etcd.js';
import { usageError } from '../errors/errors.js';
import type { ConnectionOptions } from '../registry/connection.js';

export const DEFAULT_SANDBOX_DIR = '/var/lib/fleetx/sandbox';

const HostEntry = z.object({
  name: z.string(),
  machineId: z.string(),
  address: z.string(),
  dir: z.string(),
  /** cloud-init's instance-id in the host's seed (absent in a sandbox made before hosts booted through cloud-init). */
  instanceId: z.string().optional(),
});

const EtcdMember = z.object({
  name: z.string(),
  pid: z.number().int().optional(),
  clientUrl: z.string(),
  peerUrl: z.string(),
  dataDir: z.string(),
  logFile: z.string(),
});

/** A state from before members (one etcd: pid, endpoints, peerUrl, dataDir, logFile) reads as one member. */
function withMembers(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || 'members' in v) return v;
  const old = v as { pid?: number; endpoints?: string[]; peerUrl?: string; dataDir?: string; logFile?: string };
  const member = { name: ETCD_NAME, pid: old.pid, clientUrl: old.endpoints?.[0], peerUrl: old.peerUrl, dataDir: old.dataDir, logFile: old.logFile };
  return { endpoints: old.endpoints, members: [member] };
}

const State = z.object({
  version: z.literal(1),
  stateDir: z.string(),
  repoRoot: z.string(),
  bridge: z.object({ name: z.string(), cidr: z.string() }),
  etcd: z.preprocess(
    withMembers,
    z.object({
      /** Every member's client URL, member 1 first: what every fleetx process is given. */
      endpoints: z.array(z.string()),
      members: z.array(EtcdMember).min(1),
      /** etcd users and passwords (src/sandbox/etcd-auth.ts); absent in a sandbox made before etcd had auth */
      auth: z
        .object({
          rootPassword: z.string(),
          agent: z.object({ username: z.string(), password: z.string() }),
          operator: z.object({ username: z.string(), password: z.string() }),
        })
        .optional(),
    }),
  ),
  /** The image registry on the bridge (absent in a sandbox made before it had one). */
  registry: z.object({ address: z.string(), dir: z.string(), logFile: z.string() }).optional(),
  hosts: z.array(HostEntry),
});

export type SandboxState = z.infer<typeof State>;
export type SandboxHostEntry = z.infer<typeof HostEntry>;
export type SandboxEtcdMember = z.infer<typeof EtcdMember>;

export const sandboxPaths = (stateDir: string) => ({
  state: join(stateDir, 'state.json'),
  env: join(stateDir, 'env'),
  /** Member 1's data dir and log; member i has `etcd-i` and `etcd-i.log` (etcdMembers). */
  etcdData: join(stateDir, 'etcd'),
  etcdLog: join(stateDir, 'etcd.log'),
  hosts: join(stateDir, 'hosts'),
  lock: join(stateDir, 'lock'),
  /** The sandbox's SSH client key (0600; `.pub` next to it), authorized for root on every host. */
  sshKey: join(stateDir, 'id_ed25519'),
  /** Every host's address and SSH host key. */
  knownHosts: join(stateDir, 'known_hosts'),
  /** The image registry's config and store, and its log. */
  registry: join(stateDir, 'registry'),
  registryLog: join(stateDir, 'registry.log'),
  /** Images built on this machine for the sandbox (src/images): podman's store, build context. */
  images: join(stateDir, 'images'),
  /** The operator's etcd password (0600), named by FLEETX_ETCD_PASSWORD_FILE in the env file. */
  operatorPassword: join(stateDir, 'etcd-operator.password'),
  /** The release hosts install at first boot (`npm pack` of the checkout, release.ts), bound read-only into each host. */
  release: join(stateDir, 'release'),
});

/** The data dirs and logs of every possible etcd member. */
export const ETCD_ENTRIES = Array.from({ length: MAX_ETCD_MEMBERS }, (_, k) => (k === 0 ? ['etcd', 'etcd.log'] : [`etcd-${k + 1}`, `etcd-${k + 1}.log`])).flat();

/** Names `down` may delete inside stateDir; anything else there is left alone. */
export const OWN_ENTRIES = ['state.json', 'state.json.tmp', 'env', ...ETCD_ENTRIES, 'hosts', 'id_ed25519', 'id_ed25519.pub', 'known_hosts', 'registry', 'registry.log', 'images', 'etcd-operator.password', 'release', 'lock'];

/** The state, or undefined when there is none or it is unreadable (then `down` falls back to scanning). */
export function readState(stateDir: string): SandboxState | undefined {
  const file = sandboxPaths(stateDir).state;
  if (!existsSync(file)) return undefined;
  try {
    const parsed = State.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Atomic replace, so a crash never leaves half a file. */
export function writeState(state: SandboxState): void {
  const file = sandboxPaths(state.stateDir).state;
  // it holds etcd's passwords
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  chmodSync(`${file}.tmp`, 0o600);
  renameSync(`${file}.tmp`, file);
}

/**
 * The variables `. stateDir/env` sets: etcd (as the operator: never the
 * password itself, only the file that holds it), and SSH for status/journal/ssh.
 */
export function envValues(endpoints: string[], stateDir: string, etcdUser?: string): Record<string, string> {
  const paths = sandboxPaths(stateDir);
  return {
    FLEETX_ENDPOINT: endpoints.join(','),
    ...(etcdUser ? { FLEETX_ETCD_USERNAME: etcdUser, FLEETX_ETCD_PASSWORD_FILE: paths.operatorPassword } : {}),
    FLEETX_SANDBOX_DIR: stateDir,
    FLEETX_KNOWN_HOSTS_FILE: paths.knownHosts,
    FLEETX_SSH_IDENTITY_FILE: paths.sshKey,
    FLEETX_SSH_USERNAME: 'root',
  };
}

/** Pure: the shell snippet behind `eval "$(cat stateDir/env)"` / `. stateDir/env`. */
export function envFileText(endpoints: string[], stateDir: string, etcdUser?: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    '# fleetx sandbox: `. THIS_FILE` points fleetx on this machine at the sandbox etcd and its hosts.',
    ...Object.entries(envValues(endpoints, stateDir, etcdUser)).map(([k, v]) => `export ${k}=${q(v)}`),
    '',
  ].join('\n');
}

/**
 * How code on this machine connects to the sandbox etcd as the operator
 * (the demo, tests): the env file's settings, password read from its file.
 */
export function sandboxConnection(stateDir: string, requestTimeoutMs = 5_000): ConnectionOptions {
  const state = readState(stateDir);
  if (!state) throw usageError(`no sandbox at ${stateDir}`, 'run fleetx sandbox up first');
  const op = state.etcd.auth?.operator;
  return { endpoints: state.etcd.endpoints, requestTimeoutMs, prefix: '/fleetx', ...(op ? { username: op.username, password: op.password } : {}) };
}
