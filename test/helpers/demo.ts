/**
 * A sandbox with the demo on top (HAProxy on the bridge address, the
 * presence syncer, the web service deployed) for one e2e test file, on its
 * own state dir, bridge and subnet (SandboxFixture), so it never meets the
 * user's sandbox. Also: the real CLI as a process that can be killed, and
 * the rollout history.
 *
 *   const demo = useDemo({ tag: 'roll', hosts: 3 });
 *   ... demo.lbUrl, demo.run(['rolling-restart', 'web@']), demo.instances() ...
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { demoDown, demoStatus, demoUp, DEMO_SERVICE, type DemoStatus } from '../../src/demo/demo.js';
import { inService, readInstances, type DemoInstance } from '../../src/demo/instances.js';
import { haproxyCommand, syncerPids } from '../../src/demo/processes.js';
import type { RolloutRecord } from '../../src/rollout/types.js';
import { BIN, REPO, type CliResult } from './cli.js';
import { SandboxFixture } from './sandbox.js';

export interface RunningCli {
  child: ChildProcess;
  /** stdout so far */
  out(): string;
  done: Promise<CliResult & { ms: number; signal: NodeJS.Signals | null }>;
}

export class DemoFixture {
  readonly sb: SandboxFixture;
  status?: DemoStatus;
  private readonly children = new Set<ChildProcess>();

  constructor(o: { tag: string; hosts: number }) {
    this.sb = new SandboxFixture(o);
  }

  get lbUrl(): string {
    return this.status!.lbUrl!;
  }

  get serviceFile(): string {
    return this.status!.serviceFile!;
  }

  get units(): string[] {
    return this.status!.instances.map((i) => i.unit);
  }

  async up(instances?: number): Promise<DemoStatus> {
    const sandbox = await this.sb.up();
    this.status = await demoUp(sandbox, { repoRoot: REPO.replace(/\/$/, ''), ...(instances !== undefined ? { instances } : {}), timeoutMs: 120_000 });
    return this.status;
  }

  /** The real binary, started now (so a test can kill it); cwd is the checkout. */
  start(argv: string[], timeoutMs = 120_000): RunningCli {
    const started = Date.now();
    const child = spawn(process.execPath, [BIN, ...argv], {
      cwd: REPO,
      env: { PATH: process.env.PATH, ...this.sb.env, FLEETX_USER: 'e2e' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const done = new Promise<CliResult & { ms: number; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.children.delete(child);
        resolve({ code: code ?? -1, signal, stdout, stderr, ms: Date.now() - started });
      });
    });
    return { child, out: () => stdout, done };
  }

  /** The real binary, to its end. */
  run(argv: string[], timeoutMs?: number) {
    return this.start(argv, timeoutMs).done;
  }

  async instances(): Promise<DemoInstance[]> {
    return readInstances({ client: this.sb.etcd(), keys: this.sb.keys, service: DEMO_SERVICE, units: this.units, socket: this.status!.socket!, backend: DEMO_SERVICE });
  }

  /** Waits until every instance is active, healthy, reported in and UP in HAProxy. */
  async allInService(timeoutMs = 60_000): Promise<DemoInstance[]> {
    return this.sb.until('every web instance in service', async () => {
      const all = await this.instances();
      return all.every(inService) ? all : undefined;
    }, timeoutMs, 200);
  }

  /**
   * The backend's counters in HAProxy: requests it had to send again
   * (`wretr`: a connection to an instance failed or it answered nothing;
   * `wredis`: sent to another instance) and connection / response errors.
   * A request that needed a retry hit an instance that was going away.
   */
  async lbCounters(): Promise<{ retries: number; redispatches: number; connErrors: number; respErrors: number }> {
    const text = await haproxyCommand(this.status!.socket!, 'show stat');
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const head = lines[0]!.replace(/^# /, '').split(',');
    const row = lines.map((l) => l.split(',')).find((f) => f[0] === DEMO_SERVICE && f[1] === 'BACKEND');
    if (!row) throw new Error(`no BACKEND row for ${DEMO_SERVICE} in show stat:\n${text}`);
    const n = (col: string) => Number(row[head.indexOf(col)] || 0);
    return { retries: n('wretr'), redispatches: n('wredis'), connErrors: n('econ'), respErrors: n('eresp') };
  }

  /** Finished rollouts of the demo service, oldest first. */
  async history(): Promise<RolloutRecord[]> {
    const all = await this.sb.etcd().getAll().prefix(this.sb.keys.rolloutHistories(DEMO_SERVICE)).strings();
    return Object.values(all)
      .map((v) => JSON.parse(v) as RolloutRecord)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async running(): Promise<RolloutRecord | undefined> {
    const v = await this.sb.etcd().get(this.sb.keys.rollout(DEMO_SERVICE)).string();
    return v ? (JSON.parse(v) as RolloutRecord) : undefined;
  }

  /** GETs through the LB, one at a time: the versions that answer. */
  async sampleVersions(n: number): Promise<string[]> {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await fetch(this.lbUrl, { signal: AbortSignal.timeout(3_000) });
      seen.push(((await res.json()) as { version: string }).version);
    }
    return seen;
  }

  /** Demo, then sandbox; returns what was left behind (empty when clean). */
  async down(): Promise<string[]> {
    for (const c of this.children) c.kill('SIGKILL');
    const endpoint = this.sb.endpoint;
    await demoDown(this.sb.stateDir);
    const left = await this.sb.down();
    for (const pid of syncerPids(endpoint, DEMO_SERVICE)) left.push(`presence syncer ${pid}`);
    return left;
  }

  /** Syncer and HAProxy logs' tails, agent journals: for failed tests. */
  async diagnostics(): Promise<string> {
    const status = await demoStatus(this.sb.stateDir).catch(() => undefined);
    return `demo status: ${JSON.stringify(status, null, 2)}\n${await this.sb.journals()}`;
  }
}

/** One sandbox + demo for the calling test file: up in beforeAll, down in afterAll (asserting nothing is left). */
export function useDemo(o: { tag: string; hosts: number; instances?: number }): DemoFixture {
  const demo = new DemoFixture(o);
  beforeAll(async () => {
    try {
      await demo.up(o.instances);
    } catch (e) {
      console.error(`demo in ${demo.sb.stateDir} did not come up:\n${await demo.diagnostics().catch(() => '')}`);
      throw e;
    }
  }, 240_000);
  beforeEach(({ onTestFailed, task }) => {
    onTestFailed(async () => {
      console.error(`\n=== "${task.name}" failed ===\n${await demo.diagnostics()}`);
    });
  });
  afterAll(async () => {
    expect(await demo.down()).toEqual([]);
  }, 120_000);
  return demo;
}
