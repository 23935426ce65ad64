/**
 * OpenSSH in test hosts, so `fleetx status|journal|ssh` reach them the way
 * they reach real machines: over SSH with host keys checked.
 *
 * The machine's /etc/ssh is the overlay's lower layer, so without care every
 * host would show the machine's own host keys, identical on all of them, and
 * a known-hosts file could not tell hosts apart. Each host gets its own
 * ed25519 key in its upper layer (kept across reboots), and a drop-in makes
 * sshd serve that key only. sshd binds the wildcard address inside the
 * host's own network namespace (lo and host0 on the bridge): nothing listens
 * on the machine's addresses.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { failedError } from '../errors/errors.js';
import { mkdirLike, upperPath } from './layer.js';
import { SYSTEM_PATH } from './run.js';

const execFileP = promisify(execFile);

/** The server's unit and its alias: kept unmasked in hosts that run sshd (ssh.socket stays masked). */
export const SSH_UNITS: readonly string[] = ['ssh.service', 'sshd.service'];
/** Where Debian's openssh-server installs the unit. */
export const SSH_UNIT_FILE = '/lib/systemd/system/ssh.service';
export const SSHD_BIN = '/usr/sbin/sshd';
export const HOST_KEY = '/etc/ssh/ssh_host_ed25519_key';
export const SSHD_DROPIN = '/etc/ssh/sshd_config.d/fleetx-sandbox.conf';

/**
 * Pure: the sshd drop-in. Debian's sshd_config includes sshd_config.d/*.conf
 * first and sshd keeps the first value of a keyword, so these win; HostKey
 * is the only one listed, so the machine's other keys are never offered.
 */
export function sshdDropIn(): string {
  return [
    '# fleetx sandbox: this host\'s own key only, keys only, root by key.',
    `HostKey ${HOST_KEY}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    '',
  ].join('\n');
}

/** Pure: one known_hosts line per host, by the address fleetx connects to. */
export function knownHostsText(hosts: ReadonlyArray<{ address: string; hostKey: string }>): string {
  return hosts.map((h) => `${h.address} ${publicKeyPart(h.hostKey)}\n`).join('');
}

function isMask(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink() && readlinkSync(path) === '/dev/null';
  } catch {
    return false;
  }
}

/** "type base64" of a public key line (drops the comment). */
function publicKeyPart(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(' ');
}

/**
 * Creates an ed25519 key pair at `file` (+ `.pub`, private key 0600) unless
 * one is there, and returns the public key line.
 * @throws FleetxError 'failed' when ssh-keygen is missing or fails.
 */
export async function ensureKeyPair(file: string, comment: string): Promise<string> {
  if (!existsSync(file) || !existsSync(`${file}.pub`)) {
    mkdirSync(dirname(file), { recursive: true });
    // Half a pair (a crash in between): ssh-keygen would ask before overwriting.
    rmSync(file, { force: true });
    rmSync(`${file}.pub`, { force: true });
    try {
      await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], {
        env: { PATH: SYSTEM_PATH, LANG: 'C.UTF-8' },
        timeout: 30_000,
      });
    } catch (e) {
      throw failedError(`cannot create an SSH key at ${file}: ${(e as Error).message.split('\n')[0]}`, 'install openssh-client (scripts/setup.sh)');
    }
  }
  chmodSync(file, 0o600);
  return readFileSync(`${file}.pub`, 'utf8').trim();
}

/**
 * Before boot: the host's own key (made once, kept in the upper layer), the
 * sshd drop-in, root's authorized_keys (0600 in a 0700 ~/.ssh), and ssh.service
 * wanted by multi-user.target. Returns the host's public key line.
 * @throws FleetxError 'failed' when openssh-server is not installed on the machine.
 */
export async function prepareSshd(upper: string, name: string, authorizedKeys: readonly string[]): Promise<string> {
  if (!existsSync(SSHD_BIN) || !existsSync(SSH_UNIT_FILE)) {
    throw failedError('test hosts need sshd, and openssh-server is not installed on this machine', 'run scripts/setup.sh (or apt-get install openssh-server)');
  }
  const key = upperPath(upper, HOST_KEY);
  mkdirLike(upper, dirname(HOST_KEY));
  const hostKey = await ensureKeyPair(key, `root@${name}`);

  // A host booted earlier without sshd has these masked in its upper layer.
  for (const unit of SSH_UNITS) {
    const p = upperPath(upper, `/etc/systemd/system/${unit}`);
    if (isMask(p)) rmSync(p);
  }

  mkdirLike(upper, dirname(SSHD_DROPIN));
  writeFileSync(upperPath(upper, SSHD_DROPIN), sshdDropIn(), { mode: 0o644 });

  const sshDir = upperPath(upper, '/root/.ssh');
  mkdirLike(upper, '/root');
  mkdirSync(sshDir, { recursive: true });
  chmodSync(sshDir, 0o700);
  const authorized = join(sshDir, 'authorized_keys');
  writeFileSync(authorized, authorizedKeys.map((k) => `${k.trim()}\n`).join(''), { mode: 0o600 });
  chmodSync(authorized, 0o600);
  return hostKey;
}
