/**
 * The command, webhook and etcd presence drivers against real things: a
 * real child process, a real HTTP server, a real etcd.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandDriver } from '../../src/presence/drivers/command.js';
import { EtcdDriver } from '../../src/presence/drivers/etcd.js';
import { createDriver } from '../../src/presence/drivers/index.js';
import { WebhookDriver } from '../../src/presence/drivers/webhook.js';
import type { Desired } from '../../src/presence/types.js';
import { connect } from '../../src/registry/client.js';
import { resolveConnection } from '../../src/registry/connection.js';
import { freePort, startEtcd, type EtcdServer } from '../helpers/etcd.js';

const inD = (unit: string, address = '10.0.0.1'): Desired => ({ unit, address, port: 8080, want: 'in', reason: 'test' });
const outD = (unit: string, address?: string): Desired => ({ unit, ...(address ? { address } : {}), port: 8080, want: 'out', reason: 'test' });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleetx-presence-drivers-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('command driver', () => {
  // a node one-liner that appends its argv and FLEETX_*/FLEETCTL_* variables to a file, then exits with $EXIT_WITH
  const script = [
    'const fs = require("fs");',
    'const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(FLEETX|FLEETCTL)_/.test(k)));',
    'fs.appendFileSync(process.argv[1], JSON.stringify({ argv: process.argv.slice(2), env }) + "\\n");',
    'process.exit(Number(process.env.EXIT_WITH || 0));',
  ].join(' ');
  const calls = async (file: string) => (existsSync(file) ? (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l)) : []);

  it('passes argv and the change literally (no shell): spaces, quotes and $(...) stay as written', async () => {
    const log = join(dir, 'cmd.log');
    const canary = join(dir, 'pwned');
    const weird = `we ird "q" 'q' $(touch ${canary}) \`touch ${canary}\` ; touch ${canary}`;
    const env = { PATH: process.env.PATH, FLEETX_ETCD_PASSWORD: 'etcd-secret', FLEETCTL_ENDPOINT: 'http://x:2379', FLEETX_PRESENCE_UNIT: 'stale' };
    const driver = new CommandDriver({ service: weird, argv: [process.execPath, '-e', script, log, weird, '*'], env });
    const got = await driver.apply([inD('app@1.service'), outD('app@2.service')]);
    expect(got).toEqual([
      { unit: 'app@1.service', state: 'in', address: '10.0.0.1' },
      { unit: 'app@2.service', state: 'out' },
    ]);
    // the two instances' commands run side by side: their lines come in any order
    const c = (await calls(log)).sort((a, b) => a.env.FLEETX_PRESENCE_UNIT.localeCompare(b.env.FLEETX_PRESENCE_UNIT));
    expect(c).toHaveLength(2);
    expect(c[0].argv).toEqual([weird, '*']);
    expect(c[0].env).toEqual({
      FLEETX_PRESENCE_SERVICE: weird,
      FLEETX_PRESENCE_UNIT: 'app@1.service',
      FLEETX_PRESENCE_ADDRESS: '10.0.0.1',
      FLEETX_PRESENCE_PORT: '8080',
      FLEETX_PRESENCE_STATE: 'in',
    });
    expect(c[1].env).toMatchObject({ FLEETX_PRESENCE_UNIT: 'app@2.service', FLEETX_PRESENCE_STATE: 'out', FLEETX_PRESENCE_ADDRESS: '' });
    expect(existsSync(canary)).toBe(false);
    // (the env check above is exact: the syncer's FLEETX_*/FLEETCTL_* settings, e.g. an etcd password, are not passed on)

    // unchanged instances are not pushed again; a changed address is
    await driver.apply([inD('app@1.service'), outD('app@2.service')]);
    expect(await calls(log)).toHaveLength(2);
    await driver.apply([inD('app@1.service', '10.0.0.9'), outD('app@2.service')]);
    const after = await calls(log);
    expect(after).toHaveLength(3);
    expect(after[2].env.FLEETX_PRESENCE_ADDRESS).toBe('10.0.0.9');
  });

  it('a failing command is a per-instance error, retried on the next apply; state stays what was last applied', async () => {
    const log = join(dir, 'fail.log');
    const env = { PATH: process.env.PATH, EXIT_WITH: '3' };
    const driver = new CommandDriver({ service: 'app', argv: [process.execPath, '-e', script, log], env });
    const [first] = await driver.apply([inD('app@1.service')]);
    expect(first).toMatchObject({ unit: 'app@1.service', state: 'unknown' });
    expect(first!.error).toMatch(/exited 3/);
    env.EXIT_WITH = '0';
    expect(await driver.apply([inD('app@1.service')])).toEqual([{ unit: 'app@1.service', state: 'in', address: '10.0.0.1' }]);
    env.EXIT_WITH = '1';
    const [third] = await driver.apply([outD('app@1.service')]);
    expect(third).toMatchObject({ state: 'in', error: expect.stringMatching(/exited 1/) });
    expect(await calls(log)).toHaveLength(3);
  });

  it('a command that hangs is killed after the timeout; a missing program is reported', async () => {
    const slow = new CommandDriver({ service: 'app', argv: [process.execPath, '-e', 'setTimeout(() => {}, 10000)'], timeoutMs: 300 });
    const [r] = await slow.apply([inD('app@1.service')]);
    expect(r!.error).toMatch(/killed after 300 ms/);
    const missing = new CommandDriver({ service: 'app', argv: [join(dir, 'no-such-program')] });
    const [m] = await missing.apply([inD('app@1.service')]);
    expect(m!.error).toMatch(/cannot run .*ENOENT/);
  });

  it('an empty argv is a usage error', () => {
    expect(() => new CommandDriver({ service: 'app', argv: [] })).toThrow(expect.objectContaining({ kind: 'usage' }));
  });
});

