/**
 * A sandbox with the demo on top (HAProxy on the bridge address, the
 * presence syncer, the app service deployed (containers)) for one e2e test file, on its
 * own state dir, bridge and subnet (SandboxFixture), so it never meets the
 * user's sandbox. Also: the real CLI as a process that can be killed, and
 * the rollout history.
 *
 *   const demo = useDemo({ tag: 'roll', hosts: 3 });
 *   ... demo.lbUrl, demo.run(['rolling-restart', 'app@']), demo.instances() ...
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { demoDown, demoStatus, demoUp, DEMO_SERVICE, type DemoStatus } from '../../src/demo/demo.js';
import { inService, readInstances, type DemoInstance } from '../../src/demo/instances.js';
import { haproxyCommand, syncerPids } from '../../src/demo/processes.js';
import type { RolloutRecord } from '../../src/rollout/types.js';
import { BIN, REPO, type CliResult } from './cli.js';
import { SandboxFixture } from './sandbox.js';
import { readFileSync } from 'node:fs';

export interface RunningCli {
  child: ChildProcess;
  /** stdout so far */
  out(): string;
  done: Promise<CliResult & { ms: number; signal: NodeJS.Signals | null }>;
}

/** HAProxy's counters for one backend (see DemoFixture.lbCounters). */
export interface LbCounters {
  retries: number;
  redispatches: number;
  connErrors: number;
  respErrors: number;
  /** per server slot */
  servers: Record<string, { retries: number; redispatches: number }>;
}

/** What changed between two readings: counters that only grow, so b - a. */
export function lbDelta(a: LbCounters, b: LbCounters): LbCounters {
  const servers: LbCounters['servers'] = {};
  for (const [name, s] of Object.entries(b.servers)) {
    const before = a.servers[name] ?? { retries: 0, redispatches: 0 };
    servers[name] = { retries: s.retries - before.retries, redispatches: s.redispatches - before.redispatches };
  }
  return {
    retries: b.retries - a.retries,
    redispatches: b.redispatches - a.redispatches,
    connErrors: b.connErrors - a.connErrors,
    respErrors: b.respErrors - a.respErrors,
    servers,
  };
}

export class DemoFixture {
  readonly sb: SandboxFixture;
  status?: DemoStatus;
  private readonly children = new Set<ChildProcess>();

  constructor(o: { tag: string; hosts: number; etcdMembers?: number }) {
    this.sb = new SandboxFixture(o);
  }

  get lbUrl(): string {
    return this.status!.lbUrl!;
  }

  /** host:port of the sandbox registry the instances pull from */
  get registry(): string {
    return this.sb.last!.registry!.address;
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
    return this.sb.until('every app instance in service', async () => {
      const all = await this.instances();
      return all.every(inService) ? all : undefined;
    }, timeoutMs, 200);
  }

  /**
   * HAProxy's own counters for the service's backend (the backend is named
   * after the service), from the runtime API's `show stat`: requests it had
   * to send again (`wretr`: the connection to an instance failed or it
   * answered nothing; `wredis`: sent to another instance instead), and
   * connection / response errors; also per server slot, to name the slot a
   * retry came from. A request that needed a retry hit an instance that was
   * going away: draining before stop must keep these at zero.
   */
  async lbCounters(): Promise<LbCounters> {
    const backend = this.status!.service;
    const text = await haproxyCommand(this.status!.socket!, 'show stat');
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const head = lines[0]!.replace(/^# /, '').split(',');
    const rows = lines.slice(1).map((l) => l.split(',')).filter((f) => f[0] === backend);
    const n = (row: string[], col: string) => Number(row[head.indexOf(col)] || 0);
    const be = rows.find((f) => f[1] === 'BACKEND');
    if (!be) throw new Error(`no BACKEND row for ${backend} in show stat:\n${text}`);
    const servers: LbCounters['servers'] = {};
    for (const row of rows) {
      if (row[1] !== 'BACKEND' && row[1] !== 'FRONTEND') servers[row[1]!] = { retries: n(row, 'wretr'), redispatches: n(row, 'wredis') };
    }
    return { retries: n(be, 'wretr'), redispatches: n(be, 'wredis'), connErrors: n(be, 'econ'), respErrors: n(be, 'eresp'), servers };
  }

  /** Requests HAProxy has in flight on one server slot now (`scur` in `show stat`). */
  async slotSessions(slot: string): Promise<number> {
    const text = await haproxyCommand(this.status!.socket!, 'show stat');
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const head = lines[0]!.replace(/^# /, '').split(',');
    const row = lines.slice(1).map((l) => l.split(',')).find((f) => f[0] === this.status!.service && f[1] === slot);
    return Number(row?.[head.indexOf('scur')] || 0);
  }

  /** HAProxy's log (it logs only abnormal requests: retried, failed, aborted) from byte `from` on; its size when `from` is omitted. */
  lbLog(from?: number): { size: number; text: string } {
    const file = this.status!.logs!.haproxy;
    const all = readFileSync(file);
    return { size: all.length, text: from === undefined ? '' : all.subarray(from).toString('utf8') };
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
    const endpoint = this.sb.endpoints.join(',');
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
export function useDemo(o: { tag: string; hosts: number; instances?: number; etcdMembers?: number }): DemoFixture {
  const demo = new DemoFixture(o);
  beforeAll(async () => {
    try {
      await demo.up(o.instances);
    } catch (e) {
      console.error(`demo in ${demo.sb.stateDir} did not come up:\n${await demo.diagnostics().catch(() => '')}`);
      throw e;
    }
  }, 400_000);
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
