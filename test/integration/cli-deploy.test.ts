/**
 * deploy, plan, rolling-restart and rollout commands against a real etcd.
 * The test plays the rollout controller where one is needed: it edits the
 * rollout record, moves it to history and deletes the lock, as the engine
 * leader does.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, fleetx, REPO } from '../helpers/cli.js';
import { EXIT } from '../../src/errors/errors.js';
import { keyspace } from '../../src/registry/keys.js';
import type { RolloutRecord } from '../../src/rollout/types.js';
import type { RevisionRecord, ServiceRecord } from '../../src/service/types.js';
import type { UnitRecord } from '../../src/registry/records.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { waitFor } from '../helpers/wait.js';

const CWD = `${REPO}test/fixtures/services`;
const etcd = useEtcd();
let client: Etcd3;

beforeAll(() => {
  client = etcd.client;
});

const env = (extra: NodeJS.ProcessEnv = {}) => etcd.cliEnv(extra);
const keysOf = (e: NodeJS.ProcessEnv) => keyspace(e.FLEETX_ETCD_KEY_PREFIX);
const snapshot = async (e: NodeJS.ProcessEnv) => client.getAll().prefix(`${e.FLEETX_ETCD_KEY_PREFIX}/`).strings();
const json = <T>(key: string) => etcd.json<T>(key);

/** What the controller does at the end: history + lock delete in one transaction (and mark-healthy on success). */
async function finish(
  e: NodeJS.ProcessEnv, svc: string, state: 'succeeded' | 'failed' | 'aborted', message?: string, patch: (r: RolloutRecord) => RolloutRecord = (r) => r,
): Promise<RolloutRecord> {
  const k = keysOf(e);
  const r = patch((await json<RolloutRecord>(k.rollout(svc)))!);
  const done: RolloutRecord = { ...r, state, finishedAt: new Date().toISOString(), updatedAt: new Date().toISOString(), ...(message ? { message } : {}) };
  await client
    .if(k.rollout(svc), 'Create', '>', 0)
    .then(client.put(k.rolloutHistory(svc, r.id)).value(JSON.stringify(done)), client.delete().key(k.rollout(svc)), client.delete().key(k.rolloutControl(svc)))
    .commit();
  if (state === 'succeeded' && r.toRevision !== undefined) {
    const rev = (await json<RevisionRecord>(k.revision(svc, r.toRevision)))!;
    await client.put(k.revision(svc, r.toRevision)).value(JSON.stringify({ ...rev, healthy: true }));
  }
  return done;
}

