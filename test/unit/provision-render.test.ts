import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseMetadataFlag } from '../../src/agent/identity.js';
import { FleetxError } from '../../src/errors/errors.js';
import { envFile } from '../../src/provision/derive.js';
import { renderRole } from '../../src/provision/provision.js';
import { renderUserData } from '../../src/provision/render.js';
import { parseUnit } from '../../src/unit/parse.js';
import { execArgv } from '../helpers/exec-argv.js';

const CLUSTER = new URL('../fixtures/cloud-config/cluster.yaml', import.meta.url).pathname;
const cwd = new URL('../fixtures/cloud-config/', import.meta.url).pathname;

function caught(fn: () => unknown): FleetxError {
  try {
    fn();
  } catch (e) {
    if (e instanceof FleetxError) return e;
    throw e;
  }
  throw new Error('expected a FleetxError');
}

const render = (source: string, values: Record<string, unknown>, partials: Record<string, string> = {}) =>
  renderUserData({ name: 't.yaml.hbs', source, partials }, values);

type WriteFile = { path: string; permissions: string; content: string; owner?: string; defer?: boolean };
const files = (config: Record<string, unknown>) => config.write_files as WriteFile[];
const file = (config: Record<string, unknown>, path: string) => files(config).find((f) => f.path === path);

describe('renderUserData: a value is one whole YAML scalar, never structure', () => {
  it.each([
    ['a value as a key', '#cloud-config\n{{x}}: 1\n', { x: 'a' }, /is used as a YAML key/],
    ['a value inside a longer text', '#cloud-config\nhostname: web-{{x}}\n', { x: 'a' }, /whole YAML scalar/],
    ['a value in a block scalar with other text', '#cloud-config\nbootcmd:\n  - |\n    echo {{x}}\n', { x: 'a' }, /whole YAML scalar/],
    ['a value as a whole runcmd item (shell)', '#cloud-config\nruncmd:\n  - {{x}}\n', { x: 'reboot' }, /whole runcmd item/],
    ['a value as a program', '#cloud-config\nruncmd:\n  - [{{x}}, a]\n', { x: '/bin/sh' }, /program of a runcmd command/],
    ['a value as a bootcmd program', '#cloud-config\nbootcmd:\n  - [{{x}}]\n', { x: 'sh' }, /program of a bootcmd command/],
    ['a value as a file path', '#cloud-config\nwrite_files:\n  - path: {{x}}\n    content: a\n', { x: '/etc/shadow' }, /write_files path/],
    ['a value as permissions', '#cloud-config\nwrite_files:\n  - path: /a\n    permissions: {{x}}\n', { x: '0777' }, /write_files permissions/],
    ['a secret in a 0644 file', "#cloud-config\nwrite_files:\n  - path: /a\n    permissions: '0644'\n    content: {{secrets.k}}\n", { secrets: { k: 's' } }, /secret secrets\.k may only be/],
    ['a secret outside write_files', '#cloud-config\nruncmd:\n  - [echo, {{secretFiles.k}}]\n', { secretFiles: { k: 's' } }, /secret secretFiles\.k may only be/],
    ['a value the template reads but nobody set', '#cloud-config\n{{#if y}}a: 1{{/if}}\n', {}, /not set: "y"/],
    ['no #cloud-config header', 'a: {{x}}\n', { x: 'a' }, /must start with a "#cloud-config" line/],
    ['a template that is not YAML', '#cloud-config\na: [\n', {}, /does not give valid YAML/],
    ['a duplicate key', '#cloud-config\na: 1\na: 2\n', {}, /does not give valid YAML/],
    ['lookup, which reads paths unseen', '#cloud-config\na: {{lookup . "x"}}\n', { x: 'a' }, /lookup/],
  ])('refuses %s', (_what, source, values, message) => {
    expect(caught(() => render(source, values)).message).toMatch(message);
  });

  it.each([
    ['plain', 'a'],
    ['YAML syntax', 'x: [1, {b: 2}] # c\n- d'],
    ['a document end and a new document', 'a\n...\n---\nruncmd: [reboot]'],
    ['indentation and a new key', 'a\n  b: c\nruncmd:\n  - reboot'],
    ['quotes and escapes', `'"\\'\\n"`],
    ['a boolean word', 'true'],
    ['a number', '0600'],
    ['an anchor and an alias', '&a *a'],
    ['a tag', '!!binary aGk='],
    ['unicode line breaks', 'a\u2028b\u0085c'],
    ['a colon, a line break and a block indicator (the yaml library wrote it plain in a flow list)', ':\n>'],
    ['a blank line of spaces (the yaml library wrote a literal that lost them)', ' \n'],
    ['lines with trailing blanks and tabs', 'a \n\tb\t\n\n'],
  ])('places %s as text, in a key value, a list item and a file content', (_what, v) => {
    const source = "#cloud-config\nhostname: {{v}}\nruncmd:\n  - [echo, {{v}}]\nwrite_files:\n  - path: /etc/a\n    permissions: '0644'\n    content: {{v}}\n";
    const { text, config } = render(source, { v });
    expect(config).toEqual({ hostname: v, runcmd: [['echo', v]], write_files: [{ path: '/etc/a', permissions: '0644', content: v }] });
    expect(parseYaml(text)).toEqual(config);
    expect(text.split('\n')[0]).toBe('#cloud-config');
  });

  it('a secret may be the content of a 0600 file; partials come from the folder only', () => {
    const { config } = render(
      "#cloud-config\nwrite_files:\n{{> secret-file}}\n",
      { secrets: { k: 'hunter2' } },
      { 'secret-file': "  - path: /etc/fleetx/secrets/a\n    permissions: '0600'\n    content: {{secrets.k}}\n" },
    );
    expect(file(config, '/etc/fleetx/secrets/a')?.content).toBe('hunter2');
    expect(caught(() => render('#cloud-config\n{{> other}}\n', {})).message).toMatch(/other/);
  });

  it('property: whatever the strings, the data read back is the template\'s, with each value in its place', () => {
    const source = "#cloud-config\nhostname: {{a}}\nruncmd:\n  - [/bin/echo, {{a}}, {{b}}]\nwrite_files:\n  - path: /etc/a\n    permissions: '0600'\n    content: {{secrets.b}}\n";
    const nasty = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: fc.constantFrom('\n', '\r', '\t', ' ', ':', '-', '#', '&', '*', '!', '|', '>', "'", '"', '[', ']', '{', '}', ',', '%', '@', '`', '\\', '.', 'a', '\u0085', '\u2028', '\ufeff'), maxLength: 30 }),
    );
    fc.assert(
      fc.property(nasty, nasty, (a, b) => {
        const { text, config } = render(source, { a, b, secrets: { b } });
        const want = { hostname: a, runcmd: [['/bin/echo', a, b]], write_files: [{ path: '/etc/a', permissions: '0600', content: b }] };
        expect(config).toEqual(want);
        expect(parseYaml(text)).toEqual(want);
      }),
      { numRuns: 1000 },
    );
  }, 120_000);
});

