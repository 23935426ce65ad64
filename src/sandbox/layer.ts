/**
 * Writing a host's identity and configuration into its overlay's upper layer.
 * This happens before the overlay is mounted: overlayfs does not support
 * changing the upper layer underneath a mounted overlay.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { invalidError } from '../errors/errors.js';

/** The oneshot unit that puts the host's address on host0 (see netUnit). */
export const NET_UNIT = 'fleetx-sandbox-net.service';

/** A file's text, or its text and mode (e.g. 0o600 for a file holding secrets). */
export type HostFile = string | { content: string; mode: number };

export interface LayerSpec {
  name: string;
  machineId: string;
  /** CIDR for host0, e.g. 10.213.0.11/24; absent with a private network. */
  address?: string;
  files: Record<string, HostFile>;
  masks: string[];
  /** Units to start at boot: linked into multi-user.target.wants. */
  enable: string[];
  /** In-host symlink path -> target, e.g. a wants link to a unit under /lib/systemd/system. */
  links?: Record<string, string>;
}

/**
 * Configuring host0 with `ip` from a oneshot unit is the least moving part:
 * nspawn moves host0 into the container before systemd starts, so no udev
 * device dependency is needed, and networkd is not enabled on the machine.
 * Restart=on-failure: under cgroup v1 systemd here now and then fails to
 * spawn an early unit ("Failed at step CGROUP ... No such file or
 * directory"); a retry succeeds. bootHost also checks the address afterwards.
 */
export function netUnit(address: string): string {
  return [
    '[Unit]',
    'Description=fleetx sandbox: address on host0',
    'Before=network.target network-online.target',
    'Wants=network.target',
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    'Restart=on-failure',
    'RestartSec=200ms',
    'ExecStart=/usr/sbin/ip link set host0 up',
    `ExecStart=/usr/sbin/ip addr replace ${address} dev host0`,
    '',
    '[Install]',
    'WantedBy=multi-user.target network-online.target',
    '',
  ].join('\n');
}

/** Resolves an absolute in-host path to its place in the upper layer. */
export function upperPath(upper: string, hostPath: string): string {
  if (!hostPath.startsWith('/') || hostPath.split('/').includes('..')) {
    throw invalidError(`host file path must be absolute without "..": ${JSON.stringify(hostPath)}`);
  }
  return join(upper, posix.normalize(hostPath));
}

/**
 * Creates the directories leading to `hostDir` in the upper layer with the
 * mode and owner of the same directory on the machine: an upper directory's
 * metadata wins in the merged view, so a plain mkdir would turn /root 0700
 * into 0755.
 */
export function mkdirLike(upper: string, hostDir: string): void {
  let rel = '';
  for (const part of hostDir.split('/').filter(Boolean)) {
    rel = `${rel}/${part}`;
    const target = join(upper, rel);
    if (existsSync(target)) continue;
    mkdirSync(target);
    try {
      const st = lstatSync(rel);
      if (st.isDirectory()) {
        chmodSync(target, st.mode & 0o7777);
        chownSync(target, st.uid, st.gid);
      }
    } catch {
      // Not on the machine: the default mode is right.
    }
  }
}

function writeHostFile(upper: string, hostPath: string, file: HostFile): void {
  const target = upperPath(upper, hostPath);
  mkdirLike(upper, posix.dirname(hostPath));
  rmSync(target, { force: true }); // may be a mask symlink written earlier
  const content = typeof file === 'string' ? file : file.content;
  if (posix.dirname(hostPath) === HOST_SECRETS_DIR) {
    // credentials (the agent's etcd password): root only, from the first byte
    chmodSync(upperPath(upper, HOST_SECRETS_DIR), 0o700);
    writeFileSync(target, content, { mode: 0o600 });
    return;
  }
  // Scripts (a #! first line) must be executable; everything else is plain data.
  const mode = typeof file === 'string' ? (content.startsWith('#!') ? 0o755 : 0o644) : file.mode;
  // Created with its mode (no moment with wider access), then set exactly (umask).
  writeFileSync(target, content, { mode });
  chmodSync(target, mode);
}

/** Files written here are 0600 in a 0700 directory (the agent unit's EnvironmentFile lives here). */
export const HOST_SECRETS_DIR = '/etc/fleetx/secrets';

function linkHostFile(upper: string, hostPath: string, to: string): void {
  const target = upperPath(upper, hostPath);
  mkdirLike(upper, posix.dirname(hostPath));
  rmSync(target, { force: true });
  symlinkSync(to, target);
}

/** Writes identity, masks, network unit and extra files into `upper`. */
export function writeLayer(upper: string, spec: LayerSpec): void {
  mkdirSync(upper, { recursive: true });
  const unitDir = '/etc/systemd/system';
  const files: Record<string, HostFile> = {
    '/etc/machine-id': `${spec.machineId}\n`,
    '/etc/hostname': `${spec.name}\n`,
  };
  if (spec.address !== undefined) files[`${unitDir}/${NET_UNIT}`] = netUnit(spec.address);
  Object.assign(files, spec.files);
  // A unit the caller writes is meant to run: never mask it.
  const own = new Set(Object.keys(files).filter((p) => dirname(p) === unitDir).map((p) => p.slice(unitDir.length + 1)));
  for (const unit of spec.masks) {
    if (!own.has(unit)) linkHostFile(upper, `${unitDir}/${unit}`, '/dev/null');
  }
  for (const [path, content] of Object.entries(files)) writeHostFile(upper, path, content);
  const wants: Array<[string, string]> = spec.enable.map((u) => ['multi-user.target', u]);
  if (spec.address !== undefined) wants.push(['multi-user.target', NET_UNIT], ['network-online.target', NET_UNIT]);
  for (const [path, to] of Object.entries(spec.links ?? {})) linkHostFile(upper, path, to);
  for (const [target, unit] of wants) {
    // Template instances (name@x.service) link to their template file.
    const file = unit.replace(/@[^.]+\./, '@.');
    linkHostFile(upper, `${unitDir}/${target}.wants/${unit}`, `${unitDir}/${file}`);
  }
}
