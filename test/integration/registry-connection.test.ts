import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { resolveConnection } from '../../src/registry/connection.js';
import { openRegistry } from '../../src/registry/open.js';
import { freePort, startEtcd, type EtcdServer } from '../helpers/etcd.js';

const execFileP = promisify(execFile);

/** A TCP server that accepts connections and never says a word: etcd hung or a black hole. */
async function silentServer(): Promise<{ endpoint: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

async function failure(endpoint: string, timeoutSeconds: string): Promise<{ error: FleetxError; ms: number }> {
  const conn = resolveConnection({ endpoint, 'request-timeout': timeoutSeconds }, {});
  const { registry, close } = openRegistry(conn);
  const started = Date.now();
  try {
    await registry.listUnits();
    throw new Error('expected listUnits to fail');
  } catch (e) {
    expect(e).toBeInstanceOf(FleetxError);
    return { error: e as FleetxError, ms: Date.now() - started };
  } finally {
    close();
  }
}

describe('unreachable etcd', () => {
  it('a closed port is "unavailable" naming the endpoint (refused, not timed out)', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const { error } = await failure(endpoint, '2');
    expect(error.kind).toBe('unavailable');
    expect(error.retryable).toBe(true);
    expect(error.message).toBe(`etcd at ${endpoint} is unreachable (connection refused)`);
  });

  it('a server that never answers is "unavailable (no answer within 1.5s)", once the timeout passed', async () => {
    const silent = await silentServer();
    try {
      const { error, ms } = await failure(silent.endpoint, '1.5');
      expect(error.kind).toBe('unavailable');
      expect(error.message).toBe(`etcd at ${silent.endpoint} is unreachable (no answer within 1.5s)`);
      expect(ms).toBeGreaterThanOrEqual(1400); // it waited for the request timeout (order, not speed)
    } finally {
      await silent.close();
    }
  });

  it('several endpoints, all down: one error naming them all', async () => {
    const silent = await silentServer();
    const closed = `http://127.0.0.1:${await freePort()}`;
    try {
      const { error } = await failure(`${closed},${silent.endpoint}`, '1');
      expect(error.kind).toBe('unavailable');
      expect(error.message).toMatch(new RegExp(`^etcd at ${closed}, ${silent.endpoint} is unreachable`));
    } finally {
      await silent.close();
    }
  });

  it('the process exits by itself after the error once the client is closed', async () => {
    const silent = await silentServer();
    const dir = await mkdtemp(join(tmpdir(), 'fleetx-exit-'));
    try {
      const script = join(dir, 'probe.mts');
      const src = (p: string) => pathToFileURL(resolve('src', p)).href;
      await writeFile(
        script,
        [
          `import { resolveConnection } from '${src('registry/connection.ts')}';`,
          `import { openRegistry } from '${src('registry/open.ts')}';`,
          `const { registry, close } = openRegistry(resolveConnection({ endpoint: process.argv[2], 'request-timeout': '1' }, {}));`,
          `const t = Date.now();`,
          `try { await registry.listUnits(); } catch (e) { console.log(JSON.stringify({ kind: e.kind, message: e.message, ms: Date.now() - t })); }`,
          `close();`,
        ].join('\n'),
      );
      // If anything kept the event loop alive, execFile's timeout would kill it and reject.
      const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', script, silent.endpoint], { timeout: 15_000 });
      const out = JSON.parse(stdout.trim()) as { kind: string; message: string; ms: number };
      expect(out.kind).toBe('unavailable');
      expect(out.message).toContain('no answer within 1s');
    } finally {
      await silent.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a running etcd', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('works through the resolved connection and its prefix', async () => {
    const conn = resolveConnection({}, { FLEETCTL_ENDPOINT: etcd.endpoints[0], FLEETX_ETCD_KEY_PREFIX: '/conn-test' });
    const { registry, close } = openRegistry(conn, () => new Date(0));
    try {
      await registry.createUnit({ name: 'a.service', hash: 'h', targetState: 'inactive' }, 'A', { replace: false });
      expect(Object.keys(await registry.snapshot())).toEqual(['/conn-test/body/h', '/conn-test/unit/a.service']);
    } finally {
      close();
    }
  });

  it('reports unavailable after etcd goes away, and recovers nothing silently', async () => {
    const other = await startEtcd();
    const conn = resolveConnection({ endpoint: other.endpoints[0], 'request-timeout': '1' }, {});
    const { registry, close } = openRegistry(conn);
    try {
      expect(await registry.listUnits()).toEqual([]);
      await other.stop();
      const e = await registry.listUnits().catch((err: unknown) => err);
      expect(e).toMatchObject({ kind: 'unavailable' });
      expect((e as FleetxError).message).toMatch(new RegExp(`^etcd at ${other.endpoints[0]} is unreachable`));
    } finally {
      close();
      await other.stop();
    }
  });
});