describe('renderRole: the shipped roles', () => {
  const web = () => renderRole({ role: 'web', files: [CLUSTER], sets: [], cwd });

  it('web: agent unit from the shipped template, metadata for its sidecars, secrets in 0600 files', () => {
    const { config } = web();
    const unit = parseUnit(file(config, '/etc/systemd/system/fleetx-agent.service')!.content, 'agent');
    const exec = execArgv(unit.options.find((o) => o.name === 'ExecStart')!.value);
    expect(exec.slice(0, 4)).toEqual(['/usr/bin/node', '$FLEETX_NODE_FLAGS', '/opt/fleetx/bin/fleetx.mjs', 'agent']);
    const metadata = exec.flatMap((a, i) => (exec[i - 1] === '--metadata' ? [a] : []));
    expect(metadata).toEqual(['role=web', 'zone=zone-a', 'logs=td-agent', 'metrics=dd-agent', 'tier=frontend']);
    expect(exec.join(' ')).toContain('--endpoint https://10.0.0.11:2379 --endpoint https://10.0.0.12:2379');
    expect(exec.join(' ')).toContain('--ca-file /etc/fleetx/secrets/etcd-ca.pem --cert-file /etc/fleetx/secrets/etcd-cert.pem --key-file /etc/fleetx/secrets/etcd-key.pem');

    const secrets = files(config).filter((f) => f.path.startsWith('/etc/fleetx/secrets/')).map((f) => [f.path, f.permissions]);
    expect(secrets).toEqual([
      ['/etc/fleetx/secrets/fleetx-agent.env', '0600'],
      ['/etc/fleetx/secrets/etcd-ca.pem', '0600'],
      ['/etc/fleetx/secrets/etcd-cert.pem', '0600'],
      ['/etc/fleetx/secrets/etcd-key.pem', '0600'],
    ]);
    expect(file(config, '/etc/fleetx/secrets/fleetx-agent.env')!.content).toBe(
      'FLEETX_ETCD_KEY_PREFIX="/fleetx"\nFLEETX_ETCD_USERNAME="fleetx-agent"\nFLEETX_ETCD_PASSWORD="pa\\$\\$ \\"word\\" \\`x\\`"\n',
    );
    expect(config.bootcmd).toEqual([['install', '-d', '-m', '0700', '/etc/fleetx/secrets']]);
  });

  it('web: no secret appears anywhere but in its 0600 file', () => {
    const { config } = web();
    const elsewhere = JSON.stringify({ ...config, write_files: files(config).filter((f) => f.permissions !== '0600') });
    for (const secret of ['hunter2', 'dGVzdC1rZXktbm90LXJlYWwK', 'word']) expect(elsewhere).not.toContain(secret);
  });

  it('web: Node 20 from NodeSource, pinned; podman with docker compatibility; install, start, wait for registration', () => {
    const { config } = web();
    const apt = config.apt as { sources: Record<string, { source: string; key: string }> };
    expect(apt.sources['nodesource.list']!.source).toBe('deb [signed-by=$KEY_FILE] https://deb.nodesource.com/node_20.x nodistro main');
    expect(apt.sources['nodesource.list']!.key).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----\n/);
    expect(config.packages).toEqual([['nodejs', '20.20.2-1nodesource1'], 'curl', 'podman', 'crun', 'catatonit', 'podman-docker']);
    expect(config.runcmd).toEqual([
      ['ln', '-sfn', '/lib/systemd/system/podman.service', '/etc/systemd/system/docker.service'],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', 'podman.socket'],
      ['/usr/local/lib/fleetx/install-release', 'https://releases.example.test/fleetx/fleetx-0.1.0.tgz', '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', 'fleetx-agent.service'],
      ['/usr/local/lib/fleetx/await-agent', '120'],
    ]);
    expect(files(config).filter((f) => f.defer).map((f) => f.path)).toEqual(['/etc/containers/containers.conf', '/etc/containers/storage.conf', '/etc/containers/nodocker', '/etc/containers/registries.conf']);
  });

  const NO_RUNTIME = new URL('../fixtures/cloud-config/no-runtime.yaml', import.meta.url).pathname;
  it.each([
    ['worker: logs only', 'worker', [], [], (c: Record<string, unknown>) => {
      expect(file(c, '/etc/systemd/system/fleetx-agent.service')!.content).toContain('--metadata "logs=td-agent"');
      expect(file(c, '/etc/systemd/system/fleetx-agent.service')!.content).not.toContain('metrics=');
    }],
    ['a prebuilt image: apt untouched', 'web', [], ['packages.preinstalled=true'], (c: Record<string, unknown>) => {
      expect(c.apt).toBeUndefined();
      expect(c.packages).toBeUndefined();
    }],
    ['runtime settings of an nspawn host', 'worker', [], ['runtime.storageDriver=vfs', 'runtime.cgroups=disabled', 'runtime.network=host', 'runtime.keyring=false', 'runtime.insecureRegistries[0]=10.213.0.1:5000'], (c: Record<string, unknown>) => {
      expect(file(c, '/etc/containers/storage.conf')!.content).toContain('driver = "vfs"');
      expect(file(c, '/etc/containers/containers.conf')!.content).toContain('cgroups = "disabled"\nnetns = "host"\nkeyring = false');
      // the log path td-agent reads (docs/SIDECARS.md)
      expect(file(c, '/etc/containers/containers.conf')!.content).toContain('log_driver = "journald"');
      // the settings found working in nspawn hosts (src/sandbox/seed.ts uses them)
      expect(file(c, '/etc/containers/containers.conf')!.content).toContain('cgroup_manager = "cgroupfs"\nevents_logger = "journald"');
      expect(file(c, '/etc/containers/registries.conf')!.content).toContain('[[registry]]\nlocation = "10.213.0.1:5000"\ninsecure = true');
    }],
    ['no runtime: no podman files or commands', 'worker', [NO_RUNTIME], ['etcd.keyPrefix=/fx'], (c: Record<string, unknown>) => {
      expect(files(c).some((f) => f.path.startsWith('/etc/containers/'))).toBe(false);
      expect(JSON.stringify(c.runcmd)).not.toContain('podman');
      expect(file(c, '/etc/fleetx/secrets/fleetx-agent.env')!.content).toContain('FLEETX_ETCD_KEY_PREFIX="/fx"');
    }],
  ])('%s', (_what, role, more, sets, check) => {
    check(renderRole({ role, files: [CLUSTER, ...more], sets, cwd }).config);
  });

  it.each([
    ['no cluster values', [], [], /etcd: required, not set.*fleetx: required, not set/],
    ['an unknown value', [CLUSTER], ['colour=red'], /Unrecognized key: "colour"/],
    ['a comma in metadata (would add a key to --metadata k=v,k2=v2)', [CLUSTER], ['metadata.tier=a,admin=yes'], /metadata\.tier: must not contain ","/],
    ['a newline in a value', [CLUSTER], ['zone=a\nb'], /zone: must be one line/],
    ['metadata fleetx sets itself', [CLUSTER], ['metadata.role=db'], /metadata\.role is set by fleetx/],
    ['https without a CA', [CLUSTER], ['secrets.etcdCa='], /secrets\.etcdCa .* is required/],
    ['TLS files with http endpoints', [CLUSTER], ['etcd.endpoints[0]=http://10.0.0.11:2379', 'etcd.endpoints[1]=http://10.0.0.12:2379'], /plain http/],
    ['a user without a password', [CLUSTER], ['secrets.etcdPassword='], /needs both etcd\.username and secrets\.etcdPassword/],
    ['secrets.ddApiKey, no longer used (dd-agent takes its key as a fleetx secret)', [CLUSTER], ['secrets.ddApiKey=0123456789abcdef'], /secrets\.ddApiKey is no longer used: .*fleetx secret set dd-api-key/],
    ['a bad checksum', [CLUSTER], ['fleetx.sha256=abc'], /fleetx\.sha256: must be 64/],
    ['a release URL that is not one', [CLUSTER], ['fleetx.url=releases/fleetx.tgz'], /fleetx\.url: must be/],
    ['an unknown runtime setting', [CLUSTER], ['runtime.storageDriver=btrfs'], /runtime\.storageDriver/],
    ['a PEM that is not one', [CLUSTER], ['secrets.etcdCa=hello'], /secrets\.etcdCa: must be one PEM block/],
  ])('refuses %s, with the value named', (_what, f, sets, message) => {
    const e = caught(() => renderRole({ role: 'web', files: f, sets, cwd }));
    expect(e.kind).toBe('invalid');
    expect(e.message).toMatch(message);
  });

  it('refuses an unknown role (naming those there are) and a role in the values that --role contradicts', () => {
    const e = caught(() => renderRole({ role: 'db', files: [CLUSTER], sets: [], cwd }));
    expect([e.kind, e.hint]).toEqual(['not-found', 'roles: web, worker']);
    expect(caught(() => renderRole({ role: 'web', files: [CLUSTER], sets: ['role=worker'], cwd })).kind).toBe('usage');
  });

  it('property: no metadata value, zone or etcd user changes the agent\'s metadata keys or the user-data\'s files and commands', () => {
    const shape = (c: Record<string, unknown>) => ({
      keys: Object.keys(c),
      files: files(c).map((f) => [f.path, f.permissions, f.owner ?? '', Boolean(f.defer)]),
      commands: (c.runcmd as string[][]).map((argv) => [argv[0], argv.length]),
      bootcmd: c.bootcmd,
    });
    const base = shape(web().config);
    const nasty = fc.oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }),
      fc.string({ unit: fc.constantFrom('\n', ',', '=', '"', "'", '\\', '$', '%', ' ', ':', '-', '#', '`', ';', 'a'), minLength: 1, maxLength: 20 }),
    );
    fc.assert(
      fc.property(fc.constantFrom('metadata.tier', 'zone', 'etcd.username', 'secrets.etcdPassword'), nasty, (slot, v) => {
        let config: Record<string, unknown>;
        try {
          config = renderRole({ role: 'web', files: [CLUSTER], sets: [`${slot}=${v}`], cwd }).config;
        } catch (e) {
          expect(e).toBeInstanceOf(FleetxError);
          return;
        }
        expect(shape(config)).toEqual(base);
        const unit = parseUnit(file(config, '/etc/systemd/system/fleetx-agent.service')!.content, 'agent');
        const exec = execArgv(unit.options.find((o) => o.name === 'ExecStart')!.value);
        const keys = exec.flatMap((a, i) => (exec[i - 1] === '--metadata' ? Object.keys(parseMetadataFlag(a)) : []));
        expect(keys).toEqual(['role', 'zone', 'logs', 'metrics', 'tier']);
      }),
      { numRuns: 300 },
    );
  });
});

describe('envFile', () => {
  it.each([
    [{ A: 'x' }, 'A="x"\n'],
    [{ A: 'a"b\\c$d`e' }, 'A="a\\"b\\\\c\\$d\\`e"\n'],
    [{ A: '', B: 'y' }, 'B="y"\n'],
    [{ A: '' }, ''],
  ])('%j', (vars, text) => expect(envFile(vars)).toBe(text));
});
