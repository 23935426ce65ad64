/**
 * The Jenkins deploy step, end to end: the pipeline's own shell steps
 * (ci/pipeline.sh, which the Jenkinsfile and the GitHub Actions example
 * call) run non-interactively with CI=true against the demo sandbox (real
 * hosts, HAProxy, the app service's containers). Each "build" is a process
 * group, as Jenkins runs a step, so stopping one is what Jenkins does:
 * SIGTERM to the group, SIGKILL 5 s later if anything is left. Each commit
 * deployed first goes through the image step: `podman build` of demo/web.mjs
 * answering with the commit as its version, pushed to the sandbox registry
 * as fleetx/demo-web:COMMIT; the deploy then sets `tag` to the commit.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/errors/errors.js';
import { DEMO_IMAGE, NODE_IMAGE, webContainerfile } from '../../src/images/demo-images.js';
import { REPO } from '../helpers/cli.js';
import { useDemo } from '../helpers/demo.js';

const demo = useDemo({ tag: 'ci', hosts: 3 });
let build = 0;
const nextCommit = () => `c0ffee${String(++build).padStart(6, '0')}`;

interface Build {
  tag: string;
  reports: string;
  out(): string;
  /** exit code, or 128+n when killed by a signal */
  done: Promise<number>;
  /** SIGTERM to the build's process group; SIGKILL after 5 s if it is still there */
  stop(): Promise<number>;
}

/** One CI build running one pipeline step: its own process group, its own report dir, a fresh commit. */
function pipeline(step: 'image' | 'plan' | 'deploy', args: string[] = [], commit = nextCommit(), extraEnv: Record<string, string> = {}): Build {
  const reports = mkdtempSync(join(tmpdir(), `fleetx-ci-${step}-`));
  const child = spawn('bash', [`${REPO}ci/pipeline.sh`, step, ...args], {
    cwd: REPO,
    detached: true, // a process group of its own, like a Jenkins sh step
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      ...demo.sb.env,
      CI: 'true',
      GIT_COMMIT: commit,
      BUILD_TAG: `jenkins-app-${Number(commit.slice(6))}`, // the build that made the commit (c0ffee000007: build 7)
      FLEETX_USER: 'jenkins',
      FLEETX_SERVICE: 'app',
      FLEETX_TAG_VALUE: 'tag',
      // declarative, as a pipeline deploys from its checkout: every build renders the service file plus its own values
      FLEETX_SERVICE_FILE: demo.serviceFile,
      FLEETX_REPORT_DIR: reports,
      FLEETX_TIMEOUT: '3m',
      ...extraEnv,
    },
  });
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const done = new Promise<number>((resolve) => child.on('close', (code, sig) => resolve(code ?? 128 + (sig === 'SIGKILL' ? 9 : 15))));
  return {
    tag: commit.slice(0, 12),
    reports,
    out: () => log,
    done,
    async stop() {
      process.kill(-child.pid!, 'SIGTERM');
      const kill = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5_000);
      const code = await done;
      clearTimeout(kill);
      return code;
    },
  };
}

/**
 * The image step for one commit, as the Jenkinsfile's Image stage runs it:
 * the machine's podman, pointed at the sandbox's image store (it holds the
 * node base image; vfs, cgroupfs, file events as src/images/podman.ts) by
 * CONTAINERS_STORAGE_CONF / CONTAINERS_CONF, pushing to the sandbox
 * registry over plain HTTP.
 */
async function image(commit: string, o: { unhealthy?: boolean } = {}): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetx-ci-image-'));
  const images = join(demo.sb.stateDir, 'images');
  writeFileSync(join(dir, 'storage.conf'), `[storage]\ndriver = "vfs"\nrunroot = "${images}/run"\ngraphroot = "${images}/storage"\n`);
  writeFileSync(join(dir, 'containers.conf'), '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n');
  copyFileSync(`${REPO}demo/web.mjs`, join(dir, 'web.mjs'));
  const args = ['--version', commit, ...(o.unhealthy ? ['--unhealthy'] : [])];
  writeFileSync(join(dir, 'Containerfile'), webContainerfile(`${demo.registry}/${NODE_IMAGE}:20`, commit, args));
  const b = pipeline('image', [], commit, {
    FLEETX_REGISTRY: demo.registry,
    FLEETX_IMAGE: DEMO_IMAGE,
    FLEETX_REGISTRY_TLS_VERIFY: 'false',
    FLEETX_CONTAINERFILE: join(dir, 'Containerfile'),
    FLEETX_BUILD_CONTEXT: dir,
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
    CONTAINERS_CONF: join(dir, 'containers.conf'),
  });
  expect(await b.done, b.out()).toBe(0);
  expect(b.out()).toContain(`image: pushed ${demo.registry}/${DEMO_IMAGE}:${commit.slice(0, 12)}`);
}

const ESC = /\x1b/;
const report = (b: Build) => JSON.parse(readFileSync(join(b.reports, 'fleetx-report.json'), 'utf8'));
const junit = (b: Build) => readFileSync(join(b.reports, 'fleetx-junit.xml'), 'utf8');

