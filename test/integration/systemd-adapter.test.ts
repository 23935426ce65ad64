/**
 * The systemd adapter against a real systemd: an nspawn test host booted
 * once for the file (see test/helpers/in-host.ts for how we reach it).
 */
import { lstat, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { connectSystemd } from '../../src/systemd/systemd.js';
import type { Systemd, UnitStatus } from '../../src/systemd/types.js';
import { MANAGED_MARKER } from '../../src/systemd/unit-files.js';
import { bootSystemdHost, countReloads, type SystemdHost } from '../helpers/in-host.js';
import { rejection as errorOf } from '../helpers/errors.js';
import { waitForWith } from '../helpers/wait.js';

let h: SystemdHost;
let sd: Systemd;
const changes: UnitStatus[] = [];

const service = (exec: string, extra = '') => `[Unit]\nDescription=fleetx adapter test\n\n[Service]\nExecStart=${exec}\n${extra}`;

/** the adapter's change events arrive in the test process itself: look often */
const waitFor = waitForWith({ intervalMs: 10 });

const changeOf = (name: string, activeState: string, since: number) => () =>
  changes.slice(since).find((c) => c.name === name && c.activeState === activeState);

/** Retries while the adapter says 'unavailable' (what an agent's loop does). */
async function retryWhileUnavailable<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof FleetxError) || e.kind !== 'unavailable' || Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

beforeAll(async () => {
  h = await bootSystemdHost('sdx-adapter');
  sd = await connectSystemd({ busAddress: h.busAddress, unitDir: h.unitDir, callTimeoutMs: 5_000, jobTimeoutMs: 15_000 });
  sd.onUnitChange((s) => changes.push(s));
});

afterAll(async () => {
  await sd?.close();
  await h?.stop();
});

describe('unit lifecycle', () => {
  it('writes, reloads, starts, reports the change from signals, and stops', async () => {
    expect(await sd.writeUnitFile('sleeper.service', service('/bin/sleep infinity'))).toBe(true);
    expect(await sd.writeUnitFile('sleeper.service', service('/bin/sleep infinity'))).toBe(false);
    expect(await sd.readUnitFile('sleeper.service')).toBe(service('/bin/sleep infinity'));
    await sd.reload();

    const mark = changes.length;
    expect(await sd.start('sleeper.service')).toBe('done');
    const st = await sd.status('sleeper.service');
    expect(st).toMatchObject({ name: 'sleeper.service', loadState: 'loaded', activeState: 'active', subState: 'running' });
    expect(st.mainPid).toBeGreaterThan(1);
    expect(st.fragmentPath).toBe('/run/systemd/system/sleeper.service');
    expect(() => JSON.stringify(st)).not.toThrow(); // no bigint leaks out
    const up = await waitFor('active change', changeOf('sleeper.service', 'active', mark));
    expect(up).toMatchObject({ loadState: 'loaded', subState: 'running', mainPid: st.mainPid });

    const mark2 = changes.length;
    expect(await sd.stop('sleeper.service')).toBe('done');
    const down = await waitFor('inactive change', changeOf('sleeper.service', 'inactive', mark2));
    expect(down.mainPid).toBeUndefined();
    expect((await sd.status('sleeper.service')).activeState).toBe('inactive');
  });

  it('restart gives a new main PID', async () => {
    expect(await sd.start('sleeper.service')).toBe('done');
    const before = (await sd.status('sleeper.service')).mainPid;
    expect(await sd.restart('sleeper.service')).toBe('done');
    const after = (await sd.status('sleeper.service')).mainPid;
    expect(after).toBeGreaterThan(1);
    expect(after).not.toBe(before);
    const [listed] = await sd.listUnits(['sleeper.service']);
    expect(listed).toMatchObject({ activeState: 'active', mainPid: after });
    expect(await sd.stop('sleeper.service')).toBe('done');
  });

  it("a unit whose start fails reports 'failed'", async () => {
    await sd.writeUnitFile('broken.service', service('/bin/false', 'Type=oneshot\n'));
    await sd.reload();
    expect(await sd.start('broken.service')).toBe('failed');
    expect(await sd.status('broken.service')).toMatchObject({ activeState: 'failed' });
  });

  it('unknown units are not-found in status and listUnits, and cannot be started', async () => {
    expect(await sd.status('nope.service')).toMatchObject({ loadState: 'not-found', activeState: 'inactive' });
    const [row] = await sd.listUnits(['nope.service']);
    expect(row).toMatchObject({ name: 'nope.service', loadState: 'not-found' });
    expect((await errorOf(sd.start('nope.service'))).kind).toBe('not-found');
    expect((await errorOf(sd.status('bad name'))).kind).toBe('invalid');
  });

  it('listUnits() without names lists every loaded unit, with main PIDs of running services', async () => {
    const all = await sd.listUnits();
    const dbus = all.find((u) => u.name === 'dbus.service');
    expect(dbus).toMatchObject({ loadState: 'loaded', activeState: 'active', subState: 'running' });
    expect(dbus?.mainPid).toBeGreaterThan(1);
    expect(all.find((u) => u.name === 'multi-user.target')?.mainPid).toBeUndefined();
  });

  it('jobs that end before StartUnit() returns are not lost (20 concurrent quick oneshots)', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `quick${i}.service`);
    await Promise.all(names.map((n) => sd.writeUnitFile(n, service('/bin/true', 'Type=oneshot\n'))));
    await sd.reload();
    expect(await Promise.all(names.map((n) => sd.start(n)))).toEqual(names.map(() => 'done'));
  });
});

