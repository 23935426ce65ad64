/**
 * npm run bench:prepull — how long each instance is out of the load
 * balancer during a deploy to an image whose pull is slow. A throw-away
 * sandbox with the demo (own state dir, bridge, subnet); a tag `big` of the
 * demo image with an extra layer of incompressible bytes (--mb, default
 * 300) pushed to its registry; then `fleetx deploy app --set tag=big -o json`
 * under light load. Per instance, from the rollout's phase events:
 *
 *   pull ahead  = pulling -> leaving            (the host pulls while the instance serves)
 *   out of LB   = leaving -> done               (held out until back in)
 *   starting    = starting -> checking          (rm, the unit's own pull, podman run)
 *
 * Without pre-pull (a checkout before it), `pulling` does not exist and the
 * pull happens in `starting`, inside the window.
 *
 *   npm run bench:prepull [-- --mb 300]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { demoDown, demoUp } from '../src/demo/demo.js';
import { DEMO_IMAGE, NODE_IMAGE, webContainerfile } from '../src/images/demo-images.js';
import { podman } from '../src/images/podman.js';
import { startLoad } from '../src/loadgen/load.js';
import { sandboxDown, sandboxUp } from '../src/sandbox/sandbox.js';

const REPO = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const { values: args } = parseArgs({ options: { mb: { type: 'string', default: '300' } } });
const tag = randomBytes(2).toString('hex');
const stateDir = `/var/tmp/fleetx-bench-prepull-${tag}`;
const net = { bridge: `fxbp${tag}`, subnet: `10.213.${100 + (randomBytes(1)[0]! % 50)}`, hostPrefix: `bp${tag.slice(0, 2)}` };
const endpoint = `http://${net.subnet}.1:2379`;

type Event = { type: string; unit: string; phase: string; time: string };

function fleetx(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${REPO}/bin/fleetx.mjs`, ...argv], {
      cwd: REPO,
      env: { PATH: process.env.PATH, FLEETX_ENDPOINT: endpoint, FLEETX_USER: 'bench' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), 900_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, err });
    });
  });
}

/** The demo image plus `mb` MB of random bytes, as REGISTRY/fleetx/demo-web:big. */
async function pushBig(registry: string, mb: number): Promise<string> {
  const dir = join(stateDir, 'images', 'big');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(REPO, 'demo', 'web.mjs'), join(dir, 'web.mjs'));
  const blob = Buffer.alloc(mb * 1024 * 1024);
  for (let i = 0; i < blob.length; i += 65_536) randomBytes(Math.min(65_536, blob.length - i)).copy(blob, i);
  writeFileSync(join(dir, 'blob'), blob);
  const file = webContainerfile(`${registry}/${NODE_IMAGE}:20`, 'big', ['--version', 'big']).replace('COPY web.mjs', 'COPY blob /app/blob\nCOPY web.mjs');
  writeFileSync(join(dir, 'Containerfile'), file);
  const store = { root: join(stateDir, 'images', 'storage'), runroot: join(stateDir, 'images', 'run') };
  const ref = `${registry}/${DEMO_IMAGE}:big`;
  await podman(store, ['build', '--pull=never', '--quiet', '-t', ref, '-f', join(dir, 'Containerfile'), dir], 900_000);
  await podman(store, ['push', '--tls-verify=false', '--quiet', ref], 900_000);
  return ref;
}

const secs = (a?: Event, b?: Event) => (a && b ? ((Date.parse(b.time) - Date.parse(a.time)) / 1000).toFixed(2) : '-');

async function main(): Promise<number> {
  const mb = Number(args.mb);
  const sandbox = await sandboxUp({ hosts: 3, stateDir, repoRoot: REPO, ...net });
  const demo = await demoUp(sandbox, { repoRoot: REPO, timeoutMs: 180_000 });
  const ref = await pushBig(sandbox.registry!.address, mb);
  console.log(`pushed ${ref} (+${mb} MB layer); deploying it under load through ${demo.lbUrl}`);
  const load = startLoad({ url: demo.lbUrl!, concurrency: 4, maxRequests: 2_000_000, maxDurationMs: 900_000, timeoutMs: 5_000 });
  const t0 = Date.now();
  const r = await fleetx(['deploy', 'app', '--set', 'tag=big', '-o', 'json']);
  const wall = (Date.now() - t0) / 1000;
  const report = await load.stop();
  if (r.code !== 0) throw new Error(`deploy exited ${r.code}: ${r.err}`);
  const events = r.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Event).filter((e) => e.type === 'instance');
  console.log(`deploy to big: ${wall.toFixed(1)} s; load ${report.requests} requests, ${report.failures} failed`);
  console.log('  unit            pull ahead   out of LB   starting (in the window)');
  for (const unit of [...new Set(events.map((e) => e.unit))].sort()) {
    const at = (p: string) => events.find((e) => e.unit === unit && e.phase === p);
    console.log(`  ${unit.padEnd(15)} ${secs(at('pulling'), at('leaving')).padStart(10)} ${secs(at('leaving'), at('done')).padStart(11)} ${secs(at('starting'), at('checking')).padStart(10)}`);
  }
  return report.failures > 0 ? 1 : 0;
}

main()
  .then((code) => (process.exitCode = code))
  .catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
  })
  .finally(async () => {
    await demoDown(stateDir).catch(() => undefined);
    await sandboxDown(stateDir).catch(() => undefined);
  });
