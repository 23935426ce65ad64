/**
 * What systemd itself costs to start units, measured in one nspawn host
 * with the agent's own adapter (src/systemd): the floor under
 * bench:converge, and the ways to start a unit compared.
 *
 *   npm run bench:systemd-start [-- --units 40 --rounds 5]
 *   npm run bench:systemd-start -- --hosts 3   # the floor under bench:converge: 3 hosts at once
 *
 * Each round starts `--units` fresh `sleep infinity` services at once (32 in
 * flight, as the agent does) in three ways, in turn:
 *   file+reload      write the unit files, one daemon-reload, StartUnit each (the agent before)
 *   file, no reload  write the unit files, StartUnit each (the agent now: systemd loads new files on demand)
 *   transient        StartTransientUnit with ExecStart/Description properties, no file
 * and then one unit alone in each way. Times are wall clock from the first
 * call to the last job's JobRemoved, and systemd's own span from the first
 * to the last ActiveEnterTimestamp. Units are stopped and removed after
 * each round. The host is booted for the run and removed at the end.
 *
 * With `--hosts N` (N > 1) it boots N hosts and, in each round, starts
 * `--units` units on every host at once the agent's way (file, no reload),
 * as bench:converge's 120 units on 3 hosts do: the hosts' systemd, their
 * journald and the `sleep` processes then share the machine's cores. It
 * prints the span from the first call to the last unit's
 * ActiveEnterTimestamp on any host (CLOCK_MONOTONIC: nspawn hosts share
 * the kernel's), the figure bench:converge's "systemd active" p99 compares
 * with, minus fleetx's CLI, engine and agents.
 */
import { parseArgs } from 'node:util';
import { Message, MessageType, sessionBus, Variant, type MessageBus } from 'dbus-next';
import PQueue from 'p-queue';
import { connectSystemd } from '../src/systemd/systemd.js';
import type { Systemd } from '../src/systemd/types.js';
import { bootSystemdHost, type SystemdHost } from '../test/helpers/in-host.js';
import { runBench } from './sandbox-run.js';

const { values } = parseArgs({ options: { units: { type: 'string', default: '40' }, rounds: { type: 'string', default: '5' }, hosts: { type: 'string', default: '1' } } });
const UNITS = Number(values.units);
const HOSTS = Number(values.hosts);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = 32;
const body = (i: string) => `[Unit]\nDescription=systemd-start bench ${i}\n[Service]\nExecStart=/bin/sleep infinity\n`;

type Way = 'file+reload' | 'file, no reload' | 'transient';
const WAYS: Way[] = ['file+reload', 'file, no reload', 'transient'];

/** StartTransientUnit over a plain connection, waiting for JobRemoved like the adapter does. */
class Transient {
  private readonly results = new Map<string, (r: string) => void>();
  private readonly early = new Map<string, string>();
  private constructor(private readonly bus: MessageBus) {
    bus.on('message', (m) => {
      if (m.type !== MessageType.SIGNAL || m.member !== 'JobRemoved') return;
      const [, path, , result] = m.body as [number, string, string, string];
      const done = this.results.get(path);
      if (done) done(result);
      else this.early.set(path, result);
    });
  }

  static async open(busAddress: string): Promise<Transient> {
    const bus = sessionBus({ busAddress });
    const t = new Transient(bus);
    await t.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'AddMatch', 's', ["type='signal',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'"]);
    await t.call('org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'Subscribe');
    return t;
  }

