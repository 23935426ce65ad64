/**
 * Extra tags of the demo app for the matrix: versions to deploy one after
 * another, a version that goes bad after joining, one whose health check
 * flaps, and a second service's image on another port. Built like the
 * demo's own tags (webContainerfile on the node base image the sandbox
 * built) with podman on the sandbox's image store, and pushed to its
 * registry. web.mjs's flags: a later `--port` wins over the recipe's.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_IMAGE, NODE_IMAGE, webContainerfile } from '../../../src/images/demo-images.js';
import { podman } from '../../../src/images/podman.js';
import type { DemoFixture } from '../../helpers/demo.js';
import { REPO } from '../../helpers/cli.js';

/** tag -> web.mjs arguments */
export const MATRIX_TAGS: Record<string, string[]> = {
  v3: ['--version', 'v3'],
  v4: ['--version', 'v4'],
  v5: ['--version', 'v5'],
  // healthy long enough to join (minHealthy 1 s, threshold 2 at 500 ms), then /healthz fails for good
  'bad-after': ['--version', 'bad-after', '--unhealthy-after', '4000'],
  // /healthz alternates every 1.5 s: two failures in a row (failureThreshold 2 at 500 ms) take it out
  flap: ['--version', 'flap', '--flap', '1500'],
  api: ['--version', 'api', '--port', '8081'],
};

/** Builds and pushes MATRIX_TAGS to the demo's registry; returns the repository (REGISTRY/fleetx/demo-web). */
export async function pushMatrixTags(demo: DemoFixture): Promise<string> {
  const images = join(demo.sb.stateDir, 'images');
  const store = { root: join(images, 'storage'), runroot: join(images, 'run') };
  const context = join(images, 'matrix');
  mkdirSync(context, { recursive: true });
  copyFileSync(join(REPO, 'demo', 'web.mjs'), join(context, 'web.mjs'));
  const repo = `${demo.registry}/${DEMO_IMAGE}`;
  for (const [tag, args] of Object.entries(MATRIX_TAGS)) {
    const file = join(context, `Containerfile.${tag}`);
    writeFileSync(file, webContainerfile(`${demo.registry}/${NODE_IMAGE}:20`, tag, args));
    await podman(store, ['build', '--pull=never', '--quiet', '-t', `${repo}:${tag}`, '-f', file, context]);
    await podman(store, ['push', '--tls-verify=false', '--quiet', `${repo}:${tag}`]);
  }
  return repo;
}
