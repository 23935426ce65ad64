import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { renderTemplate } from '../../src/template/render.js';
import { parseXFleet } from '../../src/unit/xfleet.js';
import type { UnitFile } from '../../src/unit/types.js';
import { execArgv } from '../helpers/exec-argv.js';
import { errorOf as renderError } from '../helpers/errors.js';

const keys = (u: UnitFile) => u.options.map((o) => `[${o.section}] ${o.name}`);
const value = (u: UnitFile, section: string, name: string) => u.options.find((o) => o.section === section && o.name === name)?.value;
const values = (u: UnitFile, section: string, name: string) => u.options.filter((o) => o.section === section && o.name === name).map((o) => o.value);

describe('missing values name the template and line', () => {
  it.each([
    ['plain mustache', '[Unit]\nDescription={{missing}}\n', 2],
    ['triple stash', '[Unit]\n\nDescription={{{missing}}}\n', 3],
    ['#if on a missing value (strict mode misses it)', '[Unit]\n{{#if missing}}\nDescription=x\n{{/if}}\n', 2],
    ['#each on a missing list', '[Unit]\nDescription=x\n[Service]\nExecStart=/bin/echo {{#each missing}}{{this}} {{/each}}\n', 4],
    ['helper parameter', '[Service]\nExecStart=/bin/echo {{arg missing}}\n', 2],
    ['nested path', '[Unit]\nDescription={{present.missing}}\n', 2],
    ['inside #each (strict mode at render time)', '[Service]\nExecStart=/bin/echo \\\n{{#each items}}\n {{this.missing}} \\\n{{/each}}\n', 4],
  ])('%s', (_name, source, line) => {
    const e = renderError(() => renderTemplate(source, { present: {}, items: [{ a: 'b' }] }, { templateName: 'demo.service' }));
    expect(e.kind).toBe('invalid');
    expect(e.message).toContain('template demo.service');
    expect(e.message).toContain(`line ${line}`);
    expect(e.message).toMatch(/missing/);
  });

  it('a default declared by the template makes a value optional', () => {
    const src = '{{!-- fleetx-defaults:\n  extra: ""\n--}}\n[Unit]\nDescription=x{{#if extra}} {{extra}}{{/if}}\n';
    expect(renderTemplate(src, {}, { templateName: 'demo.service' }).text).toBe('[Unit]\nDescription=x\n');
    expect(renderTemplate(src, { extra: 'y' }, { templateName: 'demo.service' }).text).toBe('[Unit]\nDescription=x y\n');
  });
});

// One template with a value in each context: plain in [Unit], plain and quoted in an Exec line, Environment=, [X-Fleet].
const PROBE = {
  description: '[Unit]\nDescription=probe {{v}}\n[Service]\nExecStart=/bin/true\n',
  execPlain: '[Service]\nExecStart=/bin/echo {{v}}\n',
  execTriple: '[Service]\nExecStart=/bin/echo {{{v}}}\n',
  execArg: '[Service]\nExecStart=/bin/echo {{arg v}} end\n',
  environment: '[Service]\nEnvironment={{kv "K" v}}\nExecStart=/bin/true\n',
  xfleet: '[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=role={{v}}\n',
} as const;
type Probe = keyof typeof PROBE;

// What users put in values every day: names, tags, paths, hosts, versions.
const ordinary = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._\/-]{0,30}$/);

const render = (probe: Probe, v: string) => renderTemplate(PROBE[probe], { v }, { templateName: 'probe.service' });
const baseline = (probe: Probe) => keys(render(probe, 'x').unit);

