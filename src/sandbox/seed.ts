/**
 * How a sandbox host is provisioned: like any fleetx host, by cloud-init
 * from user-data that `fleetx cloud-config render` makes for its role. Each
 * host gets a NoCloud seed (`meta-data`: instance-id and hostname;
 * `user-data`) in its layer, and Debian's cloud-init inside the host does the
 * rest at first boot: writes the agent's configuration and unit, installs the
 * release (release.ts), sets up podman, starts the agent and waits for it to
 * register. Nothing else sets up an agent in a sandbox host.
 *
 * cloud-init runs once per instance-id: a reboot (`up` repairing a host on
 * its disk) does not provision again; a new instance-id (a new host) does.
 */
import { failedError } from '../errors/errors.js';
import { renderRole } from '../provision/provision.js';
import { mergeValues } from '../template/defaults.js';
import type { Host } from './host.js';
import type { HostFile } from './layer.js';
import type { Release } from './release.js';

/** The role every sandbox host has (cloud-config/web.yaml.hbs: podman, sidecars td-agent and dd-agent). */
export const SANDBOX_ROLE = 'web';

export const SEED_DIR = '/var/lib/cloud/seed/nocloud';
export const IMAGE_CONFIG = '/etc/cloud/cloud.cfg.d/90-fleetx-sandbox.cfg';
/** cloud-init's four boot stages; the machine has them disabled (scripts/setup.sh), hosts enable them. */
export const CLOUD_INIT_UNITS = ['cloud-init-local.service', 'cloud-init.service', 'cloud-config.service', 'cloud-final.service'];

export interface SeedOptions {
  /** etcd client URLs the agent uses. */
  endpoints: string[];
  /** host:port of the sandbox's image registry (plain HTTP on the bridge). */
  registry: string;
  release: Pick<Release, 'url' | 'sha256'>;
  /** The agent's etcd user (a sandbox with etcd auth, etcd-auth.ts): user-data writes it to the agent's 0600 env file. */
  credentials?: { username: string; password: string };
  /** Values merged over the sandbox's own (SandboxOptions.values). */
  values?: Record<string, unknown>;
}

/**
 * Pure: the values the sandbox adds to the role's own (merged last). What
 * differs from a cloud host, and why:
 * - `packages.preinstalled`: hosts see the machine's /usr through the
 *   overlay, which has Node 20 (from NodeSource, like a cloud host's) and
 *   podman, and they have no route to a mirror; the release's install
 *   script still checks Node >= 20 before installing;
 * - runtime: `vfs` (overlay on the overlay root needs fuse), cgroups
 *   disabled (read-only cgroup v1 tree), host network, no keyring (nspawn's
 *   seccomp filter refuses keyctl), the sandbox registry only, insecure for
 *   its one address (src/sandbox/registry.ts says why);
 * - the agent's etcd user and password when etcd has auth: cloud-config
 *   writes them to /etc/fleetx/secrets/fleetx-agent.env (0600 in a 0700 dir).
 */
export function sandboxValues(o: SeedOptions): Record<string, unknown> {
  return {
    etcd: { endpoints: o.endpoints },
    fleetx: { url: o.release.url, sha256: o.release.sha256 },
    packages: { preinstalled: true },
    runtime: {
      engine: 'podman',
      storageDriver: 'vfs',
      cgroups: 'disabled',
      network: 'host',
      keyring: false,
      registries: [],
      insecureRegistries: [o.registry],
    },
    registerTimeout: 60,
    ...(o.credentials ? { etcd: { endpoints: o.endpoints, username: o.credentials.username }, secrets: { etcdPassword: o.credentials.password } } : {}),
  };
}

/** The user-data of a sandbox host, rendered from `repoRoot`'s cloud-config/ (the command's own code path). */
export function sandboxUserData(o: SeedOptions, repoRoot: string): string {
  return renderRole({ role: SANDBOX_ROLE, files: [], sets: [], cwd: repoRoot, values: mergeValues(sandboxValues(o), o.values ?? {}) }).text;
}

