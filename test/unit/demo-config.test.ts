import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { haproxyConfig, slotNames } from '../../src/demo/haproxy-config.js';
import { demoServiceText } from '../../src/demo/service-file.js';
import { loadServiceFile } from '../../src/service/load.js';
import { REPO } from '../helpers/cli.js';

describe('demo HAProxy config', () => {
  const text = haproxyConfig({ bindAddress: '10.213.5.1', port: 8080, socket: '/s/haproxy.sock', backend: 'web', slots: slotNames('web@.service', 4), checkPath: '/healthz' });
  const lines = text.split('\n').map((l) => l.trim());

  it('binds the bridge address only', () => {
    expect(lines.filter((l) => l.startsWith('bind '))).toEqual(['bind 10.213.5.1:8080']);
  });

  it('pre-declares parked, checked slots named like the presence driver expects', () => {
    expect(lines.filter((l) => l.startsWith('server '))).toEqual(['web-1', 'web-2', 'web-3', 'web-4'].map((s) => `server ${s} 0.0.0.0:1 disabled check`));
    expect(lines).toContain('option httpchk GET /healthz');
    expect(lines).toContain('stats socket /s/haproxy.sock mode 600 level admin');
  });

  it('retries requests that race a stopping instance, elsewhere', () => {
    expect(lines).toEqual(expect.arrayContaining(['retries 3', 'option redispatch 1', 'retry-on conn-failure empty-response response-timeout', 'timeout connect 1s']));
  });

  it.each([
    ['web@.service', 2, ['web-1', 'web-2']],
    ['api-v2@.service', 1, ['api-v2-1']],
  ])('slotNames(%s, %d)', (tpl, n, want) => expect(slotNames(tpl, n)).toEqual(want));
});

describe('demo service file', () => {
  it('fills in the image in the sandbox registry and the socket, keeps everything else, and stays a valid service', () => {
    const source = readFileSync(join(REPO, 'services', 'app.yaml'), 'utf8');
    const text = demoServiceText(source, { registry: '10.213.5.1:5000', socket: '/var/tmp/sb/demo/haproxy.sock', instances: 9 });
    expect(text).toContain('# The sandbox\'s demo service');
    const dir = mkdtempSync(join(tmpdir(), 'fleetx-demo-svc-'));
    try {
      writeFileSync(join(dir, 'app.yaml'), text);
      const spec = loadServiceFile(join(dir, 'app.yaml'));
      expect(spec.template).toBe('app@.service');
      expect(spec.values).toMatchObject({ image: '10.213.5.1:5000/fleetx/demo-web', tag: 'v1', runtime: 'podman' });
      expect(spec.presence).toMatchObject({ driver: 'haproxy', socket: '/var/tmp/sb/demo/haproxy.sock', backend: 'app', port: 8080, drainTimeoutMs: 10_000 });
      expect(spec.instances).toBe(9);
      expect(spec.health).toMatchObject({ type: 'http', port: 8080, path: '/healthz', intervalMs: 500, threshold: 2 });
      expect(spec.rollout).toMatchObject({ maxUnavailable: 1, minHealthyMs: 1000, deadlineMs: 60_000, autoRevert: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
