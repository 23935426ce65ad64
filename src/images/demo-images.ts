/**
 * The demo app's images, built here from what Debian ships and pushed to
 * the sandbox registry (no image is downloaded):
 *
 *   REGISTRY/fleetx/node:20         base: the machine's node and its libraries (podman import)
 *   REGISTRY/fleetx/demo-web:v1     + demo/web.mjs, answers {"version":"v1"}
 *   REGISTRY/fleetx/demo-web:v2     the same app as version v2
 *   REGISTRY/fleetx/demo-web:unhealthy   /healthz fails: a deploy to it reverts
 *
 * The tags share the base layer, so a host pulls node once and each tag
 * adds a layer of a few kilobytes. Rebuilt only when an input changed (the
 * node binary, web.mjs, these recipes) or the registry lacks a tag.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registryAnswers } from '../sandbox/registry.js';
import { podman, type PodmanStore } from './podman.js';
import { writeNodeRootfs } from './rootfs.js';

export const DEMO_IMAGE = 'fleetx/demo-web';
export const NODE_IMAGE = 'fleetx/node';
export const DEMO_TAGS = { v1: ['--version', 'v1'], v2: ['--version', 'v2'], unhealthy: ['--version', 'unhealthy', '--unhealthy'] } as const;
export type DemoTag = keyof typeof DEMO_TAGS;
/** ms web.mjs waits before it listens: a real app's start-up (the benchmark counts it as unavoidable). */
export const DEMO_START_DELAY_MS = 1500;

/** Pure: the Containerfile of one demo tag, FROM the node base image. */
export function demoContainerfile(base: string, tag: DemoTag): string {
  return webContainerfile(base, tag, DEMO_TAGS[tag]);
}

/**
 * Pure: a Containerfile of demo/web.mjs (copied into the build context as
 * web.mjs) on the node base image, started with `args` (--version …);
 * `label` goes into the image's version label. The CI pipeline's e2e
 * builds one per commit with it (ci/pipeline.sh image).
 */
export function webContainerfile(base: string, label: string, args: readonly string[]): string {
  const cmd = ['--port', '8080', '--start-delay', String(DEMO_START_DELAY_MS), ...args];
  return [
    `FROM ${base}`,
    'COPY web.mjs /app/web.mjs',
    'ENTRYPOINT ["/usr/bin/node", "/app/web.mjs"]',
    `CMD ${JSON.stringify(cmd)}`,
    `LABEL org.opencontainers.image.title="fleetx demo web" org.opencontainers.image.version="${label}"`,
    '',
  ].join('\n');
}

export interface DemoImagesOptions {
  /** STATEDIR/images */
  dir: string;
  /** host:port of the sandbox registry */
  registry: string;
  /** the checkout's demo/web.mjs */
  script: string;
  node?: string;
  progress?: (line: string) => void;
}

const paths = (dir: string) => ({
  store: { root: join(dir, 'storage'), runroot: join(dir, 'run') } satisfies PodmanStore,
  context: join(dir, 'context'),
  rootfs: join(dir, 'node-rootfs.tar'),
  stamp: join(dir, 'stamp'),
});

/** Whether the registry has REPO:TAG (a HEAD of its manifest). */
export async function hasTag(registry: string, repo: string, tag: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
      signal: AbortSignal.timeout(2_000),
    });
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Builds and pushes the demo images unless the registry already has this
 * exact build. Returns the image references pushed (or found).
 * @throws FleetxError 'failed' with podman's message.
 */
export async function ensureDemoImages(o: DemoImagesOptions): Promise<Record<DemoTag | 'base', string>> {
  const say = o.progress ?? (() => undefined);
  const node = o.node ?? '/usr/bin/node';
  const p = paths(o.dir);
  const repo = `${o.registry}/${DEMO_IMAGE}`;
  const base = `${o.registry}/${NODE_IMAGE}:20`;
  const refs = Object.fromEntries(Object.keys(DEMO_TAGS).map((t) => [t, `${repo}:${t}`])) as Record<DemoTag, string>;
  const nodeStat = statSync(node);
  const script = readFileSync(o.script);
  const stamp = createHash('sha256')
    .update(`${node} ${nodeStat.size} ${nodeStat.mtimeMs}\n`)
    .update(script)
    .update(Object.keys(DEMO_TAGS).map((t) => demoContainerfile(NODE_IMAGE, t as DemoTag)).join('\n'))
    .digest('hex');
  const built = (() => {
    try {
      return readFileSync(p.stamp, 'utf8').trim();
    } catch {
      return '';
    }
  })();
  if (built === stamp && (await registryAnswers(o.registry))) {
    const present = await Promise.all(Object.keys(DEMO_TAGS).map((t) => hasTag(o.registry, DEMO_IMAGE, t)));
    if (present.every(Boolean)) return { ...refs, base };
  }

  mkdirSync(p.context, { recursive: true });
  say(`building ${base} from this machine's ${node}`);
  await writeNodeRootfs(p.rootfs, node);
  await podman(p.store, ['import', '--change', 'ENTRYPOINT ["/usr/bin/node"]', p.rootfs, base]);
  copyFileSync(o.script, join(p.context, 'web.mjs'));
  for (const tag of Object.keys(DEMO_TAGS) as DemoTag[]) {
    const file = join(p.context, `Containerfile.${tag}`);
    writeFileSync(file, demoContainerfile(base, tag));
    await podman(p.store, ['build', '--pull=never', '--quiet', '-t', refs[tag], '-f', file, p.context]);
  }
  say(`pushing ${base} and ${repo}:{${Object.keys(DEMO_TAGS).join(',')}}`);
  await podman(p.store, ['push', '--tls-verify=false', '--quiet', base]);
  for (const ref of Object.values(refs)) await podman(p.store, ['push', '--tls-verify=false', '--quiet', ref]);
  writeFileSync(p.stamp, `${stamp}\n`);
  return { ...refs, base };
}
