/**
 * Bulk commands against a real etcd: 1,000 units in one command, and a
 * command killed half-way leaves every unit done or untouched, so running
 * it again completes it. The CLI is stopped part-way deterministically: it
 * talks to etcd through a TCP proxy that forwards only half the bytes the
 * same command sent in a full run, so the transactions after that point
 * never reach etcd; the test then SIGKILLs it.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const UNITS = 1000;
const NAMES = Array.from({ length: UNITS }, (_, i) => `bulk@${i + 1}.service`);
const TEMPLATE = ['[Unit]', 'Description=bulk %i', '[Service]', 'ExecStart=/bin/sleep infinity', ''].join('\n');

let etcd: EtcdServer;
let client: Etcd3;
let dir: string;
const etcdPort = () => Number(new URL(etcd.endpoints[0]!).port);

beforeAll(async () => {
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.endpoints });
  dir = await mkdtemp(join(tmpdir(), 'fleetx-bulk-'));
  await writeFile(join(dir, 'bulk@.service'), TEMPLATE);
});
afterAll(async () => {
  client?.close();
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

const env = (prefix: string, endpoint = etcd.endpoints[0]!) => ({ FLEETX_ENDPOINT: endpoint, FLEETX_ETCD_KEY_PREFIX: prefix, FLEETX_USER: 'tester' });

/** The units under a prefix: name -> record. */
async function units(prefix: string): Promise<Map<string, { targetState: string; hash: string; template?: string }>> {
  const raw = await client.getAll().prefix(`${prefix}/unit/`).strings();
  return new Map(Object.values(raw).map((v) => JSON.parse(v)).map((u) => [u.name, u]));
}

/** The real binary in the directory holding the template file; expects exit 0. */
async function run(argv: string[], e: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...argv], { env: { PATH: process.env.PATH, ...e }, cwd: dir, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`fleetx ${argv[0]} failed: ${stderr}`)) : resolve({ stdout, stderr }),
    );
  });
}

/** Runs the command through a proxy forwarding half the bytes a full run sent; kills it once it stalled with some of its writes done. */
async function interrupted(argv: string[], prefix: string, fullRunBytes: number, done: () => Promise<number>): Promise<void> {
  const proxy = await TcpProxy.start(etcdPort(), undefined, { budget: Math.floor(fullRunBytes / 2) });
  const child = spawn(process.execPath, [BIN, ...argv], { env: { PATH: process.env.PATH, ...env(prefix, proxy.url) }, cwd: dir, stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  while (proxy.sent < fullRunBytes / 2 || (await done()) === 0) await sleep(20);
  child.kill('SIGKILL');
  await exited;
  await proxy.cut();
}

/** Bytes the CLI sends etcd for argv on a fresh prefix, counted by a proxy. */
async function bytesOf(argv: string[], prefix: string, before?: (prefix: string) => Promise<unknown>): Promise<number> {
  await before?.(prefix);
  const proxy = await TcpProxy.start(etcdPort());
  await run(argv, env(prefix, proxy.url));
  await proxy.cut();
  return proxy.sent;
}

describe('bulk commands', () => {
  it('start, stop, unload, load and destroy of 1,000 units, one command each', async () => {
    const p = '/all';
    await run(['start', '--no-block', ...NAMES], env(p));
    let u = await units(p);
    expect(u.size).toBe(UNITS);
    expect([...u.values()].every((x) => x.targetState === 'launched' && x.template === 'bulk@.service')).toBe(true);
    const bodies = Object.keys(await client.getAll().prefix(`${p}/body/`).strings());
    expect(bodies).toEqual([`${p}/body/${u.get('bulk@1.service')!.hash}`]);

    for (const [cmd, target] of [['stop', 'loaded'], ['unload', 'inactive'], ['load', 'loaded']] as const) {
      const r = await run([cmd, '--no-block', ...NAMES], env(p));
      u = await units(p);
      expect(new Set([...u.values()].map((x) => x.targetState)), cmd).toEqual(new Set([target]));
      expect(r.stderr.split('\n').filter((l) => l.endsWith(`set to ${target}`))).toHaveLength(UNITS);
    }
    const destroyed = await run(['destroy', ...NAMES], env(p));
    expect(destroyed.stdout.split('\n').filter((l) => l.startsWith('Destroyed '))).toHaveLength(UNITS);
    expect(await client.getAll().prefix(`${p}/`).keys()).toEqual([]);
  });

  it('start killed half-way leaves each unit created or untouched, and running it again completes it', async () => {
    const full = await bytesOf(['start', '--no-block', ...NAMES], '/start-full');
    const p = '/start-cut';
    await interrupted(['start', '--no-block', ...NAMES], p, full, async () => (await units(p)).size);

    const partial = await units(p);
    expect(partial.size).toBeGreaterThan(0);
    expect(partial.size).toBeLessThan(UNITS);
    for (const u of partial.values()) expect(u).toMatchObject({ targetState: 'launched', template: 'bulk@.service' });
    expect(await client.get(`${p}/body/${[...partial.values()][0]!.hash}`).string()).not.toBeNull();

    const again = await run(['start', '--no-block', ...NAMES], env(p));
    const all = await units(p);
    expect(all.size).toBe(UNITS);
    expect([...all.values()].every((x) => x.targetState === 'launched')).toBe(true);
    // the second run wrote only what the first had not
    expect(again.stderr.split('\n').filter((l) => l.includes('submitted and set to launched'))).toHaveLength(UNITS - partial.size);
  });

  it('destroy killed half-way leaves each unit destroyed or untouched, and running it again completes it', async () => {
    const start = (prefix: string) => run(['start', '--no-block', ...NAMES], env(prefix));
    const full = await bytesOf(['destroy', ...NAMES], '/destroy-full', start);
    const p = '/destroy-cut';
    await start(p);
    await interrupted(['destroy', ...NAMES], p, full, async () => UNITS - (await units(p)).size);

    const left = await units(p);
    expect(left.size).toBeGreaterThan(0);
    expect(left.size).toBeLessThan(UNITS);
    expect(await client.get(`${p}/body/${[...left.values()][0]!.hash}`).string()).not.toBeNull();

    await run(['destroy', ...NAMES], env(p));
    expect(await client.getAll().prefix(`${p}/`).keys()).toEqual([]);
  });
});
