/**
 * A whole fleetx sandbox (bridge + etcd + N systemd hosts, each running the
 * real `fleetx agent` unit) for one e2e test file, on its own state dir,
 * bridge and subnet so it never meets a user's sandbox or another test's.
 *
 * `useSandbox()` brings it up in beforeAll (and waits until every agent has
 * registered), tears it down in afterAll asserting nothing is left behind,
 * and prints the agents' journals when a test fails.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { connect } from '../../src/registry/client.js';
import { keyspace, type Keyspace } from '../../src/registry/keys.js';
import type { MachineRecord } from '../../src/registry/records.js';
import { openHost, type Host } from '../../src/sandbox/host.js';
import { sandboxDown, sandboxUp, type SandboxStatus } from '../../src/sandbox/sandbox.js';
import { OPERATOR_USER } from '../../src/sandbox/etcd-auth.js';
import { sandboxConnection, sandboxPaths } from '../../src/sandbox/state.js';
import { fleetx, REPO, type CliResult } from './cli.js';
import { leftovers, testNet, testStateDir } from './hosts.js';
import { waitFor, type Check } from './wait.js';

export interface SandboxFixtureOptions {
  /** Short tag for names: state dir, host prefix (`<tag>-1`…), at most 8 chars of [a-z0-9]. */
  tag: string;
  hosts: number;
  /** etcd members (default 1). */
  etcdMembers?: number;
}

export { sleep } from './wait.js';

export class SandboxFixture {
  readonly stateDir: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly hostPrefix: string;
  readonly keys: Keyspace = keyspace('/fleetx');
  /** A scratch dir on the machine for unit files the CLI reads (cwd of `cli`). */
  readonly workDir: string;
  hostCount: number;
  readonly etcdMembers: number;
  last?: SandboxStatus;
  private client?: Etcd3;

  constructor(o: SandboxFixtureOptions) {
    const net = testNet();
    this.stateDir = testStateDir(o.tag);
    this.bridge = net.bridge;
    this.subnet = net.prefix;
    // A random letter keeps host names unique between concurrent runs (nspawn machine names are global).
    this.hostPrefix = `${o.tag}${randomBytes(1).toString('hex')}`;
    this.hostCount = o.hosts;
    this.etcdMembers = o.etcdMembers ?? 1;
    this.workDir = mkdtempSync(`/var/tmp/fleetx-e2e-units-${o.tag}-`);
  }

  /** Member 1's client URL. */
  get endpoint(): string {
    return `http://${this.subnet}.1:2379`;
  }

  /** Every member's client URL (member i on port 2379 + 2(i-1)), as the sandbox gives them to fleetx. */
  get endpoints(): string[] {
    return Array.from({ length: this.etcdMembers }, (_, k) => `http://${this.subnet}.1:${2379 + 2 * k}`);
  }

  /** Environment for the CLI on the machine. */
  get env(): NodeJS.ProcessEnv {
    // as the sandbox's env file: the operator's etcd user, its password by file
    return {
      FLEETX_ENDPOINT: this.endpoints.join(','),
      FLEETX_REQUEST_TIMEOUT: '5',
      FLEETX_ETCD_USERNAME: OPERATOR_USER,
      FLEETX_ETCD_PASSWORD_FILE: sandboxPaths(this.stateDir).operatorPassword,
    };
  }

  hostDir(name: string): string {
    return join(this.stateDir, 'hosts', name);
  }

  hostNames(): string[] {
    return Array.from({ length: this.hostCount }, (_, i) => `${this.hostPrefix}-${i + 1}`);
  }

  /** Brings the sandbox to `hosts` hosts (adds, repairs), then waits for every agent to register. */
  async up(hosts = this.hostCount): Promise<SandboxStatus> {
    this.hostCount = hosts;
    this.last = await sandboxUp({
      hosts,
      stateDir: this.stateDir,
      repoRoot: REPO.replace(/\/$/, ''),
      bridge: this.bridge,
      subnet: this.subnet,
      hostPrefix: this.hostPrefix,
      etcdMembers: this.etcdMembers,
    });
    if (!this.last.healthy) throw new Error(`sandbox not healthy after up: ${JSON.stringify(this.last)}`);
    await this.waitForMachines(this.last.hosts.map((h) => h.machineId));
    return this.last;
  }

  /** A running host by name; throws when it is not running. */
  host(name: string): Host {
    const h = openHost(this.hostDir(name));
    if (!h) throw new Error(`host ${name} is not running`);
    return h;
  }

  /** Running hosts, by name (powered-off ones are left out). */
  runningHosts(): Host[] {
    return this.hostNames().flatMap((n) => openHost(this.hostDir(n)) ?? []);
  }

  hostOfMachine(id: string): Host {
    const h = this.runningHosts().find((x) => x.machineId === id);
    if (!h) throw new Error(`no running host has machine id ${id}`);
    return h;
  }