/**
 * The sandbox image's cloud-init settings (what an image maker puts in
 * /etc/cloud/cloud.cfg.d): the seed is the only datasource (no probing),
 * networking is the sandbox's own (fleetx-sandbox-net.service), and the
 * module lists keep what fleetx's user-data uses. Left out: `users`
 * (Debian's default user), `ssh` (it would replace the host key the sandbox
 * made and put in known_hosts), apt and package modules (the packages are
 * preinstalled), and the modules for disks, puppet, chef, lxd and the like,
 * which only cost time.
 */
export const IMAGE_CONFIG_TEXT = [
  '# fleetx sandbox hosts: cloud-init settings of the image (src/sandbox/seed.ts)',
  'datasource_list: [NoCloud]',
  'network: {config: disabled}',
  'users: []',
  'cloud_init_modules: [bootcmd, write-files, set_hostname, update_hostname]',
  'cloud_config_modules: [locale, runcmd]',
  'cloud_final_modules: [write-files-deferred, scripts-user, final-message]',
  '',
].join('\n');

/**
 * Pure: the files a host's layer gets for cloud-init. The seed is 0600:
 * user-data can hold etcd credentials (see src/sandbox/README.md).
 */
export function seedFiles(o: { name: string; instanceId: string; userData: string }): Record<string, HostFile> {
  return {
    [`${SEED_DIR}/meta-data`]: { content: `instance-id: ${o.instanceId}\nlocal-hostname: ${o.name}\n`, mode: 0o600 },
    [`${SEED_DIR}/user-data`]: { content: o.userData, mode: 0o600 },
    [IMAGE_CONFIG]: IMAGE_CONFIG_TEXT,
  };
}

/** Pure: fleetx's own lines of cloud-init's output log (the reason a step failed), with the lines indented under them. */
export function fleetxLines(outputLog: string): string[] {
  const out: string[] = [];
  let inside = false;
  for (const line of outputLog.split('\n')) {
    if (line.startsWith('fleetx: ')) inside = true;
    else if (!line.startsWith('  ')) inside = false;
    if (inside) out.push(line);
  }
  return out;
}

/**
 * Waits for cloud-init to finish in `host` and checks it provisioned the
 * host. cloud-init 22.4's `status --long` names only the failing module;
 * the reason (fleetx's message, the agent's lines) is in its output log.
 * @throws FleetxError 'failed' naming the host and the failed step, with the
 *         status and the output log's fleetx lines as hint.
 */
export async function checkProvisioned(host: Host, timeoutMs = 240_000): Promise<void> {
  const status = await host.exec(['cloud-init', 'status', '--wait', '--long'], { timeoutMs });
  if (/^status: done$/m.test(status.stdout) && status.code === 0) return;
  const log = await host.exec(['tail', '-n', '200', '/var/log/cloud-init-output.log'], { timeoutMs: 10_000 });
  const lines = fleetxLines(log.stdout);
  const state = status.stdout.match(/^status: (.*)$/m)?.[1] ?? 'unknown';
  const detail = status.stdout.match(/^detail:\n?\s*(.*)$/m)?.[1]?.trim();
  const reason = lines.find((l) => l.startsWith('fleetx: ') && !/^fleetx: (installed|agent registered)/.test(l));
  throw failedError(
    `host ${host.name}: provisioning by cloud-init failed (status ${state}${detail ? `: ${detail}` : ''})${reason ? `: ${reason.slice('fleetx: '.length)}` : ''}`,
    [
      `cloud-init status --long:\n${status.stdout.trimEnd()}`,
      `fleetx's lines of /var/log/cloud-init-output.log in the host:\n${lines.join('\n') || log.stdout.split('\n').slice(-15).join('\n')}`,
    ].join('\n'),
  );
}