describe('injection attempts are refused or escaped', () => {
  it.each<[string, Probe, string, RegExp]>([
    ['newline + directive in Description', 'description', '\n[Service]\nExecStartPost=/bin/evil', /U\+000A/],
    ['newline + directive in Exec', 'execPlain', 'x\nExecStartPost=/bin/evil', /U\+000A/],
    ['newline via triple-stash', 'execTriple', 'x\nExecStartPost=/bin/evil', /U\+000A/],
    ['newline inside a quoted arg', 'execArg', 'x\nExecStartPost=/bin/evil', /U\+000A/],
    ['trailing backslash (line continuation)', 'description', 'evil\\', /backslash/],
    ['trailing backslash in Exec', 'execPlain', 'evil\\', /backslash/],
    ['trailing backslash hidden behind blanks', 'description', 'evil\\  ', /backslash/],
    ['NUL', 'description', 'a\u0000b', /U\+0000/],
    ['CR', 'description', 'a\rExecStart=/bin/evil', /U\+000D/],
    ['C1 next-line control', 'description', 'a\u0085b', /U\+0085/],
    ['unpaired surrogate', 'description', 'a\uD800', /surrogate/],
    ['space in a plain Exec word', 'execPlain', 'a --privileged', /whitespace/],
    ['option at a word start', 'execPlain', '--privileged', /starts with "-"/],
    ['quote in a plain Exec word', 'execPlain', 'a"b', /"\\""/],
    ['backslash in a plain Exec word', 'execPlain', 'a\\nb', /"\\\\"/],
    ['command separator', 'execPlain', ';', /";"/],
    ['space in Environment plain', 'xfleet', 'a b', /whitespace/],
    ['specifier in X-Fleet', 'xfleet', '%n', /specifier/],
  ])('%s is refused', (_name, probe, v, why) => {
    const e = renderError(() => render(probe, v));
    expect(e.kind).toBe('invalid');
    expect(e.message).toContain('template probe.service');
    expect(e.message).toContain('value v');
    expect(e.message).toMatch(why);
  });

  it.each<[string, Probe, string, string, string]>([
    ['specifier in Description is doubled', 'description', '%n', 'Description', 'probe %%n'],
    ['$ is not special in Description', 'description', '$HOME', 'Description', 'probe $HOME'],
    ['a section header as a value is just text', 'description', '[Service]', 'Description', 'probe [Service]'],
    ['$VAR in Exec is doubled', 'execPlain', '$HOME', 'ExecStart', '/bin/echo $$HOME'],
    ['${VAR} and %i in Exec', 'execPlain', '${HOME}%i', 'ExecStart', '/bin/echo $${HOME}%%i'],
    ['quotes in an arg', 'execArg', 'say "hi"', 'ExecStart', '/bin/echo "say \\"hi\\"" end'],
    ['backslashes in an arg', 'execArg', 'C:\\dir\\', 'ExecStart', '/bin/echo "C:\\\\dir\\\\" end'],
    ['semicolon in an arg', 'execArg', ';', 'ExecStart', '/bin/echo ";" end'],
    ['Environment does not expand $', 'environment', 'a b $X %i', 'Environment', '"K=a b $X %%i"'],
  ])('%s', (_name, probe, v, key, expected) => {
    const { unit } = render(probe, v);
    expect(keys(unit)).toEqual(baseline(probe));
    expect(value(unit, 'Service', key) ?? value(unit, 'Unit', key)).toBe(expected);
  });

  it.each(['simple', 'a b', 'say "hi"', "it's", 'back\\slash', 'trail\\', '%n%%', '$HOME ${X} $$', ';', '-@:+!', '\u00e9\u{1F600}'])(
    'arg %j round-trips through systemd quoting',
    (v) => {
      const { unit } = render('execArg', v);
      expect(execArgv(value(unit, 'Service', 'ExecStart')!)).toEqual(['/bin/echo', v, 'end']);
    },
  );
});

describe('properties', () => {
  // Any string: full unicode (with lone surrogates) or one built from the characters that matter to systemd.
  const nasty = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: fc.constantFrom('\n', '\r', '\0', '\\', '%', '$', '"', "'", ' ', '\t', ';', '-', '=', '[', ']', '#', 'a', '\u0085', '\u2028'), maxLength: 30 }),
  );

  it('any value in any probe context: an error, or the same directives as with a benign value', () => {
    fc.assert(
      fc.property(fc.constantFrom(...(Object.keys(PROBE) as Probe[])), nasty, (probe, v) => {
        let unit: UnitFile;
        try {
          unit = render(probe, v).unit;
        } catch (e) {
          expect(e).toBeInstanceOf(FleetxError);
          expect((e as FleetxError).kind).toBe('invalid');
          return;
        }
        expect(keys(unit)).toEqual(baseline(probe));
      }),
      { numRuns: 1500 },
    );
  });

  it('an ordinary value renders in every probe context, as it is (a renderer that refuses everything fails here)', () => {
    const directive: Record<Probe, [string, string, (v: string) => string]> = {
      description: ['Unit', 'Description', (v) => `probe ${v}`],
      execPlain: ['Service', 'ExecStart', (v) => `/bin/echo ${v}`],
      execTriple: ['Service', 'ExecStart', (v) => `/bin/echo ${v}`],
      execArg: ['Service', 'ExecStart', (v) => `/bin/echo "${v}" end`],
      environment: ['Service', 'Environment', (v) => `"K=${v}"`],
      xfleet: ['X-Fleet', 'MachineMetadata', (v) => `role=${v}`],
    };
    fc.assert(
      fc.property(fc.constantFrom(...(Object.keys(PROBE) as Probe[])), ordinary, (probe, v) => {
        const { unit } = render(probe, v);
        expect(keys(unit)).toEqual(baseline(probe));
        const [section, key, want] = directive[probe];
        expect(value(unit, section, key)).toBe(want(v));
      }),
      { numRuns: 500 },
    );
  });

  it('{{arg}} accepts every single-line string and it round-trips as one argument', () => {
    const line = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s) && !/^[-@:+!|]/.test(s));
    fc.assert(
      fc.property(line, (v) => {
        const { unit } = render('execArg', v);
        expect(execArgv(value(unit, 'Service', 'ExecStart')!)).toEqual(['/bin/echo', v, 'end']);
      }),
      { numRuns: 500 },
    );
  });
});

