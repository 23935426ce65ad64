import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { statusText } from '../../src/cli/commands/sandbox.js';
import { etcdArgs, etcdMembers } from '../../src/sandbox/etcd.js';
import { netUnit } from '../../src/sandbox/layer.js';
import { unmountAll } from '../../src/sandbox/mounts.js';
import { ALWAYS_MASK, NEVER_MASK, unitsToMask } from '../../src/sandbox/masks.js';
import { cidrsOverlap, parseCidr } from '../../src/sandbox/network.js';
import { envFileText, readState } from '../../src/sandbox/state.js';

describe('unitsToMask', () => {
  it.each([
    ['masks enabled services and timers', ['etcd.service', 'apt-daily.timer'], [], [], ['apt-daily.timer', 'etcd.service']],
    ['ignores targets', ['machines.target', 'remote-fs.target'], [], [], []],
    ['never masks dbus or journald', ['dbus.service', 'systemd-journald.service'], [], [], []],
    ['adds extras', [], ['foo.service'], [], ['foo.service']],
    ['keeps what is asked to keep', ['cron.service', 'x.service'], [], ['cron.service'], ['x.service']],
  ] as Array<[string, string[], string[], string[], string[]]>)('%s', (_, enabled, extra, keep, expected) => {
    const got = unitsToMask(enabled, extra, keep);
    const fixed = ALWAYS_MASK.filter((u) => !keep.includes(u));
    expect(got.filter((u) => !fixed.includes(u))).toEqual(expected.filter((u) => !fixed.includes(u)));
    for (const u of fixed) expect(got).toContain(u);
  });

  it('is sorted, unique, and never holds a kept or needed unit', () => {
    const unit = fc.constantFrom('a.service', 'b.timer', 'dbus.service', 'c.target', 'etcd.service', 'systemd-logind.service');
    fc.assert(
      fc.property(fc.array(unit), fc.array(unit), fc.array(unit), (enabled, extra, keep) => {
        const got = unitsToMask(enabled, extra, keep);
        expect(got).toEqual([...new Set(got)].sort());
        for (const u of [...keep, ...NEVER_MASK]) expect(got).not.toContain(u);
      }),
    );
  });
});

describe('CIDRs', () => {
  it.each([
    ['10.213.0.1/24', '10.213.0.0/24', true],
    ['10.213.0.1/24', '10.213.1.1/24', false],
    ['10.0.0.0/8', '10.213.5.1/24', true],
    ['192.0.2.2/24', '10.213.0.1/24', false],
    ['0.0.0.0/0', '10.213.0.1/24', true],
  ])('%s overlaps %s: %s', (a, b, expected) => {
    expect(cidrsOverlap(a, b)).toBe(expected);
  });

  it('overlap is symmetric', () => {
    const cidr = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(32)).map(([x, y, p]) => `10.${x}.${y}.1/${p}`);
    fc.assert(fc.property(cidr, cidr, (a, b) => cidrsOverlap(a, b) === cidrsOverlap(b, a)));
  });

  it.each(['10.213.0.1', '10.213.0.256/24', '10.213.0.1/33', 'x/24'])('rejects %s', (bad) => {
    expect(() => parseCidr(bad)).toThrow(expect.objectContaining({ kind: 'invalid' }));
  });
});

describe('unit texts', () => {
  it('the net unit puts the address on host0 and retries', () => {
    const unit = netUnit('10.213.0.11/24');
    expect(unit).toContain('ExecStart=/usr/sbin/ip addr replace 10.213.0.11/24 dev host0\n');
    expect(unit).toContain('Restart=on-failure\n');
  });

  it('etcd listens only on the URLs it is given', () => {
    const args = etcdArgs({ dataDir: '/d', logFile: '/l', clientUrl: 'http://10.213.0.1:2379', peerUrl: 'http://10.213.0.1:2380' });
    expect(args.filter((a) => a.startsWith('--listen-'))).toEqual([
      '--listen-client-urls=http://10.213.0.1:2379',
      '--listen-peer-urls=http://10.213.0.1:2380',
    ]);
  });

  it('a 3-member etcd: member 1 keeps the single-member names and ports, the others take the next ports', () => {
    const ms = etcdMembers({ count: 3, address: '10.213.0.1', port: 2379, dir: (e) => `/s/${e}` });
    expect(ms.map((m) => [m.name, m.dataDir, m.logFile, m.clientUrl, m.peerUrl])).toEqual([
      ['fleetx-sandbox', '/s/etcd', '/s/etcd.log', 'http://10.213.0.1:2379', 'http://10.213.0.1:2380'],
      ['fleetx-sandbox-2', '/s/etcd-2', '/s/etcd-2.log', 'http://10.213.0.1:2381', 'http://10.213.0.1:2382'],
      ['fleetx-sandbox-3', '/s/etcd-3', '/s/etcd-3.log', 'http://10.213.0.1:2383', 'http://10.213.0.1:2384'],
    ]);
    const cluster = '--initial-cluster=fleetx-sandbox=http://10.213.0.1:2380,fleetx-sandbox-2=http://10.213.0.1:2382,fleetx-sandbox-3=http://10.213.0.1:2384';
    for (const m of ms) expect(etcdArgs(m)).toContain(cluster);
    expect(etcdArgs(ms[1]!)).toContain('--name=fleetx-sandbox-2');
    // One member alone is its own cluster, as before.
    expect(etcdArgs(etcdMembers({ count: 1, address: 'a', port: 2379, dir: (e) => e })[0]!)).toContain('--initial-cluster=fleetx-sandbox=http://a:2380');
  });

  it('a state file from before etcd members reads as one member', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fx-state-'));
    const old = { pid: 5, endpoints: ['http://10.213.0.1:2379'], peerUrl: 'http://10.213.0.1:2380', dataDir: `${dir}/etcd`, logFile: `${dir}/etcd.log` };
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 1, stateDir: dir, repoRoot: '/r', bridge: { name: 'b', cidr: '10.213.0.1/24' }, etcd: old, hosts: [] }));
    expect(readState(dir)?.etcd).toEqual({
      endpoints: ['http://10.213.0.1:2379'],
      members: [{ name: 'fleetx-sandbox', pid: 5, clientUrl: 'http://10.213.0.1:2379', peerUrl: 'http://10.213.0.1:2380', dataDir: `${dir}/etcd`, logFile: `${dir}/etcd.log` }],
    });
    rmSync(dir, { recursive: true });
  });

  it('the env file quotes for the shell', () => {
    expect(envFileText(['http://10.213.0.1:2379'], "/var/lib/it's")).toContain(
      "export FLEETX_ENDPOINT='http://10.213.0.1:2379'\nexport FLEETX_SANDBOX_DIR='/var/lib/it'\\''s'\n",
    );
  });
});

