/**
 * The Jenkins deploy step, end to end: the pipeline's own shell steps
 * (ci/pipeline.sh, which the Jenkinsfile and the GitHub Actions example
 * call) run non-interactively with CI=true against the demo sandbox (real
 * hosts, HAProxy, the web service). Each "build" is a process group, as
 * Jenkins runs a step, so stopping one is what Jenkins does: SIGTERM to the
 * group, SIGKILL 5 s later if anything is left.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/errors/errors.js';
import { REPO } from '../helpers/cli.js';
import { useDemo } from '../helpers/demo.js';

const demo = useDemo({ tag: 'ci', hosts: 3 });
let build = 0;

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
function pipeline(step: 'plan' | 'deploy', args: string[] = [], commit = `c0ffee${String(++build).padStart(6, '0')}`): Build {
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
      BUILD_TAG: `jenkins-web-${build}`,
      FLEETX_USER: 'jenkins',
      FLEETX_SERVICE: 'web',
      // declarative, as a pipeline deploys from its checkout: every build renders the service file plus its own values
      FLEETX_SERVICE_FILE: demo.serviceFile,
      FLEETX_REPORT_DIR: reports,
      FLEETX_TIMEOUT: '3m',
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
    const plan = pipeline('plan', [], commit);
    expect(await plan.done, plan.out()).toBe(2);
    expect(plan.out()).toContain('Instances to restart (3)');
    expect(existsSync(join(plan.reports, 'plan.json'))).toBe(true);

    const deploy = pipeline('deploy', [], commit);
    expect(await deploy.done, deploy.out()).toBe(0);
    expect(deploy.out()).not.toMatch(ESC);
    for (const line of deploy.out().trim().split('\n')) expect(line).toMatch(/^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ /);
    expect(report(deploy)).toMatchObject({ outcome: 'succeeded', exitCode: 0, rollout: { holder: { build: expect.stringMatching(/^jenkins-web-/) } } });
    const xml = junit(deploy);
    expect(xml).toContain('tests="4" failures="0" errors="0" skipped="0"');
    for (const u of demo.units) expect(xml).toContain(`name="${u}"`);
    expect(new Set(await demo.sampleVersions(20))).toEqual(new Set([commit]));

    const again = pipeline('plan', [], commit);
    expect(await again.done, again.out()).toBe(0);
    expect(again.out()).toContain('web is already at revision');
  }, 240_000);

  it('a deploy whose health check fails exits 7 (reverted); the JUnit report names the instance and why', async () => {
    const before = new Set(await demo.sampleVersions(10));
    const deploy = pipeline('deploy', ['--set', 'unhealthy=true']);
    expect(await deploy.done, deploy.out()).toBe(EXIT.reverted);
    expect(deploy.out()).not.toMatch(ESC);
    expect(report(deploy)).toMatchObject({ outcome: 'reverted', exitCode: 7, rollout: { state: 'failed' } });
    expect(junit(deploy)).toMatch(/<failure type="instance-failed" message="[^"]+"/);
    await demo.allInService();
    expect(new Set(await demo.sampleVersions(20))).toEqual(before);
  }, 240_000);

  it('a build stopped mid-rollout (SIGTERM to its group, SIGKILL after 5 s) leaves a consistent cluster; the next build deploys', async () => {
    const stopped = pipeline('deploy');
    await until('an instance in flight', () => /web@\d\.service (stopping|starting|checking)/.test(stopped.out()));
    const code = await stopped.stop();
    expect([143, 137]).toContain(code);
    if (code === 143) {
      expect(stopped.out()).toContain('build stopped by SIGTERM (--on-abort=abort): abort requested');
      expect(report(stopped)).toMatchObject({ outcome: 'interrupted', interrupted: { signal: 'SIGTERM', onAbort: 'abort' } });
    }

    // the next build: it waits for the aborted rollout if that is still ending (saying whose it was), then deploys
    const next = pipeline('deploy');
    expect(await next.done, next.out()).toBe(0);
    if (next.out().includes('waiting for the aborted')) {
      expect(next.out()).toMatch(/waiting for the aborted deploy to revision \d+ of web by jenkins@\S+ \(jenkins-web-\d+\)/);
    }
    const history = await demo.history();
    expect(history.at(-2)).toMatchObject({ state: 'aborted', holder: { build: `jenkins-web-${build - 1}` } });
    expect(history.at(-1)).toMatchObject({ state: 'succeeded', holder: { build: `jenkins-web-${build}` } });
    await demo.allInService();
    expect(new Set(await demo.sampleVersions(20))).toEqual(new Set([next.tag]));
  }, 300_000);

  it('two builds started at the same moment: one deploys, the other exits 5 naming the first', async () => {
    const [a, b] = [pipeline('deploy'), pipeline('deploy')];
    const codes = await Promise.all([a.done, b.done]);
    expect([...codes].sort()).toEqual([0, EXIT.conflict]);
    const [winner, loser] = codes[0] === 0 ? [a, b] : [b, a];
    const first = report(winner).rollout.holder.build as string;
    expect(loser.out()).toContain(`a rollout of web is already running: deploy to revision`);
    expect(loser.out()).toContain(`by jenkins@`);
    expect(loser.out()).toContain(`(${first})`);
    expect(report(loser)).toMatchObject({ outcome: 'locked', exitCode: 5, error: { lock: { holder: { build: first } } } });
    expect(new Set(await demo.sampleVersions(20))).toEqual(new Set([winner.tag]));
  }, 240_000);
});