describe('secrets never reach unit text', () => {
  it.each([
    ['api_key', { api_key: 'abc' }],
    ['apiKey', { apiKey: 'abc' }],
    ['env.DD_API_KEY', { env: { DD_API_KEY: 'abc' } }],
    ['password in a list of maps', { users: [{ password: 'x' }] }],
    ['token', { token: 't' }],
  ])('%s is refused with an explanation', (_name, values) => {
    const e = renderError(() => renderTemplate('[Unit]\nDescription=x\n', values, { templateName: 'dd-agent.service' }));
    expect(e.kind).toBe('invalid');
    expect(e.message).toMatch(/looks like a secret/);
    expect(e.message).toContain('fleetx secret set NAME');
  });

  it.each([
    ['env.DB_PASS by its name', { env: { DB_PASS: 'hunter2' } }, /env\.DB_PASS looks like a secret by its name/],
    ['a password in args', { args: ['--db-password=hunter2'] }, /args\[0\] holds what looks like a secret assigned to db-password/],
    ['an -e assignment in args', { args: ['-e', 'DD_API_KEY=0123456789abcdef'] }, /args\[1\] holds what looks like a secret assigned to DD_API_KEY/],
    ['a URL with a password', { url: 'postgres://app:hunter2@db:5432/app' }, /url holds what looks like a URL with a password/],
    ['a private key', { tls: '-----BEGIN EC PRIVATE KEY-----' }, /tls holds what looks like a private key/],
    ['an AWS key', { key: 'AKIAIOSFODNN7EXAMPLE' }, /an AWS access key/],
  ])('%s is refused, pointing at fleetx secret', (_name, values, message) => {
    const e = renderError(() => renderTemplate('[Unit]\nDescription=x\n', values, { templateName: 'app@.service' }));
    expect(e.kind).toBe('invalid');
    expect(e.message).toMatch(message);
    expect(e.message).toContain('fleetx secret set NAME');
    expect(e.message).not.toContain('hunter2');
  });

  it.each([
    ['a file that holds the password', { env: { DB_PASSWORD_FILE: '/run/fleetx/secrets/db' } }],
    ['a variable reference in args', { args: ['-e', 'DD_API_KEY=$DD_API_KEY', '--env', 'DD_API_KEY'] }],
    ['words that only contain "pass"', { compass: 'north', bypass: 'true', passthrough: 'yes' }],
    ['secret references by name', { secretEnv: { DB_PASSWORD: 'db-password', DD_API_KEY: 'dd-api-key' } }],
  ])('%s is accepted', (_name, values) => {
    expect(() => renderTemplate('[Unit]\nDescription=x\n', values, { templateName: 'app@.service' })).not.toThrow();
  });

  it('secretEnv takes names only: a value that is not a secret name is refused', () => {
    const e = renderError(() => renderTemplate('[Unit]\nDescription=x\n', { secretEnv: { DB_PASSWORD: 'Hunter2!' } }, { templateName: 'app@.service' }));
    expect(e.message).toMatch(/secretEnv\.DB_PASSWORD must be the NAME of a secret/);
    expect(e.message).not.toContain('Hunter2!');
  });
});