/** The real binary, started in CWD: its output so far and its exit. */
function startCli(argv: string[], e: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [BIN, ...argv], { env: { PATH: process.env.PATH, ...e }, cwd: CWD });
  const io = { out: '', err: '' };
  child.stdout.on('data', (d) => (io.out += d));
  child.stderr.on('data', (d) => (io.err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  return { child, io, exited };
}

/** The real binary, followed until its output shows the rollout running; then stopped with `sig`. */
async function stopWhileFollowing(argv: string[], e: NodeJS.ProcessEnv, sig: NodeJS.Signals): Promise<{ code: number | null; out: string; err: string }> {
  const { child, io, exited } = startCli(argv, e);
  await waitFor('the output to show the rollout running', () => io.out.includes('running'));
  child.kill(sig);
  return { code: await exited, ...io };
}

let lastTmp = '';
/** A fresh working directory (for --report files). */
function tmp(): string {
  lastTmp = mkdtempSync(join(tmpdir(), 'fleetx-deploy-cli-'));
  return lastTmp;
}

describe('fleetx deploy', () => {
  it('writes revision, service, template, new instances and the rollout record', async () => {
    const e = env({ BUILD_TAG: 'jenkins-web-7', BUILD_URL: 'https://bot:s3cret@ci.example/job/web/7/', GIT_COMMIT: '0123456789abcdef0123' });
    const r = await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD);
    expect(r.code, r.stderr).toBe(0);
    const k = keysOf(e);
    const rev = (await json<RevisionRecord>(k.revision('web', 1)))!;
    expect(rev).toMatchObject({ service: 'web', revision: 1, healthy: false, values: { port: '8080' } });
    // the pipeline's identity, in the revision and the lock; a password in BUILD_URL never reaches etcd
    const pipeline = { user: 'tester', build: 'jenkins-web-7', url: 'https://ci.example/job/web/7/', commit: '0123456789abcdef0123' };
    expect(rev.deployedBy).toMatchObject(pipeline);
    expect(JSON.stringify(await snapshot(e))).not.toContain('s3cret');
    expect(await client.get(k.body(rev.hash)).string()).toContain('Environment=GREETING=hello');
    expect(await json<ServiceRecord>(k.service('web'))).toMatchObject({ name: 'web', template: 'web@.service', revision: 1, instances: 2, health: { type: 'http', intervalMs: 500 } });
    expect(await json<UnitRecord>(k.unit('web@.service'))).toMatchObject({ hash: rev.hash, targetState: 'inactive' });
    for (const i of ['web@1.service', 'web@2.service']) {
      expect(await json<UnitRecord>(k.unit(i))).toMatchObject({ hash: rev.hash, targetState: 'launched', template: 'web@.service' });
    }
    const rollout = (await json<RolloutRecord>(k.rollout('web')))!;
    expect(rollout).toMatchObject({
      service: 'web', template: 'web@.service', kind: 'deploy', state: 'running', toRevision: 1, toHash: rev.hash,
      autoRevert: true, presence: false, instances: {}, holder: pipeline,
      policy: { maxUnavailable: 1, minHealthyMs: 500, deadlineMs: 30_000 },
    });
    expect(rollout.revertTo).toBeUndefined();
    // `fleetx cat` shows the deployed template
    expect((await fleetx(['cat', 'web@.service'], e, CWD)).stdout).toContain('GREETING=hello');
    // rollout history shows who deployed what
    await finish(e, 'web', 'succeeded');
    const h = JSON.parse((await fleetx(['-o', 'json', 'rollout', 'history', 'web'], e, CWD)).stdout);
    expect(h.rollouts[0]).toMatchObject({ build: 'jenkins-web-7', url: 'https://ci.example/job/web/7/', commit: '0123456789abcdef0123', holder: expect.stringContaining('(jenkins-web-7)') });
    expect((await fleetx(['rollout', 'history', 'web'], e, CWD)).stdout.split('\n')[1]).toMatch(/\(jenkins-web-7\)\s+0123456789ab\s/);
  });

  it('refuses a second deploy while one runs, naming the holder, and changes nothing', async () => {
    const e = env({ BUILD_TAG: 'jenkins-web-8' });
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    const before = await snapshot(e);
    const r = await fleetx(['deploy', 'web', '--set', 'greeting=hola', '--detach'], { ...e, BUILD_TAG: 'other' }, CWD);
    expect(r.code).toBe(EXIT.conflict);
    expect(r.stderr).toMatch(/a rollout of web is already running: deploy to revision 1 by tester@\S+ \(jenkins-web-8\) since 20\d\d-/);
    expect(r.stderr).toContain('fleetx rollout status web --follow, or fleetx rollout abort web');
    // planning still works, and says a deploy would be refused
    const plan = await fleetx(['plan', 'web', '--set', 'greeting=hola'], e, CWD);
    expect(plan.code).toBe(0);
    expect(plan.stderr).toMatch(/^Note: a rollout of web is already running/);
    expect(await snapshot(e)).toEqual(before);
  });

  it('a changed value makes revision 2, restarts every instance, reverts to the healthy revision 1', async () => {
    const e = env();
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    await finish(e, 'web', 'succeeded');
    const r = await fleetx(['deploy', 'web', '--set', 'greeting=hola', '--detach', '--no-auto-revert'], e, CWD);
    expect(r.code, r.stderr).toBe(0);
    const k = keysOf(e);
    const [rev1, rev2] = [(await json<RevisionRecord>(k.revision('web', 1)))!, (await json<RevisionRecord>(k.revision('web', 2)))!];
    expect(rev1.healthy).toBe(true);
    expect(rev2.values).toEqual({ port: '8080', greeting: 'hola' });
    const rollout = (await json<RolloutRecord>(k.rollout('web')))!;
    expect(rollout).toMatchObject({ toRevision: 2, toHash: rev2.hash, revertTo: { revision: 1, hash: rev1.hash }, autoRevert: false });
    expect(Object.values(rollout.instances).map((i) => [i.unit, i.phase, i.targetHash])).toEqual([
      ['web@1.service', 'pending', rev2.hash],
      ['web@2.service', 'pending', rev2.hash],
    ]);
    // instances keep their body until the controller moves them
    expect((await json<UnitRecord>(k.unit('web@1.service')))!.hash).toBe(rev1.hash);
    expect((await json<UnitRecord>(k.unit('web@.service')))!.hash).toBe(rev2.hash);
    expect((await json<ServiceRecord>(k.service('web')))!.values).toEqual({ port: '8080', greeting: 'hola' });
  });

  it('takes over a template submitted by hand: keeps its target state, collects its old body, restarts its instances', async () => {
    const e = env();
    const k = keysOf(e);
    // a template is submitted, never loaded (templates never run: load refuses them)
    expect((await fleetx(['submit', 'web@.service'], e, `${CWD}/plain`)).code).toBe(0);
    expect((await fleetx(['start', '--no-block', 'web@1.service'], e, `${CWD}/plain`)).code).toBe(0);
    const old = (await json<UnitRecord>(k.unit('web@.service')))!;
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    const tpl = (await json<UnitRecord>(k.unit('web@.service')))!;
    expect(tpl).toMatchObject({ targetState: 'inactive' });
    expect(tpl.hash).not.toBe(old.hash);
    // web@1 still runs the old body until the controller moves it: the body stays
    expect(await client.get(k.body(old.hash)).string()).not.toBeNull();
    // web@1 is restarted onto the new body; web@2, created by the deploy, starts on it
    const instances = (await json<RolloutRecord>(k.rollout('web')))!.instances;
    expect(Object.values(instances).map((i) => [i.unit, i.phase])).toEqual([['web@1.service', 'pending'], ['web@2.service', 'starting']]);
  });

  it('collects the replaced template body when nothing else uses it', async () => {
    const e = env();
    const k = keysOf(e);
    expect((await fleetx(['submit', 'web@.service'], e, `${CWD}/plain`)).code).toBe(0);
    const old = (await json<UnitRecord>(k.unit('web@.service')))!;
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    expect(await client.get(k.body(old.hash)).string()).toBeNull();
  });

  it('says "already at revision N" and starts nothing when nothing differs', async () => {
    const e = env();
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    await finish(e, 'web', 'succeeded');
    const before = await snapshot(e);
    const r = await fleetx(['deploy', 'web'], e, CWD);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('web is already at revision 1');
    expect(await snapshot(e)).toEqual(before);
  });

  it('plan and deploy --dry-run print the unit diff and instances, and change nothing', async () => {
    const e = env();
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    await finish(e, 'web', 'succeeded');
    const before = await snapshot(e);
    for (const argv of [['plan', 'web', '--set', 'greeting=hola'], ['deploy', '--dry-run', 'web@', '--set', 'greeting=hola']]) {
      const r = await fleetx(argv, e, CWD);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('Deploy web: revision 1 -> revision 2 (new)');
      expect(r.stdout).toContain('--- web@.service (revision 1)');
      expect(r.stdout).toContain('-Environment=GREETING=hello\n+Environment=GREETING=hola');
      expect(r.stdout).toContain('Instances to restart (2): web@1.service, web@2.service');
    }
    const j = JSON.parse((await fleetx(['-o', 'json', 'plan', '-f', 'services/web.yaml', '--set', 'greeting=hola'], e, CWD)).stdout);
    expect(j).toMatchObject({ fromRevision: 1, toRevision: 2, restart: ['web@1.service', 'web@2.service'], create: [] });
    expect(await snapshot(e)).toEqual(before);
  });

  it('plan --detailed-exitcode: 2 when a deploy would change something, 0 when not, 1 on any error', async () => {
    const e = env();
    const plan = (...extra: string[]) => fleetx(['plan', '--detailed-exitcode', '-f', 'services/web.yaml', ...extra], e, CWD);
    const first = await plan();
    expect(first.code, first.stderr).toBe(2);
    expect(first.stdout).toContain('Deploy web: nothing -> revision 1 (new)');
    // plain plan keeps exit 0 with the same changes
    expect((await fleetx(['plan', '-f', 'services/web.yaml'], e, CWD)).code).toBe(0);
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    await finish(e, 'web', 'succeeded');
    const same = await plan();
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toBe('web is already at revision 1');
    expect((await plan('--set', 'greeting=hola')).code).toBe(2);
    // errors that would be 3 (invalid) and 6 (unavailable) are 1, so that 2 only means "changes"
    const bad = await fleetx(['plan', '--detailed-exitcode', '-f', 'services/bad.yaml'], e, CWD);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('services/bad.yaml:3: rollout.maxUnavailable must be a positive integer');
    expect((await fleetx(['plan', '-f', 'services/bad.yaml'], e, CWD)).code).toBe(EXIT.invalid);
    const down = await fleetx(['plan', '--detailed-exitcode', 'web'], { ...e, FLEETX_ENDPOINT: 'http://127.0.0.1:1', FLEETX_REQUEST_TIMEOUT: '1' }, CWD);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('unreachable');
  });

  it('reports service file errors with file, line and field and writes nothing', async () => {
    const e = env();
    const r = await fleetx(['deploy', '-f', 'services/bad.yaml'], e, CWD);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toContain('services/bad.yaml:3: rollout.maxUnavailable must be a positive integer');
    expect(r.stderr).toContain('services/bad.yaml:4: rollout.deadline must be a positive duration');
    expect(await snapshot(e)).toEqual({});
    expect((await fleetx(['deploy', 'nosuch'], e, CWD)).code).toBe(EXIT['not-found']);
    expect((await fleetx(['rollout', 'abort', 'a/b'], e, CWD)).code).toBe(EXIT.invalid);
  });
});

