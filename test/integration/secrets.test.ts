/**
 * Secrets against a real etcd with authentication and the sandbox's roles
 * (src/sandbox/etcd-auth.ts): the operator stores and lists but can never
 * read a value; the agent reads values and writes a unit's 0600 env file;
 * no value reaches `cat`, `plan`, `secret list`, or any key the operator can read.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/registry/client.js';
import { keyspace } from '../../src/registry/keys.js';
import { AGENT_USER, ensureEtcdAuth, newEtcdAuth, OPERATOR_USER, type SandboxEtcdAuth } from '../../src/sandbox/etcd-auth.js';
import { SecretFiles } from '../../src/secrets/files.js';
import { SecretStore } from '../../src/secrets/store.js';
import { fleetx } from '../helpers/cli.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { rejection } from '../helpers/errors.js';

const etcd = useEtcd({ auth: true });
const keys = keyspace('/fleetx');
const VALUE = 'dd-0123456789abcdef-"quoted" $HOME `x`';
let auth: SandboxEtcdAuth;
let dir: string;

const conn = (who: 'agent' | 'operator') => ({
  endpoints: [etcd.endpoint],
  requestTimeoutMs: 3000,
  prefix: '/fleetx',
  username: auth[who].username,
  password: auth[who].password,
});
const operatorEnv = () => ({ FLEETX_ENDPOINT: etcd.endpoint, FLEETX_ETCD_USERNAME: OPERATOR_USER, FLEETX_ETCD_PASSWORD: auth.operator.password, FLEETX_USER: 'ops' });

const UNIT = [
  '[Service]',
  'EnvironmentFile=/run/fleetx/secrets/%n.env',
  'ExecStart=/usr/bin/podman run --rm --env DD_API_KEY --name dd-agent registry.local/dd-agent:7',
  '',
  '[X-Fleet]',
  'Global=true',
  '',
  '[X-Fleet-Secrets]',
  'DD_API_KEY=dd-api-key',
  '',
].join('\n');

beforeAll(async () => {
  auth = { ...newEtcdAuth(), rootPassword: etcd.server.rootPassword! };
  // the sandbox's own set-up, on an etcd whose auth is already on (the idempotent path)
  await ensureEtcdAuth([etcd.endpoint], auth);
  dir = await mkdtemp(join(tmpdir(), 'fleetx-secrets-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function withStore<T>(who: 'agent' | 'operator', fn: (s: SecretStore) => Promise<T>): Promise<T> {
  const c = connect(conn(who));
  try {
    return await fn(new SecretStore(c, keys, conn(who)));
  } finally {
    c.close();
  }
}

async function readAllAs(who: 'agent' | 'operator', prefix: string): Promise<string[]> {
  const c = connect(conn(who));
  try {
    const kvs = await c.getAll().prefix(prefix).strings();
    return Object.entries(kvs).map(([k, v]) => `${k}=${v}`);
  } finally {
    c.close();
  }
}

describe('fleetx secret, as the operator', () => {
  it('set reads the value from stdin, stores version 1, and never prints it', async () => {
    const r = await fleetx(['secret', 'set', 'dd-api-key'], operatorEnv(), process.cwd(), `${VALUE}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('secret dd-api-key version 1 stored; units get it at their next start (e.g. fleetx rolling-restart SERVICE)');
    expect(r.stderr).toBe(''); // the operator cannot read values back: no warning
    expect(`${r.stdout}${r.stderr}`).not.toContain('0123456789abcdef');
  });

  it('set from a file makes version 2; list shows names and versions, never values', async () => {
    const f = join(dir, 'key');
    await writeFile(f, `${VALUE}\n`, { mode: 0o600 });
    expect((await fleetx(['secret', 'set', 'dd-api-key', '--from-file', f], operatorEnv())).code).toBe(0);
    const list = await fleetx(['secret', 'list', '-o', 'json'], operatorEnv());
    expect(list.code, list.stderr).toBe(0);
    const secrets = (JSON.parse(list.stdout) as { secrets: Array<Record<string, unknown>> }).secrets;
    expect(secrets).toMatchObject([{ name: 'dd-api-key', version: 2 }]);
    expect(secrets[0]!.updatedBy).toMatch(/^ops@/);
    expect(list.stdout).not.toContain('0123456789abcdef');
  });

  it('the operator cannot read the value: etcd refuses, and nothing the operator can read holds it', async () => {
    await withStore('operator', async (store) => {
      const e = await rejection(store.values(['dd-api-key']), 'usage');
      expect(e.message).toBe(`etcd user ${OPERATOR_USER} may not read secret values (keys under /fleetx-secrets/)`);
      expect(await store.valuesReadable('dd-api-key')).toBe(false);
    });
    await expect(readAllAs('operator', '')).rejects.toThrow(/permission denied/); // every key
    await expect(readAllAs('operator', '/fleetx-secrets/')).rejects.toThrow(/permission denied/);
    const readable = await readAllAs('operator', '/fleetx/');
    expect(readable.some((kv) => kv.startsWith('/fleetx/secret/dd-api-key='))).toBe(true);
    expect(readable.join('\n')).not.toContain('0123456789abcdef');
  });

  it('a value on the command line is impossible, and stdin from a terminal is refused', async () => {
    const r = await fleetx(['secret', 'set', 'dd-api-key', 'hunter2'], operatorEnv());
    expect(r.code).toBe(2);
    const tty = await fleetx(['secret', 'set', 'dd-api-key'], operatorEnv());
    expect(tty.code).toBe(2);
    expect(tty.stderr).toMatch(/stdin or --from-file/);
  });

  it('a user that can read values gets a warning (auth off or a role too wide)', async () => {
    const env = { FLEETX_ENDPOINT: etcd.endpoint, FLEETX_ETCD_USERNAME: etcd.server.username, FLEETX_ETCD_PASSWORD: etcd.server.password };
    const r = await fleetx(['secret', 'set', 'other'], env, process.cwd(), 'x');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: etcd user fleetx can read secret values/);
    expect((await fleetx(['secret', 'rm', 'other'], env)).code).toBe(0);
  });

  it('submit and cat: the unit names the secret, the value is nowhere in it', async () => {
    await writeFile(join(dir, 'dd-agent.service'), UNIT);
    const submit = await fleetx(['submit', 'dd-agent.service'], operatorEnv(), dir);
    expect(submit.code, submit.stderr).toBe(0);
    const cat = await fleetx(['cat', 'dd-agent.service'], operatorEnv());
    expect(cat.stdout).toContain('DD_API_KEY=dd-api-key');
    expect(cat.stdout).not.toContain('0123456789abcdef');
  });

  it('a unit naming secrets without the EnvironmentFile line is refused at submit (3)', async () => {
    await writeFile(join(dir, 'bad.service'), UNIT.replace('EnvironmentFile=/run/fleetx/secrets/%n.env\n', ''));
    const r = await fleetx(['submit', 'bad.service'], operatorEnv(), dir);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/lacks EnvironmentFile=\/run\/fleetx\/secrets\/%n\.env/);
  });
});

describe('plan: secrets by name only', () => {
  const TEMPLATE = [
    '[Unit]',
    'Description=api %i',
    '[Service]',
    '{{#if secretEnv}}EnvironmentFile=/run/fleetx/secrets/%n.env{{/if}}',
    'ExecStart=/usr/bin/podman run --rm --name api-%i{{#each secretEnv}} --env {{@key}}{{/each}} {{image}}',
    '[X-Fleet-Secrets]',
    '{{#each secretEnv}}',
    '{{@key}}={{this}}',
    '{{/each}}',
    '',
  ].join('\n');
  const SERVICE = ['name: api', 'template: api@.service', 'values:', '  image: registry.local/api:1', '  secretEnv:', '    API_TOKEN: api-token', 'instances: 2', ''].join('\n');

  it('the plan shows the reference, never the value; a value that looks like a password is refused before anything is shown', async () => {
    const cwd = join(dir, 'svc');
    await mkdir(join(cwd, 'units'), { recursive: true });
    await mkdir(join(cwd, 'services'), { recursive: true });
    await writeFile(join(cwd, 'units', 'api@.service.hbs'), TEMPLATE);
    await writeFile(join(cwd, 'services', 'api.yaml'), SERVICE);
    expect((await fleetx(['secret', 'set', 'api-token'], operatorEnv(), cwd, 'tok-9f8e7d6c5b4a3210')).code).toBe(0);

    const plan = await fleetx(['plan', '-f', 'services/api.yaml'], operatorEnv(), cwd);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('API_TOKEN=api-token');
    expect(plan.stdout).toContain('--env API_TOKEN');
    expect(`${plan.stdout}${plan.stderr}`).not.toContain('tok-9f8e7d6c5b4a3210');

    const refused = await fleetx(['plan', '-f', 'services/api.yaml', '--set', 'env.DB_PASS=hunter2', '--set', 'args[0]=--db-password=hunter2'], operatorEnv(), cwd);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/env\.DB_PASS looks like a secret by its name/);
    expect(refused.stderr).toContain('fleetx secret set NAME');
    expect(`${refused.stdout}${refused.stderr}`).not.toContain('hunter2');
  });
});

describe('the agent writes the env file', () => {
  const sync = (units: Array<{ name: string; text?: string }>) => withStore('agent', (store) => new SecretFiles(store, join(dir, 'run')).sync(units));

  it('0600 in a 0700 dir, with the value systemd will read back', async () => {
    const report = await sync([{ name: 'dd-agent.service', text: UNIT }, { name: 'plain.service', text: '[Service]\nExecStart=/bin/true\n' }]);
    expect(report).toEqual({ written: ['dd-agent.service'], removed: [], missing: [], invalid: [] });
    const file = join(dir, 'run', 'dd-agent.service.env');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'run'))).mode & 0o777).toBe(0o700);
    expect(await readFile(file, 'utf8')).toBe(`# written by the fleetx agent from etcd secrets; do not edit\nDD_API_KEY="dd-0123456789abcdef-\\"quoted\\" \\$HOME \\\`x\\\`"\n`);
  });

  it('an unchanged value is not rewritten; a rotated one is', async () => {
    expect((await sync([{ name: 'dd-agent.service', text: UNIT }])).written).toEqual([]);
    expect((await fleetx(['secret', 'set', 'dd-api-key'], operatorEnv(), process.cwd(), 'rotated-value')).code).toBe(0);
    expect((await sync([{ name: 'dd-agent.service', text: UNIT }])).written).toEqual(['dd-agent.service']);
    expect(await readFile(join(dir, 'run', 'dd-agent.service.env'), 'utf8')).toContain('DD_API_KEY="rotated-value"');
  });

  it('a body not fetched yet keeps its file; a unit no longer scheduled loses it', async () => {
    expect((await sync([{ name: 'dd-agent.service' }])).removed).toEqual([]);
    expect((await sync([])).removed).toEqual(['dd-agent.service']);
  });

  it('a removed secret: no file, and the missing name is reported (so the unit cannot start without it)', async () => {
    await sync([{ name: 'dd-agent.service', text: UNIT }]);
    expect((await fleetx(['secret', 'rm', 'dd-api-key'], operatorEnv())).code).toBe(0);
    const report = await sync([{ name: 'dd-agent.service', text: UNIT }]);
    expect(report.missing).toEqual([{ unit: 'dd-agent.service', secrets: ['dd-api-key'] }]);
    expect(report.removed).toEqual(['dd-agent.service']);
    expect((await fleetx(['secret', 'rm', 'dd-api-key'], operatorEnv())).code).toBe(4);
  });

  it('the agent role may read values but an agent user cannot be mistaken for the operator', async () => {
    expect(AGENT_USER).not.toBe(OPERATOR_USER);
    expect(await withStore('agent', (s) => s.valuesReadable('x'))).toBe(true);
  });
});