describe('template-level checks', () => {
  it('a value may not form a key or a section header', () => {
    expect(renderError(() => renderTemplate('[Unit]\n{{k}}=x\n', { k: 'Description' }, { templateName: 't' })).message).toMatch(/in a key/);
    expect(renderError(() => renderTemplate('[{{s}}]\nA=b\n', { s: 'Unit' }, { templateName: 't' })).message).toMatch(/section header/);
    expect(renderError(() => renderTemplate('[Unit]\n# {{c}}\n', { c: 'x' }, { templateName: 't' })).message).toMatch(/comment/);
  });

  it.each([
    ['after a template prefix', 'ExecStart=-{{v}} run\n', '@/bin/evil'],
    ['inside template quotes', 'ExecStart="{{v}}" run\n', '-/bin/evil'],
    ['quoted arg as the executable', 'ExecStart={{arg v}} run\n', '!/bin/evil'],
    ['after a template prefix, quoted', 'ExecStart=-{{arg v}} run\n', '+/bin/evil'],
    ['executable of a second command', 'ExecStart=/bin/true ; {{v}} run\n', '@/bin/evil'],
  ])('a value cannot add Exec prefixes: %s', (_name, line, v) => {
    expect(renderError(() => renderTemplate(`[Service]\n${line}`, { v }, { templateName: 't' })).message).toMatch(/Exec prefix|starts with "-"/);
  });

  it('prefix characters are fine past the executable', () => {
    expect(renderTemplate('[Service]\nExecStart=/bin/echo {{arg v}} x{{v}}\n', { v: '@+!' }, { templateName: 't' }).text).toContain('/bin/echo "@+!" x@+!');
  });

  it('{{arg}} outside Exec/Environment is refused', () => {
    expect(renderError(() => renderTemplate('[Unit]\nDescription={{arg v}}\n', { v: 'x' }, { templateName: 't' })).message).toMatch(/only Exec/);
  });

  it('oneOf refuses values outside its list', () => {
    const e = renderError(() => renderTemplate('[Service]\nExecStart=/usr/bin/{{oneOf rt "docker" "podman"}} ps\n', { rt: 'sh' }, { templateName: 't' }));
    expect(e.message).toMatch(/line 2.*allowed: "docker", "podman"/);
  });

  it('map keys printed with @key must be plain names', () => {
    const src = '[Service]\nExecStart=/bin/env {{#each env}}{{kv @key this}} {{/each}}\n';
    expect(renderError(() => renderTemplate(src, { env: { 'A B': 'x' } }, { templateName: 't' })).message).toMatch(/not allowed/);
    expect(renderTemplate(src, { env: { A: 'x y' } }, { templateName: 't' }).text).toContain('"A=x y"');
  });

  it('a value must have the shape its default declares', () => {
    const src = '{{!-- fleetx-defaults:\n  ports: []\n  env: {}\n--}}\n[Service]\nExecStart=/bin/echo {{#each ports}}{{this}} {{/each}}\n';
    expect(renderError(() => renderTemplate(src, { ports: '80:80' }, { templateName: 't' })).message).toMatch(/ports must be a list/);
    expect(renderError(() => renderTemplate(src, { env: 'A=b' }, { templateName: 't' })).message).toMatch(/env must be a mapping/);
  });

  it('a template syntax error names the line', () => {
    expect(renderError(() => renderTemplate('[Unit]\nDescription={{#if x}}\n', { x: 'a' }, { templateName: 't' })).message).toMatch(/template t: line/);
  });

  it('the rendered unit must parse', () => {
    expect(renderError(() => renderTemplate('Description={{x}}\n', { x: 'a' }, { templateName: 't' })).message).toMatch(/before any \[Section\]/);
  });
});

