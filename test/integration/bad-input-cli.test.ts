/**
 * Bad input found when fleetx was tried as a new user would (issue 9): each
 * case gets a clear error with the right exit code and changes nothing in a
 * real etcd. Where a case needs an agent's report (a unit systemd refused),
 * the test writes the machine and state records as an agent does.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/errors/errors.js';
import { keyspace } from '../../src/registry/keys.js';
import type { UnitRecord, UnitStateRecord } from '../../src/registry/records.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { fleetx, fleetxProcess } from '../helpers/cli.js';

let etcd: EtcdServer;
let client: Etcd3;
let dir: string;
let n = 0;

beforeAll(async () => {
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.endpoints });
  dir = await mkdtemp(join(tmpdir(), 'fleetx-bad-input-'));
});
afterAll(async () => {
  client?.close();
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

function env(): NodeJS.ProcessEnv {
  return { FLEETX_ENDPOINT: etcd.endpoints.join(','), FLEETX_ETCD_KEY_PREFIX: `/b${++n}`, FLEETX_USER: 'tester' };
}
const snapshot = async (e: NodeJS.ProcessEnv) => client.getAll().prefix(`${e.FLEETX_ETCD_KEY_PREFIX}/`).strings();
const file = async (name: string, text: string) => (await writeFile(join(dir, name), text), name);
const SLEEP = '[Service]\nExecStart=/bin/sleep infinity\n';

describe('refused at submit, nothing written', () => {
  it.each<[string, string, string, RegExp]>([
    ['an empty unit file', 'empty.service', '', /the unit file is empty/],
    ['a service with nothing to run', 'noexec.service', '[Unit]\nDescription=x\n[Service]\nRestart=always\n', /has no ExecStart=/],
    ['a Conflicts glob that is not a pattern', 'glob.service', `${SLEEP}[X-Fleet]\nConflicts=[[[*\n`, /"\[\[\[\*" is not a valid glob/],
    ['an empty MachineOf=', 'peer.service', `${SLEEP}[X-Fleet]\nMachineOf=\n`, /MachineOf= is empty/],
  ])('%s (exit 3)', async (_d, name, text, message) => {
    const e = env();
    await file(name, text);
    for (const cmd of [['submit'], ['start', '--no-block']]) {
      const r = await fleetx([...cmd, name], e, dir);
      expect(r.code, r.stderr).toBe(EXIT.invalid);
      expect(r.stderr).toMatch(message);
    }
    expect(await snapshot(e)).toEqual({});
  });

  it('a 6 MB unit is refused with its size at once (exit 3), by verify and submit', async () => {
    const e = env();
    const big = await file('big.service', `${SLEEP}${'Environment=PAD=' + 'x'.repeat(100) + '\n'}`.repeat(1) + `Environment=PAD=${'x'.repeat(6 * 1024 * 1024)}\n`);
    const verify = await fleetxProcess(['verify', big].map((a) => (a === big ? join(dir, big) : a)), e);
    expect(verify.code).toBe(EXIT.invalid);
    expect(verify.stderr).toMatch(/the unit file is \d+ bytes, more than the 262144 \(256 KiB\) fleetx stores/);
    const submit = await fleetx(['submit', big], e, dir);
    expect(submit.code).toBe(EXIT.invalid);
    expect(submit.stderr).toMatch(/more than the 262144/);
    expect(await snapshot(e)).toEqual({});
  });

  it('a unit name of 256 characters is refused (exit 3): no host could write it', async () => {
    const e = env();
    await file('n@.service', SLEEP);
    const r = await fleetx(['start', '--no-block', `n@${'n'.repeat(256 - 'n@.service'.length)}.service`], e, dir);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toMatch(/256 characters long \(at most 255\)/);
    expect(await snapshot(e)).toEqual({});
  });

  it('verify reports every bad [X-Fleet] option, not only the first', async () => {
    const name = await file('three.service', `${SLEEP}[X-Fleet]\nMachineRole=db\nGlobal=maybe\nMachineMetadata=ssd\n`);
    const r = await fleetx(['verify', '--no-systemd-analyze', name], env(), dir);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toMatch(/unknown option MachineRole/);
    expect(r.stderr).toMatch(/Global must be a boolean/);
    expect(r.stderr).toMatch(/malformed MachineMetadata entry "ssd"/);
  });
});

describe('missing things are not found (exit 4)', () => {
  it('start of a file that does not exist', async () => {
    const e = env();
    for (const arg of ['./nope.service', 'nope.service', 'sub/nope.service']) {
      const r = await fleetx(['start', '--no-block', arg], e, dir);
      expect(r.code, `${arg}: ${r.stderr}`).toBe(EXIT['not-found']);
    }
    expect(await snapshot(e)).toEqual({});
  });

  it('a missing file next to a bad one is bad input (exit 3): the worse problem wins', async () => {
    await file('empty2.service', '');
    const r = await fleetx(['start', '--no-block', 'nope.service', 'empty2.service'], env(), dir);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toMatch(/2 units are invalid/);
  });
});

describe('connection flags', () => {
  it("--endpoint '' is refused (exit 2), not replaced by the environment", async () => {
    const r = await fleetx(['--endpoint', '', 'list-units'], env(), dir);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/--endpoint is empty/);
  });
});

describe('YAML', () => {
  it('an alias bomb in a service file is bad input (exit 3), not a crash', async () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (const [i, c] of [...'bcdefgh'].entries()) levels.push(`${c}: &${c} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`);
    await file('bomb.yaml', `name: web\ntemplate: web@.service\n${levels.join('\n')}\n`);
    await file('values-bomb.yaml', `${levels.join('\n')}\n`);
    const e = env();
    const deploy = await fleetx(['deploy', '-f', 'bomb.yaml', '--dry-run'], e, dir);
    expect(deploy.code, deploy.stderr).toBe(EXIT.invalid);
    expect(deploy.stderr).toMatch(/invalid YAML: Excessive alias count/);
    const render = await fleetx(['render', 'web@.service', '-f', 'values-bomb.yaml'], e, dir);
    expect(render.code, render.stderr).toBe(EXIT.invalid);
    expect(await snapshot(e)).toEqual({});
  });
});

describe('a template is not a unit that runs', () => {
  it('start/restart of a template are refused; globs pick instances only, so destroy t@*.service keeps the template', async () => {
    const e = env();
    const p = e.FLEETX_ETCD_KEY_PREFIX!;
    const k = keyspace(p);
    await file('t@.service', SLEEP);
    expect((await fleetx(['submit', 't@.service'], e, dir)).code).toBe(0);
    const before = await snapshot(e);
    const start = await fleetx(['start', '--no-block', 't@.service'], e, dir);
    expect(start.code).toBe(EXIT.usage);
    expect(start.stderr).toMatch(/t@\.service is a template: templates never run/);
    expect(await snapshot(e)).toEqual(before);

    expect((await fleetx(['start', '--no-block', 't@1.service', 't@2.service'], e, dir)).code).toBe(0);
    const restartTemplate = await fleetx(['restart', '--no-block', 't@.service'], e, dir);
    expect(restartTemplate.code).toBe(EXIT.usage);
    const restart = await fleetx(['restart', '--no-block', 't@*.service'], e, dir);
    expect(restart.code, restart.stderr).toBe(0);
    expect(JSON.parse((await client.get(k.unit('t@.service')).string())!) as UnitRecord).toMatchObject({ targetState: 'inactive' });

    const destroy = await fleetx(['destroy', 't@*.service'], e, dir);
    expect(destroy.code, destroy.stderr).toBe(0);
    const names = JSON.parse((await fleetx(['-o', 'json', 'list-unit-files'], e, dir)).stdout).units.map((u: { name: string }) => u.name);
    expect(names).toEqual(['t@.service']);
    expect((await fleetx(['destroy', 't@.service'], e, dir)).code).toBe(0); // by its name it goes
    expect(await snapshot(e)).toEqual({});
  });
});

describe('a unit systemd refuses', () => {
  it("start stops waiting with the reason, and why says it, when an agent reports 'bad-setting'", async () => {
    const e = env();
    const p = e.FLEETX_ETCD_KEY_PREFIX!;
    const k = keyspace(p);
    // a unit fleetx cannot tell is bad: systemd refuses a relative ExecStart= path
    const name = await file('rel.service', '[Service]\nExecStart=sleep infinity\n');
    expect((await fleetx(['submit', name], e, dir)).code).toBe(0);
    const machine = 'fedcba9876543210fedcba9876543210';
    const lease = client.lease(30);
    try {
      await lease.put(k.machine(machine)).value(JSON.stringify({ id: machine, ip: '10.0.0.9', metadata: {}, version: 't', startedAt: '' })).exec();
      const hash = (JSON.parse((await client.get(k.unit('rel.service')).string())!) as UnitRecord).hash;
      const state: UnitStateRecord = { name: 'rel.service', machine, hash, loadState: 'bad-setting', activeState: 'inactive', subState: 'dead', updatedAt: new Date().toISOString() };
      await lease.put(k.state(machine, 'rel.service')).value(JSON.stringify(state)).exec();
      await client.put(k.schedule(machine, 'rel.service')).value(JSON.stringify({ name: 'rel.service', hash, targetState: 'launched' }));

      const start = await fleetx(['start', name], e, dir); // blocking, no attempt limit
      expect(start.code).toBe(EXIT.failed);
      expect(start.stderr).toMatch(/rel\.service was refused by systemd on machine fedcba98 \(load state bad-setting\)/);
      const why = await fleetx(['why', 'rel.service'], e, dir);
      expect(why.stdout).toMatch(/is scheduled to fedcba98/);
      expect(why.stdout).toMatch(/refused by systemd .*bad-setting.*a setting in its file is invalid or missing/);
    } finally {
      await lease.revoke();
    }
  });
});

describe('deploy needs its template', () => {
  it('a service whose template does not exist is refused (exit 4), even when a body is stored, and nothing changes', async () => {
    const e = env();
    const fixtures = `${process.cwd()}/test/fixtures/services`;
    const first = await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, fixtures);
    expect(first.code, first.stderr).toBe(0);
    const before = await snapshot(e);
    const text = (await import('node:fs')).readFileSync(`${fixtures}/services/web.yaml`, 'utf8');
    for (const [what, edited] of [
      ['another template source', text.replace('source: web', 'source: ghost')],
      ['new values and a template source not at hand', text.replace('source: web', 'source: ghost').replace('port: 8080', 'port: 9090')],
    ] as const) {
      await file('web.yaml', edited);
      const r = await fleetx(['deploy', '-f', 'web.yaml', '--detach'], e, dir);
      expect(r.code, `${what}: ${r.stderr}`).toBe(EXIT['not-found']);
      expect(r.stderr).toMatch(/template/);
      expect(await snapshot(e)).toEqual(before);
    }
  });
});

describe('absurd service settings', () => {
  it.each([
    ['instances: 200', 'instances: 200\n', /instances must be at most 100/],
    ['rollout.deadline: 0', 'rollout: { deadline: 0 }\n', /rollout\.deadline must be a positive duration/],
    ['rollout.deadline: 99999h', 'rollout: { deadline: 99999h }\n', /rollout\.deadline must be between 1s and 24h, not 99999h/],
    ['rollout.maxUnavailable: 1000', 'instances: 2\nrollout: { maxUnavailable: 1000 }\n', /rollout\.maxUnavailable must be at most instances \(2\), not 1000/],
    ['health.interval: 0', 'health: { type: tcp, port: 80, interval: 0 }\n', /health\.interval must be a positive duration/],
  ])('%s is refused by plan and deploy (exit 3) and writes nothing', async (_d, extra, message) => {
    const e = env();
    await file('absurd.yaml', `name: web\ntemplate: web@.service\n${extra}`);
    for (const cmd of [['plan', '-f', 'absurd.yaml'], ['deploy', '-f', 'absurd.yaml', '--detach']]) {
      const r = await fleetx(cmd, e, dir);
      expect(r.code, r.stderr).toBe(EXIT.invalid);
      expect(r.stderr).toMatch(message);
    }
    expect(await snapshot(e)).toEqual({});
  });
});