describe('webhook driver', () => {
  let server: Server;
  let url: string;
  let answer = 204;
  const got: Array<{ headers: IncomingHttpHeaders; body: unknown }> = [];
  const TOKEN = 's3cret-token-value';

  beforeAll(async () => {
    const port = await freePort();
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        got.push({ headers: req.headers, body: JSON.parse(body) });
        res.writeHead(answer).end();
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${port}/presence`;
    await writeFile(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('POSTs the change as JSON with the bearer token from the file', async () => {
    const driver = new WebhookDriver({ service: 'app', url, tokenFile: join(dir, 'token') });
    expect(await driver.apply([inD('app@1.service'), outD('app@2.service', '10.0.0.2')])).toEqual([
      { unit: 'app@1.service', state: 'in', address: '10.0.0.1' },
      { unit: 'app@2.service', state: 'out', address: '10.0.0.2' },
    ]);
    // changes of different instances go out side by side: in any order
    expect(got.map((g) => g.body)).toEqual(expect.arrayContaining([
      { service: 'app', unit: 'app@1.service', address: '10.0.0.1', port: 8080, state: 'in' },
      { service: 'app', unit: 'app@2.service', address: '10.0.0.2', port: 8080, state: 'out' },
    ]));
    expect(got).toHaveLength(2);
    for (const g of got) {
      expect(g.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(g.headers['content-type']).toBe('application/json');
    }
  });

  it('sends the changes of different instances side by side, not one after another', async () => {
    // This server answers nothing until three requests are open at once:
    // sent one after another, the first would wait for its answer forever
    // (the driver's timeout then fails every instance).
    const open: ServerResponse[] = [];
    const gate = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        open.push(res);
        if (open.length === 3) for (const r of open) r.writeHead(204).end();
      });
    });
    const port = await freePort();
    await new Promise<void>((r) => gate.listen(port, '127.0.0.1', () => r()));
    try {
      const driver = new WebhookDriver({ service: 'app', url: `http://127.0.0.1:${port}/`, timeoutMs: 20_000 });
      const res = await driver.apply([inD('app@1.service'), inD('app@2.service'), inD('app@3.service')]);
      expect(res.map((r) => [r.unit, r.state, r.error])).toEqual([
        ['app@1.service', 'in', undefined],
        ['app@2.service', 'in', undefined],
        ['app@3.service', 'in', undefined],
      ]);
    } finally {
      gate.closeAllConnections();
      await new Promise((r) => gate.close(r));
    }
  });

  it('a non-2xx answer is a per-instance error that never shows the token; retried next time', async () => {
    got.length = 0;
    answer = 503;
    const driver = new WebhookDriver({ service: 'app', url, tokenFile: join(dir, 'token') });
    const [r] = await driver.apply([inD('app@1.service')]);
    expect(r).toMatchObject({ unit: 'app@1.service', state: 'unknown', error: expect.stringMatching(/answered 503/) });
    expect(r!.error).not.toContain(TOKEN);
    answer = 200;
    expect((await driver.apply([inD('app@1.service')]))[0]).toEqual({ unit: 'app@1.service', state: 'in', address: '10.0.0.1' });
    expect(got).toHaveLength(2);
  });

  it('an unreachable URL and a timeout are per-instance errors; an unreadable token file is a usage error', async () => {
    const refused = new WebhookDriver({ service: 'app', url: `http://127.0.0.1:${await freePort()}/x` });
    expect((await refused.apply([inD('app@1.service')]))[0]!.error).toMatch(/ECONNREFUSED/);
    const silent = createServer(() => undefined);
    const port = await freePort();
    await new Promise<void>((r) => silent.listen(port, '127.0.0.1', () => r()));
    try {
      const slow = new WebhookDriver({ service: 'app', url: `http://127.0.0.1:${port}/`, timeoutMs: 200 });
      expect((await slow.apply([inD('app@1.service')]))[0]!.error).toMatch(/no answer within 200 ms/);
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
    const noToken = new WebhookDriver({ service: 'app', url, tokenFile: join(dir, 'missing-token') });
    await expect(noToken.apply([inD('app@1.service')])).rejects.toMatchObject({ kind: 'usage' });
    expect(() => new WebhookDriver({ service: 'app', url: 'ftp://x/' })).toThrow(expect.objectContaining({ kind: 'usage' }));
  });
});