describe('daemon-reload batching', () => {
  it('50 concurrent write+reload calls cost only a few Reload() calls, and all units load', async () => {
    const counter = await countReloads(h.busAddress);
    try {
      const names = Array.from({ length: 50 }, (_, i) => `batch${i}.service`);
      await Promise.all(
        names.map(async (n) => {
          await sd.writeUnitFile(n, service('/bin/sleep infinity'));
          await sd.reload();
        }),
      );
      await new Promise((r) => setTimeout(r, 100)); // let the last Reloading signal arrive
      expect(counter.count()).toBeGreaterThanOrEqual(1);
      expect(counter.count()).toBeLessThanOrEqual(3);
      const rows = await sd.listUnits(names);
      expect(rows.every((r) => r.loadState === 'loaded')).toBe(true);
    } finally {
      counter.close();
    }
  });
});

describe('new units need no daemon-reload (what the agent\'s planner relies on)', () => {
  it('a unit systemd cached as not-found is read from its new file on demand: listed, started and stopped with no Reload() at all', async () => {
    const counter = await countReloads(h.busAddress);
    try {
      const names = Array.from({ length: 10 }, (_, i) => `ondemand${i}.service`);
      // the agent lists scheduled names before writing them: systemd caches them as not-found
      expect((await sd.listUnits(names)).map((r) => r.loadState)).toEqual(names.map(() => 'not-found'));
      await Promise.all(names.map((n) => sd.writeUnitFile(n, service('/bin/sleep infinity'))));
      expect(await Promise.all(names.map((n) => sd.start(n)))).toEqual(names.map(() => 'done'));
      const rows = await sd.listUnits(names);
      expect(rows.map((r) => [r.loadState, r.activeState])).toEqual(names.map(() => ['loaded', 'active']));
      expect((await sd.status(names[0]!)).fragmentPath).toBe(`/run/systemd/system/${names[0]}`);
      // a unit only written (target state loaded) is loaded by the next look at it
      await sd.writeUnitFile('ondemand-loaded.service', service('/bin/sleep infinity'));
      expect((await sd.listUnits(['ondemand-loaded.service']))[0]?.loadState).toBe('loaded');
      expect(await Promise.all(names.map((n) => sd.stop(n)))).toEqual(names.map(() => 'done'));
      await new Promise((r) => setTimeout(r, 100)); // a Reloading signal would have arrived by now
      expect(counter.count()).toBe(0);
    } finally {
      counter.close();
    }
  });
});