describe('surge (rollout.surge)', () => {
  it('deploy and rolling-restart create the surge instances in their transaction and list them in the rollout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetx-surge-'));
    try {
      mkdirSync(join(dir, 'units'));
      mkdirSync(join(dir, 'services'));
      copyFileSync(`${CWD}/units/web@.service.hbs`, join(dir, 'units', 'web@.service.hbs'));
      writeFileSync(join(dir, 'services', 'web.yaml'), readFileSync(`${CWD}/services/web.yaml`, 'utf8').replace('  maxUnavailable: 1', '  maxUnavailable: 1\n  surge: 1'));
      const e = env();
      const k = keysOf(e);
      // The first deploy only creates instances: nothing restarts, so no surge.
      expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, dir)).code).toBe(0);
      expect(Object.keys((await json<RolloutRecord>(k.rollout('web')))!.instances)).toEqual(['web@1.service', 'web@2.service']);
      expect(await json<UnitRecord>(k.unit('web@3.service'))).toBeUndefined();
      await finish(e, 'web', 'succeeded');

      const plan = await fleetx(['plan', 'web', '--set', 'port=9090'], e, dir);
      expect(plan.stdout).toContain('Surge instances (1, started first, destroyed when the rollout ends): web@3.service');
      expect(await json<UnitRecord>(k.unit('web@3.service'))).toBeUndefined();

      expect((await fleetx(['deploy', 'web', '--set', 'port=9090', '--detach'], e, dir)).code).toBe(0);
      const rev = (await json<RevisionRecord>(k.revision('web', 2)))!;
      const r = (await json<RolloutRecord>(k.rollout('web')))!;
      expect(Object.keys(r.instances).sort()).toEqual(['web@1.service', 'web@2.service', 'web@3.service']);
      expect(r.instances['web@1.service']).toMatchObject({ phase: 'pending' });
      expect(r.instances['web@1.service']?.surge).toBeUndefined();
      expect(r.instances['web@3.service']).toMatchObject({ phase: 'starting', surge: true, targetHash: rev.hash, startedAt: r.createdAt });
      expect(r.policy.surge).toBe(1);
      // written in the same transaction as the rollout record
      const unitKv = await client.get(k.unit('web@3.service')).exec();
      const lockKv = await client.get(k.rollout('web')).exec();
      expect(unitKv.kvs[0]!.mod_revision).toBe(lockKv.kvs[0]!.mod_revision);
      expect(await json<UnitRecord>(k.unit('web@3.service'))).toMatchObject({ hash: rev.hash, targetState: 'launched', template: 'web@.service' });
      await finish(e, 'web', 'succeeded');

      // The controller destroys surge instances at the end; here the test does.
      await client.delete().key(k.unit('web@3.service'));
      expect((await fleetx(['rolling-restart', 'web', '--detach'], e, dir)).code).toBe(0);
      const rr = (await json<RolloutRecord>(k.rollout('web')))!;
      expect(rr).toMatchObject({ kind: 'restart', policy: { surge: 1 } });
      expect(rr.instances['web@3.service']).toMatchObject({ phase: 'starting', surge: true, targetHash: rev.hash });
      const restartUnit = await client.get(k.unit('web@3.service')).exec();
      expect(restartUnit.kvs[0]!.mod_revision).toBe((await client.get(k.rollout('web')).exec()).kvs[0]!.mod_revision);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fleetx rolling-restart', () => {
  it('restarts hand-started instances of a plain template (no service)', async () => {
    const e = env();
    expect((await fleetx(['submit', 'job@.service'], e, `${CWD}/plain`)).code).toBe(0);
    expect((await fleetx(['start', '--no-block', 'job@1.service', 'job@2.service'], e, `${CWD}/plain`)).code).toBe(0);
    const r = await fleetx(['rolling-restart', 'job@', '--detach', '--max-unavailable', '2', '--deadline', '45s'], e, CWD);
    expect(r.code, r.stderr).toBe(0);
    const k = keysOf(e);
    const hash = (await json<UnitRecord>(k.unit('job@1.service')))!.hash;
    const rollout = (await json<RolloutRecord>(k.rollout('job')))!;
    expect(rollout).toMatchObject({
      service: 'job', template: 'job@.service', kind: 'restart', state: 'running', toHash: hash, presence: false, autoRevert: false,
      policy: { maxUnavailable: 2, deadlineMs: 45_000, minHealthyMs: 1000, surge: 0 },
    });
    expect(Object.keys(rollout.instances)).toEqual(['job@1.service', 'job@2.service']);
    expect(rollout.instances['job@2.service']).toMatchObject({ phase: 'pending', targetHash: hash });
    // the lock holds for restarts too
    expect((await fleetx(['rolling-restart', 'job@.service', '--detach'], e, CWD)).code).toBe(EXIT.conflict);
  });

  it('uses the stored service policy for app@-style names and refuses templates without instances', async () => {
    const e = env();
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    await finish(e, 'web', 'succeeded');
    expect((await fleetx(['rolling-restart', 'web', '--detach'], e, CWD)).code).toBe(0);
    expect(await json<RolloutRecord>(keysOf(e).rollout('web'))).toMatchObject({ kind: 'restart', toRevision: 1, policy: { minHealthyMs: 500, deadlineMs: 30_000 } });
    expect((await fleetx(['rolling-restart', 'none@'], e, CWD)).code).toBe(EXIT['not-found']);
  });
});

