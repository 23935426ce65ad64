/**
 * The values of a host's user-data, checked before anything is rendered.
 * One zod schema says what each value may be; everything user-data does with
 * a value follows from this shape (see README.md, "values").
 *
 * Text values are single lines without control characters, except PEM
 * blocks (certificates and keys), whose lines are checked one by one.
 * Metadata values may not contain "," because the agent's `--metadata k=v,k2=v2`
 * flag splits on it: a comma would add a metadata key.
 */
import { z } from 'zod';
import { invalidError } from '../errors/errors.js';

// C0, DEL, C1, and unpaired surrogates: none of them belong in a config value.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const line = z.string().refine((s) => !CONTROL.test(s), 'must be one line without control characters');
const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String).pipe(line);
const flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((s) => s === 'true')]);

export const META_KEY_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const metaValue = scalar.refine((s) => !s.includes(','), 'must not contain "," (the agent\'s --metadata flag splits on it)');

const url = (schemes: string[]) =>
  line.refine((s) => {
    try {
      return schemes.includes(new URL(s).protocol);
    } catch {
      return false;
    }
  }, `must be a ${schemes.map((p) => `${p}//`).join(' or ')} URL`);

const PEM_RE = /^-----BEGIN ([A-Z0-9 ]+)-----\n(?:[A-Za-z0-9+/=:, -]*\n)+-----END \1-----\n?$/;
const pem = z.string().refine((s) => s === '' || PEM_RE.test(s), 'must be one PEM block (-----BEGIN ...----- to -----END ...-----)');

export const SIDECARS = ['td-agent', 'dd-agent'] as const;
export type Sidecar = (typeof SIDECARS)[number];

export const provisionSchema = z
  .object({
    role: line.pipe(z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be lower-case letters, digits and "-"')),
    zone: metaValue.default(''),
    metadata: z.record(z.string().regex(META_KEY_RE, 'metadata keys are letters, digits, "_.-"'), metaValue).default({}),
    sidecars: z.array(z.enum(SIDECARS)).default([]),
    etcd: z
      .object({
        endpoints: z.array(url(['http:', 'https:'])).min(1, 'give at least one etcd endpoint'),
        username: line.default(''),
        keyPrefix: line.pipe(z.string().regex(/^\/[^\s,]*$/, 'must start with "/" and contain no blanks')).default('/fleetx'),
      })
      .strict(),
    fleetx: z
      .object({
        url: url(['https:', 'http:', 'file:']),
        sha256: line.pipe(z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits (sha256sum of the tarball)')),
      })
      .strict(),
    packages: z
      .object({
        /** The image already has Node, curl and the runtime (a prebuilt image; the sandbox's hosts): do not touch apt. */
        preinstalled: flag.default(false),
        nodeRepository: line.pipe(z.string().regex(/^https:\/\/[A-Za-z0-9.-]+(?::\d+)?(?:\/[A-Za-z0-9._~\/-]*)?$/, 'must be an https:// URL of letters, digits and "._~/-"')).default('https://deb.nodesource.com/node_20.x'),
        nodeVersion: line.pipe(z.string().regex(/^[0-9][A-Za-z0-9.+~-]*$/, 'must be a Debian package version')).default('20.20.2-1nodesource1'),
      })
      .strict()
      .default({ preinstalled: false, nodeRepository: 'https://deb.nodesource.com/node_20.x', nodeVersion: '20.20.2-1nodesource1' }),
    runtime: z
      .object({
        engine: z.enum(['podman', 'none']).default('none'),
        storageDriver: z.enum(['overlay', 'vfs']).default('overlay'),
        cgroups: z.enum(['enabled', 'disabled']).default('enabled'),
        network: z.enum(['bridge', 'host']).default('bridge'),
        /** false where the runtime may not make a session keyring: services in an nspawn host inherit a seccomp filter that refuses keyctl. */
        keyring: flag.default(true),
        registries: z.array(line.pipe(z.string().regex(/^[A-Za-z0-9.-]+(?::\d+)?$/, 'must be host or host:port'))).default(['docker.io']),
        insecureRegistries: z.array(line.pipe(z.string().regex(/^[A-Za-z0-9.-]+(?::\d+)?$/, 'must be host or host:port'))).default([]),
      })
      .strict()
      .default({ engine: 'none', storageDriver: 'overlay', cgroups: 'enabled', network: 'bridge', keyring: true, registries: ['docker.io'], insecureRegistries: [] }),
    /** Seconds the last step waits for the agent to register before failing the boot's provisioning. */
    registerTimeout: scalar.pipe(z.string().regex(/^[1-9][0-9]{0,3}$/, 'must be a whole number of seconds, 1 to 9999')).default('120'),
    secrets: z
      .object({
        etcdCa: pem.default(''),
        etcdCert: pem.default(''),
        etcdKey: pem.default(''),
        etcdPassword: line.default(''),
      })
      .strict()
      .default({ etcdCa: '', etcdCert: '', etcdKey: '', etcdPassword: '' }),
  })
  .strict();

export type ProvisionValues = z.infer<typeof provisionSchema>;

/**
 * Checks and completes raw values (role file, -f files, --set merged).
 * @throws FleetxError 'invalid' listing every problem with its value path.
 */
export function parseProvisionValues(raw: Record<string, unknown>, source: string): ProvisionValues {
  const r = provisionSchema.safeParse(raw);
  if (!r.success) {
    const list = r.error.issues.map((i) => retiredValue(i) ?? `${i.path.join('.') || '(top)'}: ${/received undefined$/.test(i.message) ? 'required, not set' : i.message}`);
    throw invalidError(`cloud-config ${source}: ${list.join('; ')}`, 'fix the values file or --set; see cloud-config/README.md');
  }
  const v = r.data;
  const problems = crossChecks(v);
  if (problems.length > 0) throw invalidError(`cloud-config ${source}: ${problems.join('; ')}`, 'see cloud-config/README.md');
  return v;
}

/**
 * Values fleetx no longer reads, and what replaced them: an old values file
 * is told what to do instead of "Unrecognized key" (and a secret in it is
 * not carried to hosts for nothing).
 */
const RETIRED: Record<string, string> = {
  'secrets.ddApiKey':
    'dd-agent takes its API key as a fleetx secret: remove it here and run `printf %s "$DD_API_KEY" | fleetx secret set dd-api-key` once per cluster (docs/SIDECARS.md)',
};

function retiredValue(issue: z.core.$ZodIssue): string | undefined {
  if (issue.code !== 'unrecognized_keys') return undefined;
  const retired = issue.keys.map((k) => [...issue.path, k].join('.')).filter((p) => Object.hasOwn(RETIRED, p));
  return retired.length > 0 ? retired.map((p) => `${p} is no longer used: ${RETIRED[p]}`).join('; ') : undefined;
}

/** Rules between values; the same ones the agent's connection settings enforce, caught at render time instead of at boot. */
export function crossChecks(v: ProvisionValues): string[] {
  const out: string[] = [];
  const secure = v.etcd.endpoints.map((e) => e.startsWith('https:'));
  const s = v.secrets;
  if (secure.some((x) => x !== secure[0])) out.push('etcd.endpoints mixes http and https');
  if (secure[0] && s.etcdCa === '') out.push('etcd.endpoints are https: secrets.etcdCa (the CA that signed etcd\'s certificate) is required');
  if (!secure[0] && (s.etcdCa || s.etcdCert || s.etcdKey)) out.push('TLS material is set but etcd.endpoints are plain http');
  if (Boolean(s.etcdCert) !== Boolean(s.etcdKey)) out.push('a client certificate needs both secrets.etcdCert and secrets.etcdKey');
  if (Boolean(v.etcd.username) !== Boolean(s.etcdPassword)) out.push('etcd authentication needs both etcd.username and secrets.etcdPassword');
  if (v.sidecars.length > 0 && v.runtime.engine === 'none') out.push(`sidecars ${v.sidecars.join(', ')} run in containers: set runtime.engine`);
  for (const k of ['role', 'zone', ...SIDECAR_KEYS]) if (Object.hasOwn(v.metadata, k)) out.push(`metadata.${k} is set by fleetx (from ${k === 'role' || k === 'zone' ? k : 'sidecars'})`);
  return out;
}

/** Metadata keys the sidecar units match (MachineMetadata= in units/td-agent.service.hbs, units/dd-agent.service.hbs). */
export const SIDECAR_METADATA: Record<Sidecar, [key: string, value: string]> = {
  'td-agent': ['logs', 'td-agent'],
  'dd-agent': ['metrics', 'dd-agent'],
};
const SIDECAR_KEYS = Object.values(SIDECAR_METADATA).map(([k]) => k);