const member = (i: number, pid?: number) => ({
  name: i === 1 ? 'fleetx-sandbox' : `fleetx-sandbox-${i}`,
  clientUrl: `http://10.213.0.1:${2377 + 2 * i}`,
  peerUrl: `http://10.213.0.1:${2378 + 2 * i}`,
  pid,
  running: pid !== undefined,
  dataDir: i === 1 ? '/s/etcd' : `/s/etcd-${i}`,
  logFile: i === 1 ? '/s/etcd.log' : `/s/etcd-${i}.log`,
});

describe('statusText', () => {
  it('says when there is no sandbox', () => {
    expect(statusText({ stateDir: '/s', exists: false, healthy: false, hosts: [] })).toBe('no sandbox at /s (create one with `fleetx sandbox up`)');
  });

  it('lists hosts, etcd and how to use it', () => {
    const text = statusText({
      stateDir: '/s',
      exists: true,
      healthy: false,
      bridge: { name: 'fleetx0', address: '10.213.0.1/24', present: true },
      etcd: { endpoints: ['http://10.213.0.1:2379'], pid: 7, running: true, logFile: '/s/etcd.log', members: [member(1, 7)] },
      hosts: [
        { name: 'sandbox-1', machineId: 'a'.repeat(32), address: '10.213.0.11', running: true, systemState: 'running' },
        { name: 'sandbox-2', machineId: 'b'.repeat(32), address: '10.213.0.12', running: false },
      ],
      envFile: '/s/env',
    });
    expect(text).toMatch(/^sandbox \/s: NOT healthy\netcd: +http:\/\/10\.213\.0\.1:2379 \(pid 7\)\n/);
    expect(text).toMatch(/sandbox-1\s+a{32}\s+10\.213\.0\.11\s+running/);
    expect(text).toMatch(/sandbox-2\s+b{32}\s+10\.213\.0\.12\s+stopped/);
    expect(text).toContain('. /s/env');
  });

  it('lists each etcd member of a cluster', () => {
    const members = [member(1, 7), member(2), member(3, 9)];
    const text = statusText({ stateDir: '/s', exists: true, healthy: false, etcd: { endpoints: members.map((m) => m.clientUrl), pid: 7, running: false, logFile: '/s/etcd.log', members }, hosts: [] });
    expect(text).toContain(
      'etcd:   3 members (NOT all healthy)\n        fleetx-sandbox http://10.213.0.1:2379 (pid 7)\n        fleetx-sandbox-2 http://10.213.0.1:2381 (not running)\n        fleetx-sandbox-3 http://10.213.0.1:2383 (pid 9)\n',
    );
  });
});

describe('safety', () => {
  it.each(['/', '/var', '/var/', 'relative/dir'])('unmountAll refuses %j', async (dir) => {
    await expect(unmountAll(dir)).rejects.toMatchObject({ kind: 'internal' });
  });

  it.each([0, 8, 1.5])('up refuses --etcd-members %j before touching anything', async (n) => {
    const { sandboxUp } = await import('../../src/sandbox/sandbox.js');
    const stateDir = join(tmpdir(), `fx-never-${process.pid}`);
    const e = await sandboxUp({ hosts: 1, stateDir, repoRoot: process.cwd(), etcdMembers: n }).catch((x: unknown) => x);
    // Not root: the root check comes first; as root: the member count.
    expect(e).toMatchObject({ kind: 'usage', message: process.getuid?.() === 0 ? `--etcd-members must be 1..7, got ${n}` : expect.stringContaining('root') });
    expect(existsSync(stateDir)).toBe(false);
  });
});

describe('bridgeMac', () => {
  it('is a locally administered unicast address, the same for the same name', async () => {
    const { bridgeMac } = await import('../../src/sandbox/network.js');
    expect(bridgeMac('fleetx0')).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(bridgeMac('fleetx0')).toBe(bridgeMac('fleetx0'));
    expect(bridgeMac('fleetx0')).not.toBe(bridgeMac('fxt123456'));
  });
});
