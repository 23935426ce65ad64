/** What a sandbox host boots from: its NoCloud seed and the user-data rendered for its role. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { fleetxLines, IMAGE_CONFIG, sandboxUserData, SEED_DIR, seedFiles } from '../../src/sandbox/seed.js';
import { newEtcdAuth } from '../../src/sandbox/etcd-auth.js';
import { runTool } from '../helpers/tool.js';

const seed = { endpoints: ['http://10.213.0.1:2379'], registry: '10.213.0.1:5000', release: { url: 'file:///var/lib/fleetx/sandbox/release/fleetx-0.1.0.tgz', sha256: 'a'.repeat(64) } };
const text = sandboxUserData(seed, process.cwd());
const config = parse(text) as { write_files: Array<{ path: string; content: string; permissions: string }>; runcmd: unknown[][]; apt?: unknown; packages?: unknown };
const file = (path: string) => config.write_files.find((f) => f.path === path);
const dir = mkdtempSync(join(tmpdir(), 'fleetx-seed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a sandbox host\'s user-data', () => {
  it('is the web role\'s (both sidecars), with the sandbox etcd and the packed release', () => {
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const unit = file('/etc/systemd/system/fleetx-agent.service')!.content;
    expect(unit).toContain('ExecStart=/usr/bin/node $FLEETX_NODE_FLAGS "/opt/fleetx/bin/fleetx.mjs" agent \\\n  --endpoint "http://10.213.0.1:2379" \\\n');
    expect(unit).toContain('--metadata "role=web"');
    // what the td-agent and dd-agent global units match (docs/SIDECARS.md)
    expect(unit).toContain('--metadata "logs=td-agent" \\\n  --metadata "metrics=dd-agent"');
    // dd-agent's API key is a fleetx secret (the demo sets one), not user-data
    expect(text).not.toContain('DD_API_KEY');
    expect(config.runcmd).toContainEqual(['/usr/local/lib/fleetx/install-release', seed.release.url, seed.release.sha256]);
    expect(config.runcmd).toContainEqual(['systemctl', 'enable', '--now', 'fleetx-agent.service']);
  });

  it('gives the agent every etcd member\'s endpoint', () => {
    const many = parse(sandboxUserData({ ...seed, endpoints: ['http://10.213.0.1:2379', 'http://10.213.0.1:2381', 'http://10.213.0.1:2383'] }, process.cwd())) as typeof config;
    const unit = many.write_files.find((f) => f.path === '/etc/systemd/system/fleetx-agent.service')!.content;
    expect(unit).toContain('  --endpoint "http://10.213.0.1:2379" \\\n  --endpoint "http://10.213.0.1:2381" \\\n  --endpoint "http://10.213.0.1:2383" \\\n');
  });

  it('carries the agent\'s etcd credentials (etcd auth) only in the 0600 env file', () => {
    const auth = newEtcdAuth();
    const withAuth = sandboxUserData({ ...seed, credentials: auth.agent }, process.cwd());
    const c = parse(withAuth) as typeof config;
    const env = c.write_files.find((f) => f.path === '/etc/fleetx/secrets/fleetx-agent.env')!;
    expect(env.permissions).toBe('0600');
    expect(env.content).toContain(`FLEETX_ETCD_USERNAME="${auth.agent.username}"`);
    expect(env.content).toContain(`FLEETX_ETCD_PASSWORD="${auth.agent.password}"`);
    expect(withAuth.split(auth.agent.password).length - 1).toBe(1);
  });

  it('leaves apt alone (Node and podman come with the machine\'s /usr)', () => {
    expect(config.apt).toBeUndefined();
    expect(config.packages).toBeUndefined();
  });

  it('sets podman up as nspawn hosts need it: vfs, no cgroups, host network, no keyring, the one insecure registry', () => {
    expect(file('/etc/containers/storage.conf')!.content).toContain('driver = "vfs"');
    expect(file('/etc/containers/containers.conf')!.content).toMatch(/cgroups = "disabled"\nnetns = "host"\nkeyring = false\n/);
    expect(file('/etc/containers/containers.conf')!.content).toContain('cgroup_manager = "cgroupfs"');
    expect(file('/etc/containers/registries.conf')!.content).toContain('unqualified-search-registries = []\n\n[[registry]]\nlocation = "10.213.0.1:5000"\ninsecure = true\n');
  });

  it('passes cloud-init schema --config-file', async () => {
    const path = join(dir, 'user-data');
    writeFileSync(path, text, { mode: 0o600 });
    const r = await runTool('cloud-init', ['schema', '--config-file', path]);
    expect(r.out).toContain('Valid cloud-config');
    expect(r.code).toBe(0);
  });
});

describe('seedFiles', () => {
  const files = seedFiles({ name: 'sandbox-1', instanceId: 'iid-sandbox-1-0a0b', userData: text });

  it('gives meta-data the instance-id and hostname, and keeps the seed 0600 (user-data can hold credentials)', () => {
    expect(files[`${SEED_DIR}/meta-data`]).toEqual({ content: 'instance-id: iid-sandbox-1-0a0b\nlocal-hostname: sandbox-1\n', mode: 0o600 });
    expect(files[`${SEED_DIR}/user-data`]).toEqual({ content: text, mode: 0o600 });
  });

  it('the image config reads only the seed and leaves out the modules that would undo the sandbox\'s host key or add users', () => {
    const cfg = parse(files[IMAGE_CONFIG] as string) as Record<string, string[]>;
    expect(cfg.datasource_list).toEqual(['NoCloud']);
    expect(cfg.users).toEqual([]);
    const modules = [...cfg.cloud_init_modules!, ...cfg.cloud_config_modules!, ...cfg.cloud_final_modules!];
    expect(modules).not.toContain('ssh');
    expect(modules).not.toContain('users-groups');
    // What fleetx's user-data uses.
    expect(modules).toEqual(expect.arrayContaining(['bootcmd', 'write-files', 'locale', 'runcmd', 'write-files-deferred', 'scripts-user']));
  });
});

describe('fleetxLines', () => {
  it.each([
    ['nothing of fleetx', 'Cloud-init v. 22.4 running\nsome line\n', []],
    ['a failure with the agent\'s lines under it', 'x\nfleetx: the agent did not register in etcd within 60s; from journalctl -u fleetx-agent:\n  agent starting; etcd endpoints ["http://a:1"]\n  engine warning: no\nCloud-init v. 22.4 finished\n', [
      'fleetx: the agent did not register in etcd within 60s; from journalctl -u fleetx-agent:',
      '  agent starting; etcd endpoints ["http://a:1"]',
      '  engine warning: no',
    ]],
    ['indented lines of others are not fleetx\'s', '  indented\nfleetx: installed 0.1.0 from file:///r.tgz\nother\n  indented too\n', ['fleetx: installed 0.1.0 from file:///r.tgz']],
  ])('%s', (_what, log, lines) => {
    expect(fleetxLines(log)).toEqual(lines);
  });
});