  async start(name: string, description: string): Promise<string> {
    const props = [
      ['Description', new Variant('s', description)],
      ['ExecStart', new Variant('a(sasb)', [['/bin/sleep', ['/bin/sleep', 'infinity'], false]])],
    ];
    const [path] = (await this.call('org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'StartTransientUnit', 'ssa(sv)a(sa(sv))', [name, 'replace', props, []])) as [string];
    const known = this.early.get(path);
    if (known !== undefined) return known;
    return new Promise((resolve) => this.results.set(path, resolve));
  }

  close(): void {
    this.bus.disconnect();
  }

  private async call(destination: string, path: string, iface: string, member: string, signature?: string, body: unknown[] = []): Promise<unknown[]> {
    const reply = await this.bus.call(new Message({ destination, path, interface: iface, member, signature, body }));
    return reply?.body ?? [];
  }
}

/** systemd's ActiveEnterTimestamp of each unit, µs since the epoch. */
async function activeTimes(h: SystemdHost, names: string[]): Promise<number[]> {
  const out = await h.sh(['systemctl', 'show', '-p', 'ActiveEnterTimestampMonotonic', ...names]);
  return [...out.matchAll(/=(\d+)/g)].map((m) => Number(m[1]));
}

async function round(h: SystemdHost, sd: Systemd, tr: Transient, way: Way, names: string[]): Promise<{ wallMs: number; systemdMs: number; cpuMs: number }> {
  const q = new PQueue({ concurrency: CONCURRENCY });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  if (way !== 'transient') {
    await q.addAll(names.map((n) => () => sd.writeUnitFile(n, body(n))));
    if (way === 'file+reload') await sd.reload();
  }
  const results = await q.addAll(names.map((n) => () => (way === 'transient' ? tr.start(n, n) : sd.start(n))));
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000;
  if (results.some((r) => r !== 'done')) throw new Error(`${way}: jobs ended ${[...new Set(results)].join(', ')}`);
  const ts = await activeTimes(h, names);
  const systemdMs = (Math.max(...ts) - Math.min(...ts)) / 1000;
  await q.addAll(names.map((n) => () => sd.stop(n)));
  if (way !== 'transient') await q.addAll(names.map((n) => () => sd.removeUnitFile(n)));
  return { wallMs, systemdMs, cpuMs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

/** `UNITS` units on each host at once, file and no reload: first call → last active on any host, ms. */
async function hostsRound(hs: Array<{ h: SystemdHost; sd: Systemd }>, r: number): Promise<{ wallMs: number; toActiveMs: number }> {
  const t0us = Number(process.hrtime.bigint() / 1000n);
  const t0 = performance.now();
  const perHost = await Promise.all(
    hs.map(async ({ h, sd }, k) => {
      const names = Array.from({ length: UNITS }, (_, i) => `sdh-${r}-${k}-${i}.service`);
      const q = new PQueue({ concurrency: CONCURRENCY });
      await q.addAll(names.map((n) => () => sd.writeUnitFile(n, body(n))));
      const results = await q.addAll(names.map((n) => () => sd.start(n)));
      if (results.some((x) => x !== 'done')) throw new Error(`host ${k}: jobs ended ${[...new Set(results)].join(', ')}`);
      return { h, sd, q, names };
    }),
  );
  const wallMs = performance.now() - t0;
  const last = Math.max(...(await Promise.all(perHost.map(({ h, names }) => activeTimes(h, names)))).flat());
  await Promise.all(
    perHost.map(async ({ sd, q, names }) => {
      await q.addAll(names.map((n) => () => sd.stop(n)));
      await q.addAll(names.map((n) => () => sd.removeUnitFile(n)));
    }),
  );
  return { wallMs, toActiveMs: (last - t0us) / 1000 };
}

async function mainHosts(): Promise<number> {
  const booted = await Promise.all(Array.from({ length: HOSTS }, (_, i) => bootSystemdHost(`sdstart${i + 1}`)));
  const hs: Array<{ h: SystemdHost; sd: Systemd }> = [];
  try {
    for (const h of booted) hs.push({ h, sd: await connectSystemd({ busAddress: h.busAddress, unitDir: h.unitDir }) });
    const rs: Array<{ wallMs: number; toActiveMs: number }> = [];
    for (let r = 0; r < ROUNDS; r++) rs.push(await hostsRound(hs, r));
    console.log(
      `${HOSTS} hosts at once, ${UNITS} units each (file, no reload): first call → last systemd active median ${median(rs.map((x) => x.toActiveMs)).toFixed(0)} ms (${rs.map((x) => x.toActiveMs.toFixed(0)).join(', ')}); first call → last job done median ${median(rs.map((x) => x.wallMs)).toFixed(0)} ms`,
    );
    return 0;
  } finally {
    await Promise.all(hs.map(({ sd }) => sd.close()));
    await Promise.all(booted.map((h) => h.stop()));
  }
}

async function main(): Promise<number> {
  if (HOSTS > 1) return mainHosts();
  const h = await bootSystemdHost('sdstart');
  const sd = await connectSystemd({ busAddress: h.busAddress, unitDir: h.unitDir });
  const tr = await Transient.open(h.busAddress);
  try {
    const reloads: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await sd.reload();
      reloads.push(performance.now() - t);
    }
    console.log(`daemon-reload alone: median ${median(reloads).toFixed(0)} ms (${reloads.map((x) => x.toFixed(0)).join(', ')})`);
    const many = new Map<Way, Array<{ wallMs: number; systemdMs: number; cpuMs: number }>>(WAYS.map((w) => [w, []]));
    const one = new Map<Way, number[]>(WAYS.map((w) => [w, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const [k, way] of WAYS.entries()) {
        const names = Array.from({ length: UNITS }, (_, i) => `sdb-${r}-${k}-${i}.service`);
        many.get(way)!.push(await round(h, sd, tr, way, names));
        one.get(way)!.push((await round(h, sd, tr, way, [`sdb-${r}-${k}-one.service`])).wallMs);
      }
    }
    for (const way of WAYS) {
      const rs = many.get(way)!;
      console.log(
        `${way.padEnd(16)} ${UNITS} units: wall median ${median(rs.map((x) => x.wallMs)).toFixed(0)} ms, systemd first→last active median ${median(rs.map((x) => x.systemdMs)).toFixed(0)} ms, this process's CPU median ${median(rs.map((x) => x.cpuMs)).toFixed(0)} ms; one unit: median ${median(one.get(way)!).toFixed(0)} ms`,
      );
    }
    return 0;
  } finally {
    tr.close();
    await sd.close();
    await h.stop();
  }
}

runBench(main);