  etcd(): Etcd3 {
    this.client ??= connect(sandboxConnection(this.stateDir));
    return this.client;
  }

  /** The CLI in-process, run from workDir (where unit files are written). */
  cli(argv: string[]): Promise<CliResult> {
    return fleetx(argv, this.env, this.workDir);
  }

  /** Like cli, but throws with the output when the command fails. */
  async cliOk(argv: string[]): Promise<CliResult> {
    const r = await this.cli(argv);
    if (r.code !== 0) throw new Error(`fleetx ${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  writeUnit(name: string, text: string): void {
    writeFileSync(join(this.workDir, name), text);
  }

  async machines(): Promise<MachineRecord[]> {
    const all = await this.etcd().getAll().prefix(this.keys.machines()).strings();
    return Object.values(all).map((v) => JSON.parse(v) as MachineRecord);
  }

  async leader(): Promise<string | null> {
    return this.etcd().get(this.keys.leader()).string();
  }

  /** Waits until these machine ids are registered and an engine leads. */
  async waitForMachines(ids: string[], timeoutMs = 60_000): Promise<void> {
    await this.until(`agents ${ids.map((i) => i.slice(0, 8)).join(', ')} registered and a leader elected`, async () => {
      const live = new Set((await this.machines()).map((m) => m.id));
      return ids.every((id) => live.has(id)) && (await this.leader()) !== null;
    }, timeoutMs);
  }

  /** Units matching `pattern` that have processes on a host (active, activating, deactivating, reloading). */
  async runningUnits(host: Host, pattern: string): Promise<string[]> {
    const r = await host.exec(
      ['systemctl', 'list-units', '--no-legend', '--plain', '--all', '--state=active,activating,deactivating,reloading', pattern],
      { timeoutMs: 10_000 },
    );
    if (r.code !== 0) throw new Error(`systemctl list-units on ${host.name} exited ${r.code}: ${r.stderr}`);
    return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter((u) => u && u.endsWith('.service')).sort();
  }

  async show(host: Host, unit: string, props: string[]): Promise<Record<string, string>> {
    const r = await host.exec(['systemctl', 'show', '-p', props.join(','), unit]);
    return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  /** waitFor (helpers/wait.ts), polling every intervalMs. */
  until<T>(what: string, check: Check<T>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
    return waitFor(what, check, { timeoutMs, intervalMs });
  }

  /** The tail of every running host's agent journal, for failure output. */
  async journals(lines = 50): Promise<string> {
    const parts: string[] = [];
    for (const name of this.hostNames()) {
      const h = openHost(this.hostDir(name));
      if (!h) {
        parts.push(`--- ${name}: not running ---`);
        continue;
      }
      const r = await h
        .exec(['journalctl', '-u', 'fleetx-agent', '-n', String(lines), '--no-pager', '-o', 'short-precise'], { timeoutMs: 10_000 })
        .catch((e: Error) => ({ stdout: `(journalctl failed: ${e.message})` }));
      parts.push(`--- ${name} (${h.machineId.slice(0, 8)}) fleetx-agent journal ---\n${r.stdout}`);
    }
    return parts.join('\n');
  }

  /** The machine's end of a host's veth: setting it down cuts the host off the bridge (and etcd). */
  vethOf(name: string): string {
    try {
      const rec = JSON.parse(readFileSync(join(this.hostDir(name), 'host.json'), 'utf8')) as { veth?: string };
      if (rec.veth) return rec.veth;
    } catch {
      // fall through to nspawn's naming
    }
    return `vb-${name}`;
  }

  /** Removes everything; returns what was left behind (empty when clean). */
  async down(): Promise<string[]> {
    this.client?.close();
    this.client = undefined;
    await sandboxDown(this.stateDir);
    rmSync(this.workDir, { recursive: true, force: true });
    const hosts = Array.from({ length: Math.max(this.hostCount, 4) }, (_, i) => {
      const name = `${this.hostPrefix}-${i + 1}`;
      return { name, dir: this.hostDir(name) };
    });
    return leftovers(this.stateDir, this.bridge, hosts);
  }
}

/**
 * One sandbox for the calling test file: up in beforeAll, down in afterAll
 * (asserting nothing is left), agent journals printed for every failed test.
 */
export function useSandbox(o: SandboxFixtureOptions): SandboxFixture {
  const sb = new SandboxFixture(o);
  beforeAll(async () => {
    try {
      await sb.up();
    } catch (e) {
      console.error(`sandbox ${sb.stateDir} did not come up:\n${await sb.journals().catch(() => '')}`);
      throw e;
    }
  }, 400_000);
  beforeEach(({ onTestFailed, task }) => {
    onTestFailed(async () => {
      console.error(`\n=== "${task.name}" failed: agent journals ===\n${await sb.journals()}`);
    });
  });
  afterAll(async () => {
    expect(await sb.down()).toEqual([]);
  }, 120_000);
  return sb;
}
