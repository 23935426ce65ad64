/**
 * Pure: from checked values to what a host's user-data writes: the agent's
 * unit (rendered from units/fleetx-agent.service.hbs, the unit users get),
 * its environment file, TLS files, the container runtime's
 * settings. Every file's text is built here with the quoting of its own
 * format; the cloud-config template only places these strings.
 */
import { renderTemplate } from '../template/render.js';
import { SIDECAR_METADATA, type ProvisionValues } from './values.js';

/** Where things go on a host. Secrets are 0600 under SECRETS (the units' own convention). */
export const HOST_PATHS = {
  secrets: '/etc/fleetx/secrets',
  etcdCa: '/etc/fleetx/secrets/etcd-ca.pem',
  etcdCert: '/etc/fleetx/secrets/etcd-cert.pem',
  etcdKey: '/etc/fleetx/secrets/etcd-key.pem',
  agentEnv: '/etc/fleetx/secrets/fleetx-agent.env',
  agentUnit: '/etc/systemd/system/fleetx-agent.service',
  fleetxHome: '/opt/fleetx',
  node: '/usr/bin/node',
} as const;

/** What the template sees besides the values: `files.*` is public, `secretFiles.*` may only be written to 0600 files. */
export interface Derived {
  metadata: Record<string, string>;
  files: {
    agentUnit: string;
    containersConf: string;
    storageConf: string;
    registriesConf: string;
    /** The apt source line of NodeSource's repository (cloud-init fills in $KEY_FILE). */
    aptNodeSource: string;
  };
  secretFiles: {
    agentEnv: string;
  };
}

/** Throws FleetxError 'invalid' when the agent template refuses a value. */
export function derive(v: ProvisionValues, agentTemplate: string): Derived {
  const metadata = hostMetadata(v);
  return {
    metadata,
    files: {
      agentUnit: agentUnitText(v, metadata, agentTemplate),
      containersConf: containersConf(v.runtime),
      storageConf: storageConf(v.runtime),
      registriesConf: registriesConf(v.runtime),
      aptNodeSource: `deb [signed-by=$KEY_FILE] ${v.packages.nodeRepository} nodistro main`,
    },
    secretFiles: {
      agentEnv: envFile({
        FLEETX_ETCD_KEY_PREFIX: v.etcd.keyPrefix,
        FLEETX_ETCD_USERNAME: v.etcd.username,
        FLEETX_ETCD_PASSWORD: v.secrets.etcdPassword,
      }),
    },
  };
}

/** role, zone, one key per sidecar (what td-agent / dd-agent's MachineMetadata= match), then the values' own metadata. */
export function hostMetadata(v: ProvisionValues): Record<string, string> {
  const out: Record<string, string> = { role: v.role };
  if (v.zone !== '') out.zone = v.zone;
  for (const s of v.sidecars) {
    const [key, value] = SIDECAR_METADATA[s];
    out[key] = value;
  }
  return { ...out, ...v.metadata };
}

function agentUnitText(v: ProvisionValues, metadata: Record<string, string>, source: string): string {
  const tls = v.secrets.etcdCa !== '';
  const client = v.secrets.etcdCert !== '';
  return renderTemplate(
    source,
    {
      node: HOST_PATHS.node,
      fleetxBin: `${HOST_PATHS.fleetxHome}/bin/fleetx.mjs`,
      endpoints: v.etcd.endpoints,
      metadata,
      etcdCaFile: tls ? HOST_PATHS.etcdCa : '',
      etcdCertFile: client ? HOST_PATHS.etcdCert : '',
      etcdKeyFile: client ? HOST_PATHS.etcdKey : '',
    },
    { templateName: 'fleetx-agent.service' },
  ).text;
}

/**
 * A systemd EnvironmentFile: `KEY="value"`, where inside double quotes a
 * backslash escapes exactly `" \ $ \``. Values are single lines (values.ts),
 * so no quoting state can span lines. Empty values are left out.
 */
export function envFile(vars: Record<string, string>): string {
  const lines = Object.entries(vars)
    .filter(([, value]) => value !== '')
    .map(([k, value]) => `${k}="${value.replace(/["\\$`]/g, (c) => `\\${c}`)}"`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** A TOML basic string. JSON's escapes are TOML's for text without control characters (values.ts refuses those). */
const toml = (s: string) => JSON.stringify(s);

type Runtime = ProvisionValues['runtime'];

/** podman's containers.conf: only the settings the values choose; podman's defaults otherwise. */
export function containersConf(r: Runtime): string {
  // journald: the log path the td-agent sidecar reads (docs/SIDECARS.md)
  const containers = [`init = true`, `log_driver = ${toml('journald')}`];
  if (r.cgroups === 'disabled') containers.push(`cgroups = ${toml('disabled')}`);
  if (r.network === 'host') containers.push(`netns = ${toml('host')}`);
  if (!r.keyring) containers.push('keyring = false');
  const engine = [`runtime = ${toml('crun')}`];
  if (r.cgroups === 'disabled') engine.push(`cgroup_manager = ${toml('cgroupfs')}`, `events_logger = ${toml('journald')}`);
  return `# written by fleetx cloud-config (runtime.* values)\n[containers]\n${containers.join('\n')}\n\n[engine]\n${engine.join('\n')}\n`;
}

export function storageConf(r: Runtime): string {
  return [
    '# written by fleetx cloud-config (runtime.storageDriver)',
    '[storage]',
    `driver = ${toml(r.storageDriver)}`,
    `runroot = ${toml('/run/containers/storage')}`,
    `graphroot = ${toml('/var/lib/containers/storage')}`,
    '',
  ].join('\n');
}

export function registriesConf(r: Runtime): string {
  const lines = ['# written by fleetx cloud-config (runtime.registries, runtime.insecureRegistries)'];
  lines.push(`unqualified-search-registries = [${r.registries.map(toml).join(', ')}]`);
  for (const reg of r.insecureRegistries) lines.push('', '[[registry]]', `location = ${toml(reg)}`, 'insecure = true');
  return `${lines.join('\n')}\n`;
}