describe('fleetx rollout', () => {
  it('pause / resume / abort write the control record; without a rollout they say so', async () => {
    const e = env();
    const k = keysOf(e);
    const none = await fleetx(['rollout', 'abort', 'web'], e, CWD);
    expect(none.code).toBe(EXIT['not-found']);
    expect(none.stderr).toContain('no rollout of web is running');
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    const record = await client.get(k.rollout('web')).string();
    for (const command of ['pause', 'resume', 'abort']) {
      const r = await fleetx(['rollout', command, 'web'], e, CWD);
      expect(r.code, r.stderr).toBe(0);
      expect(await json(k.rolloutControl('web'))).toMatchObject({ command, by: expect.stringMatching(/^tester@/) });
    }
    // the controller's record is never written by users
    expect(await client.get(k.rollout('web')).string()).toBe(record);
  });

  it('history lists finished rollouts; status shows running ones', async () => {
    const e = env();
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    const status = await fleetx(['rollout', 'status'], e, CWD);
    expect(status.stdout).toMatch(/web\s+deploy\s+1\s+running\s+0\/2/); // the two instances it creates
    await finish(e, 'web', 'succeeded', '0 instance(s) on revision 1');
    expect((await fleetx(['deploy', 'web', '--set', 'greeting=hola', '--detach'], e, CWD)).code).toBe(0);
    await finish(e, 'web', 'failed', 'reverted to revision 1 after: web@1.service not healthy');
    const h = JSON.parse((await fleetx(['-o', 'json', 'rollout', 'history', 'web'], e, CWD)).stdout);
    expect(h).toMatchObject({ schema: 'fleetx/rollout-history/v1', service: 'web' });
    expect(h.rollouts.map((x: { kind: string; revision: string; state: string }) => [x.kind, x.revision, x.state])).toEqual([
      ['deploy', '1', 'succeeded'],
      ['deploy', '1->2', 'failed'],
    ]);
    const text = await fleetx(['rollout', 'history', 'web'], e, CWD);
    expect(text.stdout.split('\n')[0]).toMatch(/^ID\s+KIND\s+REVISION\s+STATE\s+HOLDER\s+COMMIT\s+STARTED\s+FINISHED$/);
    expect((await fleetx(['rollout', 'status'], e, CWD)).stdout).toBe('No rollouts running');
  });

  it('undo deploys the previous healthy revision as a new revision', async () => {
    const e = env();
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    await finish(e, 'web', 'succeeded');
    expect((await fleetx(['deploy', 'web', '--set', 'greeting=hola', '--detach'], e, CWD)).code).toBe(0);
    await finish(e, 'web', 'succeeded');
    const r = await fleetx(['rollout', 'undo', 'web', '--detach'], e, CWD);
    expect(r.code, r.stderr).toBe(0);
    const k = keysOf(e);
    const rev1 = (await json<RevisionRecord>(k.revision('web', 1)))!;
    expect(await json<RevisionRecord>(k.revision('web', 3))).toMatchObject({ hash: rev1.hash, values: rev1.values, healthy: false });
    expect(await json<RolloutRecord>(k.rollout('web'))).toMatchObject({ kind: 'undo', toRevision: 3, toHash: rev1.hash, autoRevert: false });
    expect((await json<ServiceRecord>(k.service('web')))!.values).toEqual(rev1.values);
  });
});