const shipped = (name: string) => readFileSync(new URL(`../../units/${name}.hbs`, import.meta.url), 'utf8');

describe('shipped templates', () => {
  it('app@.service: the mission unit, conflicts on its own prefix', () => {
    const { text, unit } = renderTemplate(shipped('app@.service'), { image: 'registry/app', tag: '42', ports: ['8080:80'], env: { A: 'b c' }, args: ['--memory', '256m'] }, { templateName: 'app@.service' });
    expect(text).toContain('ExecStartPre=-/usr/bin/docker rm -f %p-%i\nExecStartPre=/usr/bin/docker pull registry/app:42\n');
    expect(value(unit, 'Service', 'ExecStop')).toBe('/usr/bin/docker stop -t 30 %p-%i');
    expect(value(unit, 'Service', 'ExecStopPost')).toBe('-/usr/bin/docker rm -f %p-%i');
    expect(execArgv(value(unit, 'Service', 'ExecStart')!)).toEqual(['/usr/bin/docker', 'run', '--name', '%p-%i', '--init', '--stop-timeout', '30', '-p', '8080:80', '-e', 'A=b c', '--memory', '256m', 'registry/app:42']);
    expect(value(unit, 'Service', 'Restart')).toBe('always');
    expect(value(unit, 'Service', 'TimeoutStartSec')).toBe('0');
    expect(parseXFleet(unit, 'app@1.service').conflicts).toEqual(['app@*.service']);
    expect(parseXFleet(unit, 'web@1.service').conflicts).toEqual(['web@*.service']);
  });

  it.each([[30, '30s 10s'], [5, '5s 10s']])('app@.service: the runtime waits stopTimeout=%d s before SIGKILL, systemd 10 s longer (%s)', (stopTimeout, timeoutStopSec) => {
    const { unit } = renderTemplate(shipped('app@.service'), { image: 'app', stopTimeout }, { templateName: 'app@.service' });
    expect(value(unit, 'Service', 'TimeoutStopSec')).toBe(timeoutStopSec);
    expect(value(unit, 'Service', 'ExecStop')).toBe(`/usr/bin/docker stop -t ${stopTimeout} %p-%i`);
    expect(execArgv(value(unit, 'Service', 'ExecStart')!).slice(4, 7)).toEqual(['--init', '--stop-timeout', String(stopTimeout)]);
  });

  it('app@.service with podman and a container name', () => {
    const { unit } = renderTemplate(shipped('app@.service'), { image: 'app', runtime: 'podman', name: 'web' }, { templateName: 'app@.service' });
    expect(execArgv(value(unit, 'Service', 'ExecStart')!)).toEqual(['/usr/bin/podman', 'run', '--name', 'web-%i', '--init', '--stop-timeout', '30', 'app:latest']);
    expect(value(unit, 'Unit', 'Requires')).toBeUndefined();
  });

  it.each(['td-agent.service', 'dd-agent.service'])('%s is a global sidecar with a stable name and no secret value', (name) => {
    const { text, unit } = renderTemplate(shipped(name), {}, { templateName: name });
    expect(parseXFleet(unit, name).global).toBe(true);
    expect(execArgv(value(unit, 'Service', 'ExecStart')!).slice(0, 4)).toEqual(['/usr/bin/docker', 'run', '--name', name.replace('.service', '')]);
    // only the secret's name ([X-Fleet-Secrets] DD_API_KEY=dd-api-key), never a value
    expect(text).not.toMatch(/API_KEY=(?!dd-api-key\n)/);
  });

  it('dd-agent.service takes its key as a fleetx secret, by name, and mounts what Datadog documents', () => {
    const { unit } = renderTemplate(shipped('dd-agent.service'), { site: 'datadoghq.eu', runtime: 'podman' }, { templateName: 'dd-agent.service' });
    const argv = execArgv(value(unit, 'Service', 'ExecStart')!);
    // src/secrets/README.md: the agent writes this file before start; no "-": without the secret the unit does not start
    expect(value(unit, 'Service', 'EnvironmentFile')).toBe('/run/fleetx/secrets/%n.env');
    expect(value(unit, 'X-Fleet-Secrets', 'DD_API_KEY')).toBe('dd-api-key');
    // by name only: podman takes the value from the unit's environment, so it is in neither the unit nor ps
    expect(argv.join(' ')).toContain('--env DD_API_KEY -e DD_SITE=datadoghq.eu -e DD_HOSTNAME=%H');
    expect(argv.join(' ')).toContain('--network host --cgroupns host --pid host -v /var/run/docker.sock:/var/run/docker.sock:ro -v /proc/:/host/proc/:ro -v /sys/fs/cgroup/:/host/sys/fs/cgroup:ro');
    expect(argv.join(' ')).toContain('-v /var/lib/dd-agent:/opt/datadog-agent/run:rw');
  });

  it('dd-agent.service: no runtime socket when containerSocket is empty, check configs from confDir at /conf.d', () => {
    const { unit } = renderTemplate(shipped('dd-agent.service'), { containerSocket: '', confDir: '/etc/datadog-agent/conf.d', hostname: 'web-1' }, { templateName: 'dd-agent.service' });
    const argv = execArgv(value(unit, 'Service', 'ExecStart')!).join(' ');
    expect(argv).not.toContain('docker.sock');
    expect(argv).toContain('-v /etc/datadog-agent/conf.d:/conf.d:ro');
    expect(argv).toContain('DD_HOSTNAME=web-1');
  });

  it('td-agent.service runs as fluent, reads FLUENTD_CONF, gets a buffer dir fluent owns and the journal with its group', () => {
    const { unit } = renderTemplate(shipped('td-agent.service'), { runtime: 'podman', confFile: 'prod.conf', configDir: '/etc/td-agent', fluentUid: 1000 }, { templateName: 'td-agent.service' });
    const pre = values(unit, 'Service', 'ExecStartPre').map(execArgv);
    expect(pre).toContainEqual(['/usr/bin/install', '-d', '-o', '1000', '-g', '1000', '-m', '0750', '/var/lib/td-agent']);
    // the journal dir reaches the fixed script as $0, never spliced into it
    expect(pre).toContainEqual(['/bin/sh', '-c', 'echo "JOURNAL_GID=$(stat -c %g "$0")" > /run/td-agent/journal.env', '/var/log/journal']);
    expect(value(unit, 'Service', 'EnvironmentFile')).toBe('-/run/td-agent/journal.env');
    const argv = execArgv(value(unit, 'Service', 'ExecStart')!).join(' ');
    expect(argv).toContain('--user fluent --group-add ${JOURNAL_GID}');
    expect(argv).toContain('-v /etc/td-agent:/fluentd/etc:ro -v /var/lib/td-agent:/fluentd/log -v /var/log/journal:/var/log/journal:ro -e FLUENTD_CONF=prod.conf');
  });

  it('fleetx-agent.service passes every flag value as one argument', () => {
    const { unit } = renderTemplate(
      shipped('fleetx-agent.service'),
      { endpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'], metadata: { region: 'eu west' }, etcdCaFile: '/etc/ssl/ca dir/ca.pem' },
      { templateName: 'fleetx-agent.service' },
    );
    expect(execArgv(value(unit, 'Service', 'ExecStart')!)).toEqual([
      '/usr/bin/node', '$FLEETX_NODE_FLAGS', '/opt/fleetx/bin/fleetx.mjs', 'agent',
      '--endpoint', 'https://10.0.0.1:2379', '--endpoint', 'https://10.0.0.2:2379',
      '--metadata', 'region=eu west', '--ca-file', '/etc/ssl/ca dir/ca.pem',
    ]);
    expect(value(unit, 'Service', 'Restart')).toBe('always');
    expect(value(unit, 'Install', 'WantedBy')).toBe('multi-user.target');
  });

  // Every string slot of every shipped template, filled with any string.
  const SLOTS: Record<string, { base: Record<string, unknown>; slots: string[] }> = {
    'app@.service': {
      base: { image: 'x', tag: 'x', ports: ['x'], env: { FOO: 'x' }, args: ['x'], runtime: 'docker', name: 'x', description: 'x' },
      slots: ['image', 'tag', 'ports.0', 'env.FOO', 'args.0', 'runtime', 'name', 'description'],
    },
    'td-agent.service': {
      base: { image: 'x', tag: 'x', runtime: 'docker', port: 'x', configDir: 'x', confFile: 'x', bufferDir: 'x', fluentUid: 'x', journalDir: 'x', env: { FOO: 'x' }, args: ['x'] },
      slots: ['image', 'tag', 'runtime', 'port', 'configDir', 'confFile', 'bufferDir', 'fluentUid', 'journalDir', 'env.FOO', 'args.0'],
    },
    'dd-agent.service': {
      base: { image: 'x', tag: 'x', site: 'x', hostname: 'x', confDir: 'x', runDir: 'x', containerSocket: 'x', hostNamespaces: true, dogstatsd: true, env: { FOO: 'x' }, args: ['x'] },
      slots: ['image', 'tag', 'site', 'hostname', 'confDir', 'runDir', 'containerSocket', 'env.FOO', 'args.0'],
    },
    'fleetx-agent.service': {
      base: { node: 'x', fleetxBin: 'x', endpoints: ['x'], metadata: { k: 'x' }, etcdCaFile: 'x', etcdCertFile: 'x', etcdKeyFile: 'x' },
      slots: ['node', 'fleetxBin', 'endpoints.0', 'metadata.k', 'etcdCaFile', 'etcdCertFile', 'etcdKeyFile'],
    },
  };
  const withSlot = (base: Record<string, unknown>, slot: string, v: string) => {
    const copy = structuredClone(base) as Record<string, unknown>;
    const parts = slot.split('.');
    let cur = copy as Record<string, unknown>;
    for (const p of parts.slice(0, -1)) cur = cur[p] as Record<string, unknown>;
    cur[parts.at(-1)!] = v;
    return copy;
  };

  it.each(Object.keys(SLOTS))('%s: any string in any slot gives an error or the baseline directives', (name) => {
    const { base, slots } = SLOTS[name]!;
    const src = shipped(name);
    const want = keys(renderTemplate(src, base, { templateName: name }).unit);
    const nasty = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc.string({ unit: fc.constantFrom('\n', '\r', '\0', '\\', '%', '$', '"', "'", ' ', ';', '-', '=', '[', ']', 'a', '\u0085'), minLength: 1, maxLength: 20 }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...slots), nasty, (slot, v) => {
        let unit: UnitFile;
        try {
          unit = renderTemplate(src, withSlot(base, slot, v), { templateName: name }).unit;
        } catch (e) {
          expect(e).toBeInstanceOf(FleetxError);
          return;
        }
        expect(keys(unit)).toEqual(want);
      }),
      { numRuns: 400 },
    );
  });

  it.each(Object.keys(SLOTS))('%s: an ordinary value in any slot renders, with the baseline directives (a renderer that refuses everything fails here)', (name) => {
    const { base, slots } = SLOTS[name]!;
    const src = shipped(name);
    const want = keys(renderTemplate(src, base, { templateName: name }).unit);
    // the runtime is one of a list ({{oneOf}}) and picks other directives; every other slot takes any ordinary value
    const slotAndValue = fc.constantFrom(...slots).chain((slot) => fc.tuple(fc.constant(slot), slot === 'runtime' ? fc.constantFrom('docker', 'podman') : ordinary));
    fc.assert(
      fc.property(slotAndValue, ([slot, v]) => {
        const { unit } = renderTemplate(src, withSlot(base, slot, v), { templateName: name });
        if (slot !== 'runtime') expect(keys(unit)).toEqual(want);
      }),
      { numRuns: 200 },
    );
  });
});
