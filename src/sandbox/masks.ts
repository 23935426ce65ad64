/**
 * Which units a test host must not run. Every package installed on the
 * machine is visible in a host (the machine's root is the overlay's lower
 * layer), and whatever the machine enabled would start there too: etcd and
 * haproxy would fight over ports, postgresql would eat memory, timers would
 * run apt. So a host masks what the machine enabled, plus a fixed list of
 * services that may be installed later, except the few a host needs.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Services a host must never run even if the machine has not enabled them. */
export const ALWAYS_MASK: readonly string[] = [
  'etcd.service',
  'etcd2.service',
  'haproxy.service',
  'docker.service',
  'docker.socket',
  'containerd.service',
  // The sandbox runs its registry on the machine; podman's API service is not used.
  'docker-registry.service',
  'podman.service',
  'podman.socket',
  'podman-restart.service',
  'podman-auto-update.service',
  'podman-auto-update.timer',
  'ssh.service',
  'ssh.socket',
  'sshd.service',
  'cron.service',
  'anacron.service',
  'anacron.timer',
  'postgresql.service',
  'postgresql@.service',
  'unattended-upgrades.service',
  'systemd-timesyncd.service',
  // The console is a log file: a login prompt there is noise.
  'console-getty.service',
];

/** Units a host needs; never masked even when listed as enabled. */
export const NEVER_MASK: readonly string[] = [
  'dbus.service',
  'dbus.socket',
  'dbus-broker.service',
  'systemd-journald.service',
  'systemd-journald.socket',
  'systemd-networkd.service',
  'systemd-logind.service',
];

const MASKABLE = /\.(service|socket|timer|path)$/;

/** Pure: the sorted, de-duplicated list of units to mask. */
export function unitsToMask(enabled: readonly string[], extra: readonly string[] = [], keep: readonly string[] = []): string[] {
  const skip = new Set([...NEVER_MASK, ...keep]);
  const all = new Set([...enabled.filter((u) => MASKABLE.test(u)), ...ALWAYS_MASK, ...extra]);
  return [...all].filter((u) => !skip.has(u)).sort();
}

/** Units the machine enabled under `<root>/etc/systemd/system/*.wants` (and aliases next to them). */
export function enabledUnits(root = '/'): string[] {
  const dir = join(root, 'etc/systemd/system');
  const found: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  for (const e of entries) {
    if (e.endsWith('.wants') || e.endsWith('.requires')) {
      try {
        found.push(...readdirSync(join(dir, e)));
      } catch {
        // Not a directory: ignore.
      }
    } else if (MASKABLE.test(e) && !e.startsWith('dbus-org.')) {
      // Aliases such as etcd2.service -> etcd.service are units too.
      found.push(e);
    }
  }
  return found;
}