describe('etcd driver', () => {
  let etcd: EtcdServer;
  let client: Etcd3;
  const conn = () => resolveConnection({ endpoint: etcd.endpoints[0] }, {});

  beforeAll(async () => {
    etcd = await startEtcd();
    client = connect(conn());
  });
  afterAll(async () => {
    client?.close();
    await etcd?.stop();
  });

  const keysUnder = async (p: string) => client.getAll().prefix(p).strings();

  it('keeps prefix/unit = address:port for instances in, none for instances out', async () => {
    const driver = new EtcdDriver({ client, etcdPrefix: '/lb/app/', connection: conn() });
    expect(await driver.apply([inD('app@1.service'), inD('app@2.service', '10.0.0.2'), outD('app@3.service')])).toEqual([
      { unit: 'app@1.service', state: 'in', address: '10.0.0.1' },
      { unit: 'app@2.service', state: 'in', address: '10.0.0.2' },
      { unit: 'app@3.service', state: 'out' },
    ]);
    expect(await keysUnder('/lb/app/')).toEqual({ '/lb/app/app@1.service': '10.0.0.1:8080', '/lb/app/app@2.service': '10.0.0.2:8080' });
    await driver.apply([outD('app@1.service'), inD('app@2.service', '10.0.0.7')]);
    expect(await keysUnder('/lb/app/')).toEqual({ '/lb/app/app@2.service': '10.0.0.7:8080' });
  });

  it('reports keys it was not asked about as in, so the syncer takes them out', async () => {
    await client.put('/lb/app/app@9.service').value('10.0.0.9:8080').exec();
    const driver = createDriver({ driver: 'etcd', port: 8080, etcdPrefix: '/lb/app', drainTimeoutMs: 0 }, { service: 'app', template: 'app@.service', client, connection: conn() })!;
    const got = await driver.apply([inD('app@2.service', '10.0.0.7')]);
    expect(got).toContainEqual({ unit: 'app@9.service', state: 'in', address: '10.0.0.9' });
    await driver.apply([inD('app@2.service', '10.0.0.7'), outD('app@9.service')]);
    expect(Object.keys(await keysUnder('/lb/app/'))).toEqual(['/lb/app/app@2.service']);
  });

  it('etcd down is unavailable; a relative prefix is a usage error', async () => {
    const dead = connect(resolveConnection({ endpoint: `http://127.0.0.1:${await freePort()}`, requestTimeout: '0.5' }, {}));
    try {
      const driver = new EtcdDriver({ client: dead, etcdPrefix: '/lb/app', connection: conn() });
      await expect(driver.apply([inD('app@1.service')])).rejects.toMatchObject({ kind: 'unavailable' });
    } finally {
      dead.close();
    }
    expect(() => new EtcdDriver({ client, etcdPrefix: 'lb/app', connection: conn() })).toThrow(expect.objectContaining({ kind: 'usage' }));
  });
});

describe('createDriver', () => {
  it.each([
    [{ driver: 'haproxy', port: 1, backend: 'app' }, /presence.socket/],
    [{ driver: 'haproxy', port: 1, socket: '/run/x.sock' }, /presence.backend/],
    [{ driver: 'webhook', port: 1 }, /presence.url/],
    [{ driver: 'command', port: 1, command: [] }, /presence.command/],
    [{ driver: 'etcd', port: 1 }, /presence.etcdPrefix/],
  ])('%o without what it needs is a usage error', (cfg, msg) => {
    const ctx = { service: 'app', template: 'app@.service', client: undefined as unknown as Etcd3, connection: { endpoints: [], requestTimeoutMs: 1, prefix: '/fleetx' } };
    expect(() => createDriver({ drainTimeoutMs: 0, ...cfg } as never, ctx)).toThrow(expect.objectContaining({ kind: 'usage', message: expect.stringMatching(msg) }));
  });
});
