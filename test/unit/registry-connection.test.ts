// Pure tests of resolveConnection (no etcd needed); kept next to the
// connection suite because they share its vocabulary.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { checkConnectionFiles, resolveConnection, type ConnectionOptions } from '../../src/registry/connection.js';

const base: ConnectionOptions = {
  endpoints: ['http://127.0.0.1:2379'],
  requestTimeoutMs: 5000,
  prefix: '/fleetx',
  caFile: undefined,
  certFile: undefined,
  keyFile: undefined,
  username: undefined,
  password: undefined,
};

type Flags = Record<string, string | undefined>;

describe('resolveConnection: precedence and defaults', () => {
  it.each<[string, Flags, NodeJS.ProcessEnv, Partial<ConnectionOptions>]>([
    ['defaults', {}, {}, {}],
    ['flag endpoint', { endpoint: 'http://10.0.0.1:4001' }, {}, { endpoints: ['http://10.0.0.1:4001'] }],
    ['FLEETX_ env', {}, { FLEETX_ENDPOINT: 'http://a:1' }, { endpoints: ['http://a:1'] }],
    ['FLEETCTL_ env as fallback', {}, { FLEETCTL_ENDPOINT: 'http://b:2' }, { endpoints: ['http://b:2'] }],
    ['FLEETX_ beats FLEETCTL_', {}, { FLEETX_ENDPOINT: 'http://a:1', FLEETCTL_ENDPOINT: 'http://b:2' }, { endpoints: ['http://a:1'] }],
    ['flag beats env', { endpoint: 'http://c:3' }, { FLEETX_ENDPOINT: 'http://a:1' }, { endpoints: ['http://c:3'] }],
    ['empty variable falls through to the next source', {}, { FLEETX_ENDPOINT: '', FLEETCTL_ENDPOINT: 'http://a:1' }, { endpoints: ['http://a:1'] }],
    ['comma list, trimmed, default port', { endpoint: ' http://a , http://b:2 ' }, {}, { endpoints: ['http://a:2379', 'http://b:2'] }],
    ['explicit scheme-default port kept', { endpoint: 'http://a:80' }, {}, { endpoints: ['http://a:80'] }],
    ['trailing slash dropped', { endpoint: 'http://a:1/' }, {}, { endpoints: ['http://a:1'] }],
    ['timeout seconds (float) from fleetctl env', {}, { FLEETCTL_REQUEST_TIMEOUT: '0.25' }, { requestTimeoutMs: 250 }],
    ['timeout flag, camelCase as commander gives it', { requestTimeout: '2' }, {}, { requestTimeoutMs: 2000 }],
    ['prefix, trailing slash dropped', { 'etcd-key-prefix': '/custom/' }, {}, { prefix: '/custom' }],
    ['prefix from fleetctl env', {}, { FLEETCTL_ETCD_KEY_PREFIX: '/_coreos.com/fleet/' }, { prefix: '/_coreos.com/fleet' }],
    ['credentials from FLEETX_ env', {}, { FLEETX_ETCD_USERNAME: 'u', FLEETX_ETCD_PASSWORD: 'p' }, { username: 'u', password: 'p' }],
    [
      'https with CA and client cert',
      { endpoint: 'https://e:2379', 'ca-file': '/ca', certFile: '/c', 'key-file': '/k' },
      {},
      { endpoints: ['https://e:2379'], caFile: '/ca', certFile: '/c', keyFile: '/k' },
    ],
    ['TLS files from fleetctl env', { endpoint: 'https://e' }, { FLEETCTL_CA_FILE: '/ca' }, { endpoints: ['https://e:2379'], caFile: '/ca' }],
  ])('%s', (_d, flags, env, expected) => {
    expect(resolveConnection(flags, env)).toEqual({ ...base, ...expected });
  });

  it('ignores fleetctl-style variables fleetctl never had (username/password)', () => {
    expect(resolveConnection({}, { FLEETCTL_ETCD_USERNAME: 'u', FLEETCTL_ETCD_PASSWORD: 'p' }).username).toBeUndefined();
  });
});

describe('resolveConnection: usage errors', () => {
  it.each<[string, Flags, NodeJS.ProcessEnv, RegExp]>([
    ['not a URL', { endpoint: 'localhost:2379' }, {}, /"localhost:2379" must be an http:\/\/ or https:\/\/ URL/],
    ['garbage', { endpoint: 'http://' }, {}, /--endpoint: "http:\/\/" is not a URL/],
    ['names the bad one in a list', { endpoint: 'http://ok:1,ftp://bad:2' }, {}, /"ftp:\/\/bad:2"/],
    ['env source is named', {}, { FLEETX_ENDPOINT: 'tcp://x' }, /^FLEETX_ENDPOINT: "tcp:\/\/x"/],
    ['path in endpoint', { endpoint: 'http://a:1/v3' }, {}, /no path/],
    ['mixed schemes', { endpoint: 'http://a:1,https://b:2', 'ca-file': '/ca' }, {}, /mixes http and https/],
    ['https without CA', { endpoint: 'https://a:1' }, {}, /is https but no CA file/],
    ['CA with http', { 'ca-file': '/ca' }, {}, /--ca-file is set but endpoint http:\/\/127.0.0.1:2379 is plain http/],
    ['cert without key', { endpoint: 'https://a', 'ca-file': '/ca', 'cert-file': '/c' }, {}, /needs both --cert-file and --key-file/],
    ['username without password', { 'etcd-username': 'u' }, {}, /needs both --etcd-username and --etcd-password/],
    ['zero timeout', { 'request-timeout': '0' }, {}, /must be a positive number of seconds/],
    ['negative timeout', {}, { FLEETCTL_REQUEST_TIMEOUT: '-1' }, /^FLEETCTL_REQUEST_TIMEOUT: request timeout "-1"/],
    ['non-numeric timeout', { 'request-timeout': '5s' }, {}, /"5s" must be a positive number/],
    ['empty flag never falls back to the environment', { endpoint: '' }, { FLEETX_ENDPOINT: 'http://a:1' }, /^--endpoint is empty/],
    ['blank flag, camelCase', { caFile: ' ' }, {}, /^--ca-file is empty/],
    ['relative prefix', { 'etcd-key-prefix': 'fleetx' }, {}, /must start with "\/"/],
  ])('%s', (_d, flags, env, message) => {
    let err: unknown;
    try {
      resolveConnection(flags, env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FleetxError);
    expect((err as FleetxError).kind).toBe('usage');
    expect((err as FleetxError).message).toMatch(message);
  });
});

describe('checkConnectionFiles', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetx-conn-'));
    await writeFile(join(dir, 'ca.pem'), 'x');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts readable files and no files at all', async () => {
    await checkConnectionFiles(base);
    await checkConnectionFiles({ ...base, endpoints: ['https://a:1'], caFile: join(dir, 'ca.pem') });
  });

  it('names a missing file', async () => {
    const missing = join(dir, 'nope.pem');
    await expect(checkConnectionFiles({ ...base, caFile: join(dir, 'ca.pem'), certFile: missing, keyFile: missing })).rejects.toMatchObject({
      kind: 'usage',
      message: `client certificate ${missing} does not exist`,
    });
  });
});