describe('unit files', () => {
  it.each(['../x.service', 'a/b.service', 'x', 'bad name.service', '.hidden.service', '', 'x.nonsense'])(
    'refuses %j and writes nothing',
    async (name) => {
      const before = await readdir(h.unitDir);
      expect((await errorOf(sd.writeUnitFile(name, service('/bin/true')))).kind).toBe('invalid');
      expect(await readdir(h.unitDir)).toEqual(before);
      expect(await readdir(path.dirname(h.unitDir))).not.toContain('x.service');
    },
  );

  it('never touches files it did not write, nor symlinks (masks)', async () => {
    await writeFile(path.join(h.unitDir, 'foreign.service'), service('/bin/true'));
    await symlink('/dev/null', path.join(h.unitDir, 'masked.service'));
    for (const name of ['foreign.service', 'masked.service']) {
      expect((await errorOf(sd.writeUnitFile(name, service('/bin/true')))).kind).toBe('conflict');
      expect((await errorOf(sd.removeUnitFile(name))).kind).toBe('conflict');
    }
    expect(await readlink(path.join(h.unitDir, 'masked.service'))).toBe('/dev/null');
    const ours = await sd.listUnitFiles();
    expect(ours).toContain('sleeper.service');
    expect(ours).not.toContain('foreign.service');
    expect(ours).not.toContain('masked.service');
  });

  it('writes, loads and starts a unit with the longest valid name (255 characters)', async () => {
    const name = `${'l'.repeat(255 - '.service'.length)}.service`;
    expect(await sd.writeUnitFile(name, service('/bin/true', 'Type=oneshot\nRemainAfterExit=yes\n'))).toBe(true);
    await sd.reload();
    expect(await sd.start(name)).toBe('done');
    expect((await sd.status(name)).activeState).toBe('active');
    await sd.stop(name);
    expect(await sd.removeUnitFile(name)).toBe(true);
    expect((await readdir(h.unitDir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('marks its files and removes only those', async () => {
    await sd.writeUnitFile('gone.service', service('/bin/true'));
    expect(await h.sh(['head', '-1', '/run/systemd/system/gone.service'])).toBe(`${MANAGED_MARKER}\n`);
    expect(await sd.removeUnitFile('gone.service')).toBe(true);
    expect(await sd.removeUnitFile('gone.service')).toBe(false);
    expect(await sd.readUnitFile('gone.service')).toBeUndefined();
    expect(await sd.listUnitFiles()).not.toContain('gone.service');
  });
});

describe('enablement', () => {
  it('enables at runtime through [Install] WantedBy=, and disables', async () => {
    await sd.writeUnitFile('wanted.service', service('/bin/sleep infinity', '\n[Install]\nWantedBy=multi-user.target\n'));
    await sd.reload();
    await sd.enable(['wanted.service']);
    const link = h.outside('/run/systemd/system/multi-user.target.wants/wanted.service');
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readlink(link)).toBe('/run/systemd/system/wanted.service');
    expect((await h.sh(['systemctl', 'is-enabled', 'wanted.service'])).trim()).toBe('enabled-runtime');
    await sd.disable(['wanted.service']);
    await expect(lstat(link)).rejects.toThrow(/ENOENT/);
    expect(await sd.listUnitFiles()).toContain('wanted.service'); // the unit file itself stays
  });

  it('leaves units without an [Install] section alone', async () => {
    await sd.writeUnitFile('plain.service', service('/bin/sleep infinity'));
    await sd.reload();
    await sd.enable(['plain.service']);
    expect(await h.sh(['find', '/run/systemd/system', '-type', 'l', '-name', 'plain.service'])).toBe('');
    expect((await h.sh(['systemctl', 'is-enabled', 'plain.service']).catch((e: Error) => e.message))).toMatch(/static/);
  });
});

describe('connection faults', () => {
  it('times out calls to a frozen systemd instead of hanging, then recovers', async () => {
    const quick = await connectSystemd({ busAddress: h.busAddress, unitDir: h.unitDir, callTimeoutMs: 300 });
    try {
      process.kill(h.host.leaderPid, 'SIGSTOP');
      const t0 = Date.now();
      let err: FleetxError;
      try {
        err = await errorOf(quick.status('dbus.service'));
      } finally {
        process.kill(h.host.leaderPid, 'SIGCONT');
      }
      expect(err.kind).toBe('unavailable');
      expect(err.retryable).toBe(true); // the call's own time limit ended it, while systemd was still frozen
      console.log(`frozen systemd: call gave up after ${Date.now() - t0} ms`);
      expect((await quick.status('dbus.service')).loadState).toBe('loaded');
    } finally {
      await quick.close();
    }
  });

  it('reconnects after the bus restarts; change signals keep flowing', async () => {
    await sd.writeUnitFile('reconn.service', service('/bin/sleep infinity'));
    await sd.reload();
    let reconnected = 0;
    const off = sd.onReconnect(() => reconnected++);
    await h.sh(['systemctl', 'restart', 'dbus.service']);
    // Calls during the restart may fail 'unavailable' (retryable); one soon succeeds.
    const st = await retryWhileUnavailable(() => sd.status('reconn.service'), 15_000);
    expect(st.loadState).toBe('loaded');
    expect(reconnected).toBeGreaterThanOrEqual(1);
    off();

    const mark = changes.length;
    expect(await sd.start('reconn.service')).toBe('done');
    await waitFor('active change after reconnect', changeOf('reconn.service', 'active', mark));
    expect(await sd.stop('reconn.service')).toBe('done');
  });

  it('a job in progress while the bus restarts still gets its result', async () => {
    await sd.writeUnitFile('slowstart.service', service('/bin/sleep infinity', 'ExecStartPre=/bin/sleep 1\n'));
    await sd.reload();
    const mark = changes.length;
    const result = sd.start('slowstart.service');
    await waitFor('activating', changeOf('slowstart.service', 'activating', mark));
    // The bus is down while the job ends, so its JobRemoved signal is lost for sure.
    await h.sh(['systemctl', 'stop', 'dbus.socket', 'dbus.service']);
    const until = Date.now() + 5_000;
    while ((await h.sh(['systemctl', 'is-active', 'slowstart.service']).catch((e: Error) => e.message)).trim() !== 'active') {
      if (Date.now() > until) throw new Error('slowstart.service did not become active');
      await new Promise((r) => setTimeout(r, 100));
    }
    await h.sh(['systemctl', 'start', 'dbus.socket', 'dbus.service']);
    expect(await result).toBe('done');
    expect((await retryWhileUnavailable(() => sd.status('slowstart.service'), 15_000)).activeState).toBe('active');
    expect(await sd.stop('slowstart.service')).toBe('done');
  });

  it('close() ends cleanly and later calls throw usage', async () => {
    const other = await connectSystemd({ busAddress: h.busAddress, unitDir: h.unitDir });
    expect((await other.status('dbus.service')).loadState).toBe('loaded');
    await other.writeUnitFile('slowclose.service', service('/bin/sleep infinity', 'ExecStartPre=/bin/sleep 2\n'));
    await other.reload();
    const waiting = errorOf(other.start('slowclose.service'));
    await new Promise((r) => setTimeout(r, 200)); // the job is queued and waited for
    const t0 = Date.now();
    await other.close();
    // 'usage' from close(), not the start's own result once ExecStartPre's 2 s were over
    expect((await waiting).kind).toBe('usage');
    console.log(`close() ended a waiting start after ${Date.now() - t0} ms`);
    expect((await errorOf(other.status('dbus.service'))).kind).toBe('usage');
    await other.close(); // idempotent
  });

  it('connecting to a missing bus fails unavailable', async () => {
    const err = await errorOf(connectSystemd({ busAddress: 'unix:path=/nonexistent/bus', callTimeoutMs: 1_000 }));
    expect(err.kind).toBe('unavailable');
  });
});