describe('following a rollout', () => {
  it('prints each change and exits 0 when the rollout succeeds', async () => {
    const e = env();
    expect((await fleetx(['submit', 'job@.service'], e, `${CWD}/plain`)).code).toBe(0);
    expect((await fleetx(['start', '--no-block', 'job@1.service'], e, `${CWD}/plain`)).code).toBe(0);
    const k = keysOf(e);
    const run = fleetx(['rolling-restart', 'job@'], e, CWD);
    const r0 = await waitFor('the job rollout', () => json<RolloutRecord>(k.rollout('job')));
    const at = (s: number) => new Date(Date.parse(r0.createdAt) + s * 1000).toISOString();
    for (const [i, phase] of (['stopping', 'starting', 'done'] as const).entries()) {
      const cur = (await json<RolloutRecord>(k.rollout('job')))!;
      const inst = { ...cur.instances['job@1.service']!, phase, since: at(i + 1) };
      await client.put(k.rollout('job')).value(JSON.stringify({ ...cur, updatedAt: at(i + 1), instances: { 'job@1.service': inst } }));
      await new Promise((r) => setTimeout(r, 100));
    }
    await finish(e, 'job', 'succeeded', '1 instance(s) on x');
    const res = await run;
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines).toContain(`${at(1).replace(/\.\d+Z/, 'Z')} job@1.service stopping`);
    expect(lines).toContain(`${at(3).replace(/\.\d+Z/, 'Z')} job@1.service done`);
    expect(lines.at(-1)).toMatch(/rolling restart of job succeeded: 1 instance\(s\) on x$/);
  });

  it('exits 7 when the rollout failed and was reverted, 1 when it failed and was not; as JSON lines with their schema', async () => {
    const e = env();
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    const follow = fleetx(['-o', 'json', 'rollout', 'status', 'web', '--follow'], e, CWD);
    await new Promise((r) => setTimeout(r, 300));
    await finish(e, 'web', 'failed', 'reverted to revision 1 after: web@2.service failed');
    const res = await follow;
    expect(res.code).toBe(EXIT.reverted);
    expect(JSON.parse(res.stderr)).toMatchObject({ schema: 'fleetx/error/v1', error: { kind: 'reverted', exitCode: 7, message: expect.stringContaining('the deploy of web to revision 1 failed and was reverted: reverted to revision 1 after: web@2.service failed') } });
    const lines = res.stdout.split('\n').map((l) => JSON.parse(l));
    expect(lines.every((ev) => ev.schema === 'fleetx/rollout-event/v1')).toBe(true);
    // no engine runs in this test: a notice says so; the record's events come in order around it
    const events = lines.filter((ev) => ev.type !== 'notice');
    expect(events.at(0)).toMatchObject({ type: 'state', state: 'running', service: 'web' });
    expect(events.at(-1)).toMatchObject({ type: 'state', state: 'failed' });

    // a failed instance left in place (no revert): 1
    expect((await fleetx(['deploy', 'web', '--set', 'greeting=hola', '--detach'], e, CWD)).code).toBe(0);
    await finish(e, 'web', 'failed', 'rollout failed (auto-revert is off): web@1.service: not healthy', (r) => ({
      ...r,
      instances: { ...r.instances, 'web@1.service': { ...r.instances['web@1.service']!, phase: 'failed', error: 'not healthy' } },
    }));
    const failed = await fleetx(['rollout', 'status', 'web', '--follow'], e, CWD);
    expect(failed.code).toBe(EXIT.failed);
    expect(failed.stderr).toContain('the deploy of web to revision 2 failed: rollout failed (auto-revert is off)');
  });

  it('--timeout stops following with exit 9 and leaves the rollout running; says at once that no engine leader is alive', async () => {
    const e = env();
    const dir = tmp();
    const r = await fleetx(['deploy', '-f', 'services/web.yaml', '--timeout', '1500ms', '--report', `${dir}/r.json`, '--report', `${dir}/junit.xml`], e, CWD);
    expect(r.code).toBe(EXIT.timeout);
    const lines = r.stderr.split('\n');
    const noLeader = lines.findIndex((l) => /^20\d\d-\S+Z no engine leader is alive: nothing moves a rollout until an agent with the engine runs\. Check: fleetx list-machines/.test(l));
    const stopped = lines.findIndex((l) => l.includes('stopped waiting after 1.5s (--timeout): the rollout of web continues'));
    expect(noLeader, r.stderr).toBeGreaterThanOrEqual(0);
    expect(noLeader).toBeLessThan(stopped);
    expect(await json(keysOf(e).rollout('web'))).toBeDefined();
    const report = JSON.parse(readFileSync(join(lastTmp, 'r.json'), 'utf8'));
    expect(report).toMatchObject({ schema: 'fleetx/report/v1', command: 'deploy', service: 'web', outcome: 'timeout', exitCode: 9, rollout: { kind: 'deploy', state: 'running', toRevision: 1 } });
    expect(report.instances.map((i: { unit: string }) => i.unit)).toEqual(['web@1.service', 'web@2.service']);
    const xml = readFileSync(join(lastTmp, 'junit.xml'), 'utf8');
    expect(xml).toContain('<testsuite name="fleetx deploy web" tests="3" failures="1"');
    expect(xml).toContain('<failure type="timeout"');
  });

  it('rollout status --follow says when no engine leader is alive too, and --timeout ends it with 9', async () => {
    const e = env();
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    const r = await fleetx(['rollout', 'status', 'web', '--follow', '--timeout', '1s'], e, CWD);
    expect(r.code).toBe(EXIT.timeout);
    expect(r.stderr).toMatch(/^20\S+Z no engine leader is alive: nothing moves a rollout until an agent with the engine runs/m);
    const j = await fleetx(['-o', 'json', 'rollout', 'status', 'web', '--follow', '--timeout', '1s'], e, CWD);
    expect(j.stdout.split('\n').map((l) => JSON.parse(l))).toContainEqual(expect.objectContaining({ schema: 'fleetx/rollout-event/v1', type: 'notice', notice: 'no-engine-leader' }));
  });

  it('-o json: a detached deploy ends with its report; a refused one with the error (holder named) on stderr and a "locked" report', async () => {
    const e = env({ BUILD_TAG: 'jenkins-web-1' });
    const r = await fleetx(['-o', 'json', 'deploy', '-f', 'services/web.yaml', '--detach'], e, CWD);
    expect(r.code, r.stderr).toBe(0);
    const started = JSON.parse(r.stdout);
    expect(started).toMatchObject({ schema: 'fleetx/report/v1', command: 'deploy', service: 'web', outcome: 'started', exitCode: 0, rollout: { state: 'running', holder: { build: 'jenkins-web-1' } } });
    const refused = await fleetx(['-o', 'json', 'deploy', 'web', '--set', 'greeting=hola', '--report', `${tmp()}/locked.json`], { ...e, BUILD_TAG: 'jenkins-web-2' }, CWD);
    expect(refused.code).toBe(EXIT.conflict);
    const err = JSON.parse(refused.stderr);
    expect(err).toMatchObject({ schema: 'fleetx/error/v1', error: { kind: 'conflict', exitCode: 5, lock: { service: 'web', rollout: started.rollout.id, holder: { build: 'jenkins-web-1' }, aborting: false } } });
    expect(JSON.parse(refused.stdout)).toMatchObject({ outcome: 'locked', exitCode: 5 });
    expect(JSON.parse(readFileSync(join(lastTmp, 'locked.json'), 'utf8'))).toMatchObject({ outcome: 'locked', error: { lock: { by: expect.stringContaining('(jenkins-web-1)') } } });
  });

  it('SIGTERM while following (--on-abort=abort, the default): asks the rollout to abort, exits 143, reports it; the next deploy waits for it and goes on', async () => {
    const e = env({ BUILD_TAG: 'jenkins-web-41' });
    const dir = tmp();
    const { code, out, err } = await stopWhileFollowing(['deploy', '-f', 'services/web.yaml', '--report', `${dir}/r.json`, '--report', `${dir}/junit.xml`], { ...e, CI: 'true' }, 'SIGTERM');
    expect(code, err).toBe(143);
    expect(err).toContain('build stopped by SIGTERM (--on-abort=abort): abort requested');
    expect(out + err).not.toMatch(/\x1b\[/);
    const k = keysOf(e);
    expect(await json(k.rolloutControl('web'))).toMatchObject({ command: 'abort', by: expect.stringContaining('(jenkins-web-41), stopped by SIGTERM') });
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report).toMatchObject({ outcome: 'interrupted', exitCode: 143, interrupted: { signal: 'SIGTERM', onAbort: 'abort', action: expect.stringContaining('abort requested') } });
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain('<failure type="interrupted"');

    // the next build: the lock's rollout is being aborted, so it waits for its end instead of being refused
    const next = startCli(['deploy', 'web', '--set', 'greeting=hola', '--detach', '--timeout', '30s'], { ...e, BUILD_TAG: 'jenkins-web-42' });
    await waitFor('the next deploy to wait for the aborted rollout', () => next.io.err.includes('waiting for the aborted'));
    expect(next.io.err).toMatch(/waiting for the aborted deploy to revision 1 of web by tester@\S+ \(jenkins-web-41\) \(rollout \S+\) to end; then deploying/);
    expect(await json<RolloutRecord>(k.rollout('web'))).toMatchObject({ holder: { build: 'jenkins-web-41' } });
    // the engine ends the aborted rollout (played here), and the waiting build goes on
    await finish(e, 'web', 'aborted', 'aborted by a build');
    expect(await next.exited, next.io.err).toBe(0);
    expect(await json<RolloutRecord>(k.rollout('web'))).toMatchObject({ holder: { build: 'jenkins-web-42' }, toRevision: 2 });
  });

  it('SIGTERM with --on-abort=detach leaves the rollout running, with --on-abort=pause asks it to pause', async () => {
    for (const [onAbort, control] of [['detach', undefined], ['pause', 'pause']] as const) {
      const e = env();
      const { code, err } = await stopWhileFollowing(['deploy', '-f', 'services/web.yaml', `--on-abort=${onAbort}`], e, 'SIGTERM');
      expect(code).toBe(143);
      expect(err).toContain(`(--on-abort=${onAbort})`);
      expect((await json<{ command: string }>(keysOf(e).rolloutControl('web')))?.command).toBe(control);
      expect(await json<RolloutRecord>(keysOf(e).rollout('web'))).toMatchObject({ state: 'running' });
    }
  });

  it('posts rollout.started and rollout.finished to FLEETX_WEBHOOK_URL, retrying, with the token from a file; a failing webhook is a warning without secrets', async () => {
    const got: Array<{ auth?: string; body: { event: string; outcome?: string; holder: { build?: string } } }> = [];
    let failFirst = true;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (req.url !== '/hooks/s3cret-path') return void res.writeHead(404).end();
        if (failFirst) {
          failFirst = false;
          return void res.writeHead(503).end();
        }
        got.push({ auth: req.headers.authorization, body: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const dir = tmp();
      writeFileSync(join(dir, 'token'), 'tok-123\n');
      const e = env({ BUILD_TAG: 'jenkins-web-9', FLEETX_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks/s3cret-path`, FLEETX_WEBHOOK_TOKEN_FILE: join(dir, 'token') });
      const r = await fleetx(['deploy', '-f', 'services/web.yaml', '--timeout', '1s'], e, CWD);
      expect(r.code).toBe(EXIT.timeout);
      expect(got.map((g) => [g.body.event, g.body.outcome])).toEqual([['rollout.started', undefined], ['rollout.finished', 'timeout']]);
      expect(got.every((g) => g.auth === 'Bearer tok-123' && g.body.holder.build === 'jenkins-web-9')).toBe(true);

      // nothing answers: a warning naming the origin only; the exit code is the deploy's own
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const gone = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
      await new Promise((r) => closed.close(r));
      const down = await fleetx(['deploy', 'web', '--set', 'greeting=x', '--timeout', '1s'], { ...e, FLEETX_WEBHOOK_URL: `${gone}/hooks/s3cret-path` }, CWD);
      expect(down.code).toBe(EXIT.conflict);
      await finish(e, 'web', 'aborted');
      const unreachable = await fleetx(['deploy', 'web', '--set', 'greeting=x', '--timeout', '1s'], { ...e, FLEETX_WEBHOOK_URL: `${gone}/hooks/s3cret-path` }, CWD);
      expect(unreachable.code).toBe(EXIT.timeout);
      expect(unreachable.stderr).toContain(`fleetx: warning: webhook rollout.started to ${gone} failed after 3 attempt(s): ECONNREFUSED`);
      expect(unreachable.stderr).not.toContain('s3cret');
      expect(unreachable.stderr).not.toContain('tok-123');
    } finally {
      server.close();
    }
  });

  it('Ctrl-C (SIGINT) of the real binary detaches with 130 and leaves the rollout running', async () => {
    const e = env();
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    const { code, err } = await stopWhileFollowing(['rollout', 'status', 'web', '--follow'], e, 'SIGINT');
    expect(code).toBe(130);
    expect(err).toContain('Detached: the rollout of web continues. Follow it with: fleetx rollout status web --follow');
    expect(await json<RolloutRecord>(keysOf(e).rollout('web'))).toMatchObject({ state: 'running' });
  });

  it('deploy stores changed settings without a rollout when the unit is the same', async () => {
    const e = env();
    expect((await fleetx(['deploy', '-f', 'services/web.yaml', '--detach'], e, CWD)).code).toBe(0);
    await finish(e, 'web', 'succeeded');
    const svc = (await json<ServiceRecord>(keysOf(e).service('web')))!;
    await client.put(keysOf(e).service('web')).value(JSON.stringify({ ...svc, rollout: { ...svc.rollout, maxUnavailable: 5 } }));
    const r = await fleetx(['deploy', '-f', 'services/web.yaml'], e, CWD);
    expect(r.stdout).toBe('web is already at revision 1; its service settings were updated');
    expect((await json<ServiceRecord>(keysOf(e).service('web')))!.rollout.maxUnavailable).toBe(1);
    expect(await json(keysOf(e).rollout('web'))).toBeUndefined();
  });
});
