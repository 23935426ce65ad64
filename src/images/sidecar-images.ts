/**
 * STAND-IN images of the two sidecars, under the vendors' image names, built
 * here from what Debian ships (the real fluent/fluentd and datadog/agent
 * images cannot be downloaded in the sandbox):
 *
 *   REGISTRY/fluent/fluentd:v1.16-debian-1   node + stand-ins/fluentd.mjs + journalctl (its systemd input)
 *   REGISTRY/datadog/agent:7                 node + stand-ins/datadog-agent.mjs (the OpenMetrics check)
 *
 * Both say what they are: a `fleetx.stand-in=true` label, an image title
 * and description saying STAND-IN, and every log line they print. They are
 * run exactly as the vendors document their images (see units/README.md),
 * so the units are the ones production hosts run with the real images.
 * Built FROM the demo's node base (demo-images.ts) in the same store, and
 * only when an input changed or the registry lacks a tag.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasTag } from './demo-images.js';
import { podman, type PodmanStore } from './podman.js';
import { writeRootfs } from './rootfs.js';

/** The vendors' repositories and the tags the units default to. */
export const FLUENTD_IMAGE = { repo: 'fluent/fluentd', tag: 'v1.16-debian-1' } as const;
export const DATADOG_IMAGE = { repo: 'datadog/agent', tag: '7' } as const;
/** uid and gid of `fluent` in fluentd's Debian-based image; the unit makes the host's buffer dir theirs. */
export const FLUENT_UID = 999;

const STAND_IN = 'fleetx sandbox STAND-IN';
const label = (title: string, what: string) =>
  `LABEL fleetx.stand-in="true" org.opencontainers.image.title="${title} (${STAND_IN})" org.opencontainers.image.description="${what}"`;

/** Pure: the fluentd stand-in's Containerfile. */
export function fluentdContainerfile(base: string): string {
  return [
    `FROM ${base}`,
    '# journalctl and its libraries: the stand-in systemd input reads the journal with it',
    'ADD journalctl.tar /',
    'COPY passwd /etc/passwd',
    'COPY group /etc/group',
    'COPY fluentd.mjs /fluentd/stand-in/fluentd.mjs',
    'COPY fluent.conf /fluentd/etc/fluent.conf',
    'ENV FLUENTD_CONF=fluent.conf USER=fluent',
    'USER fluent',
    'ENTRYPOINT ["/usr/bin/node", "/fluentd/stand-in/fluentd.mjs"]',
    label('fluentd', 'NOT fluentd: a Node script that reads /fluentd/etc/$FLUENTD_CONF (systemd input, file/stdout output) as user fluent; see src/images/README.md'),
    '',
  ].join('\n');
}

/** Pure: the Datadog agent stand-in's Containerfile. */
export function datadogContainerfile(base: string): string {
  return [
    `FROM ${base}`,
    'COPY datadog-agent.mjs /opt/datadog-agent/stand-in/agent.mjs',
    'COPY openmetrics.conf.yaml /etc/datadog-agent/conf.d/openmetrics.d/conf.yaml',
    'ENTRYPOINT ["/usr/bin/node", "/opt/datadog-agent/stand-in/agent.mjs"]',
    label('datadog agent', 'NOT the Datadog agent and sends nothing: a Node script running the OpenMetrics check of conf.d/openmetrics.d/conf.yaml and printing what it scraped; see src/images/README.md'),
    '',
  ].join('\n');
}

export interface SidecarImagesOptions {
  /** STATEDIR/images (the store that holds the node base) */
  dir: string;
  registry: string;
  /** the checkout (its stand-ins/ folder) */
  repoRoot: string;
  /** REGISTRY/fleetx/node:20, already built and pushed */
  base: string;
  progress?: (line: string) => void;
}

/**
 * Builds and pushes both stand-ins unless the registry has this exact build.
 * Returns their references. @throws FleetxError 'failed' with podman's message.
 */
export async function ensureSidecarImages(o: SidecarImagesOptions): Promise<{ fluentd: string; datadog: string }> {
  const store: PodmanStore = { root: join(o.dir, 'storage'), runroot: join(o.dir, 'run') };
  const src = join(o.repoRoot, 'stand-ins');
  const ctx = join(o.dir, 'sidecars');
  const refs = { fluentd: `${o.registry}/${FLUENTD_IMAGE.repo}:${FLUENTD_IMAGE.tag}`, datadog: `${o.registry}/${DATADOG_IMAGE.repo}:${DATADOG_IMAGE.tag}` };
  const inputs = ['fluentd.mjs', 'fluent.conf', 'datadog-agent.mjs', 'openmetrics.d/conf.yaml'].map((f) => readFileSync(join(src, f)));
  const journalctl = statSync('/usr/bin/journalctl');
  const stamp = createHash('sha256')
    .update(`${o.base} ${journalctl.size} ${journalctl.mtimeMs}\n`)
    .update(fluentdContainerfile(o.base) + datadogContainerfile(o.base));
  for (const b of inputs) stamp.update(b);
  const digest = stamp.digest('hex');
  const stampFile = join(o.dir, 'sidecars.stamp');
  let built = '';
  try {
    built = readFileSync(stampFile, 'utf8').trim();
  } catch {
    // never built
  }
  if (built === digest && (await hasTag(o.registry, FLUENTD_IMAGE.repo, FLUENTD_IMAGE.tag)) && (await hasTag(o.registry, DATADOG_IMAGE.repo, DATADOG_IMAGE.tag))) return refs;

  const say = o.progress ?? (() => undefined);
  say(`building the sidecar stand-ins ${refs.fluentd} and ${refs.datadog} (not the vendors' images)`);
  mkdirSync(ctx, { recursive: true });
  await writeRootfs(join(ctx, 'journalctl.tar'), ['/usr/bin/journalctl']);
  writeFileSync(join(ctx, 'passwd'), `root:x:0:0:root:/root:/usr/sbin/nologin\nfluent:x:${FLUENT_UID}:${FLUENT_UID}:fluent:/home/fluent:/usr/sbin/nologin\n`);
  writeFileSync(join(ctx, 'group'), `root:x:0:\nfluent:x:${FLUENT_UID}:\n`);
  copyFileSync(join(src, 'fluentd.mjs'), join(ctx, 'fluentd.mjs'));
  copyFileSync(join(src, 'fluent.conf'), join(ctx, 'fluent.conf'));
  copyFileSync(join(src, 'datadog-agent.mjs'), join(ctx, 'datadog-agent.mjs'));
  copyFileSync(join(src, 'openmetrics.d', 'conf.yaml'), join(ctx, 'openmetrics.conf.yaml'));
  writeFileSync(join(ctx, 'Containerfile.fluentd'), fluentdContainerfile(o.base));
  writeFileSync(join(ctx, 'Containerfile.datadog'), datadogContainerfile(o.base));
  await podman(store, ['build', '--pull=never', '--quiet', '-t', refs.fluentd, '-f', join(ctx, 'Containerfile.fluentd'), ctx]);
  await podman(store, ['build', '--pull=never', '--quiet', '-t', refs.datadog, '-f', join(ctx, 'Containerfile.datadog'), ctx]);
  for (const ref of Object.values(refs)) await podman(store, ['push', '--tls-verify=false', '--quiet', ref]);
  writeFileSync(stampFile, `${digest}\n`);
  return refs;
}