async function until(what: string, fn: () => boolean, ms = 60_000): Promise<void> {
  await demo.sb.until(what, async () => (fn() ? true : undefined), ms, 100);
}

describe('the pipeline steps (ci/pipeline.sh) against the demo', () => {
  it('plan exits 2 with changes; a deploy of a good commit exits 0 with a clean log and a JUnit report; plan then exits 0', async () => {
    await demo.allInService();
    const commit = 'c0ffee100001';
    await image(commit);
    const plan = pipeline('plan', [], commit);
    expect(await plan.done, plan.out()).toBe(2);
    expect(plan.out()).toContain('Instances to restart (3)');
    expect(existsSync(join(plan.reports, 'plan.json'))).toBe(true);

    const deploy = pipeline('deploy', [], commit);
    expect(await deploy.done, deploy.out()).toBe(0);
    expect(deploy.out()).not.toMatch(ESC);
    for (const line of deploy.out().trim().split('\n')) expect(line).toMatch(/^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ /);
    expect(report(deploy)).toMatchObject({ outcome: 'succeeded', exitCode: 0, rollout: { holder: { build: expect.stringMatching(/^jenkins-app-/) } } });
    const xml = junit(deploy);
    expect(xml).toContain('tests="4" failures="0" errors="0" skipped="0"');
    for (const u of demo.units) expect(xml).toContain(`name="${u}"`);
    expect(new Set(await demo.sampleVersions(20))).toEqual(new Set([commit]));

    const again = pipeline('plan', [], commit);
    expect(await again.done, again.out()).toBe(0);
    expect(again.out()).toContain('app is already at revision');
  }, 240_000);

  it('a deploy whose health check fails exits 7 (reverted); the JUnit report names the instance and why', async () => {
    const before = new Set(await demo.sampleVersions(10));
    const commit = nextCommit();
    await image(commit, { unhealthy: true });
    const deploy = pipeline('deploy', [], commit);
    expect(await deploy.done, deploy.out()).toBe(EXIT.reverted);
    expect(deploy.out()).not.toMatch(ESC);
    expect(report(deploy)).toMatchObject({ outcome: 'reverted', exitCode: 7, rollout: { state: 'failed' } });
    expect(junit(deploy)).toMatch(/<failure type="instance-failed" message="[^"]+"/);
    await demo.allInService();
    expect(new Set(await demo.sampleVersions(20))).toEqual(before);
  }, 240_000);

  it('a build stopped mid-rollout (SIGTERM to its group, SIGKILL after 5 s) leaves a consistent cluster; the next build deploys', async () => {
    const [c1, c2] = [nextCommit(), nextCommit()];
    await image(c1);
    await image(c2);
    const stopped = pipeline('deploy', [], c1);
    await until('an instance in flight', () => /app@\d\.service (stopping|starting|checking)/.test(stopped.out()));
    const code = await stopped.stop();
    expect([143, 137]).toContain(code);
    if (code === 143) {
      expect(stopped.out()).toContain('build stopped by SIGTERM (--on-abort=abort): abort requested');
      expect(report(stopped)).toMatchObject({ outcome: 'interrupted', interrupted: { signal: 'SIGTERM', onAbort: 'abort' } });
    }

    // the next build: it waits for the aborted rollout if that is still ending (saying whose it was), then deploys
    const next = pipeline('deploy', [], c2);
    expect(await next.done, next.out()).toBe(0);
    if (next.out().includes('waiting for the aborted')) {
      expect(next.out()).toMatch(/waiting for the aborted deploy to revision \d+ of app by jenkins@\S+ \(jenkins-app-\d+\)/);
    }
    const history = await demo.history();
    expect(history.at(-2)).toMatchObject({ state: 'aborted', holder: { build: `jenkins-app-${build - 1}` } });
    expect(history.at(-1)).toMatchObject({ state: 'succeeded', holder: { build: `jenkins-app-${build}` } });
    await demo.allInService();
    expect(new Set(await demo.sampleVersions(20))).toEqual(new Set([next.tag]));
  }, 300_000);

  it('two builds started at the same moment: one deploys, the other exits 5 naming the first', async () => {
    const [ca, cb] = [nextCommit(), nextCommit()];
    await image(ca);
    await image(cb);
    const [a, b] = [pipeline('deploy', [], ca), pipeline('deploy', [], cb)];
    const codes = await Promise.all([a.done, b.done]);
    expect([...codes].sort()).toEqual([0, EXIT.conflict]);
    const [winner, loser] = codes[0] === 0 ? [a, b] : [b, a];
    const first = report(winner).rollout.holder.build as string;
    expect(loser.out()).toContain(`a rollout of app is already running: deploy to revision`);
    expect(loser.out()).toContain(`by jenkins@`);
    expect(loser.out()).toContain(`(${first})`);
    expect(report(loser)).toMatchObject({ outcome: 'locked', exitCode: 5, error: { lock: { holder: { build: first } } } });
    expect(new Set(await demo.sampleVersions(20))).toEqual(new Set([winner.tag]));
  }, 240_000);
});
