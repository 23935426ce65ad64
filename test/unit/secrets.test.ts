import { describe, expect, it } from 'vitest';
import { envFileText, quoteEnvValue } from '../../src/secrets/env-file.js';
import { checkSecretName, normalizeSecretValue } from '../../src/secrets/names.js';
import { referencedSecrets, secretEnvFile, secretReferences, SECRETS_ENV_FILE } from '../../src/secrets/references.js';
import { parseUnit } from '../../src/unit/parse.js';
import { errorOf } from '../helpers/errors.js';

const unit = (extra: string, envFile = `EnvironmentFile=${SECRETS_ENV_FILE}\n`) =>
  parseUnit(`[Service]\n${envFile}ExecStart=/usr/bin/podman run --env DD_API_KEY img\n\n${extra}`);

const thrown = (fn: () => unknown) => errorOf(fn);

describe('secret names and values', () => {
  it.each(['dd-api-key', 'db.password', 'a', 'x_1'])('%s is a name', (n) => expect(checkSecretName(n)).toBe(n));
  it.each(['', 'DD', '-a', 'a-', 'a/b', 'a b', 'x'.repeat(64), '../etc'])('%j is not', (n) => expect(thrown(() => checkSecretName(n)).kind).toBe('invalid'));

  it('drops one final newline (echo, a file\'s last line) and keeps everything else', () => {
    expect(normalizeSecretValue('abc\n')).toBe('abc');
    expect(normalizeSecretValue('a b\t"c" $d\r\n')).toBe('a b\t"c" $d');
  });

  it.each([
    ['empty', '\n', /empty/],
    ['two lines', 'a\nb', /line break/],
    ['a NUL', 'a\u0000b', /control character \(U\+0000\)/],
    ['too large', 'x'.repeat(64 * 1024 + 1), /larger than 64 KiB/],
  ])('%s is refused without quoting the value', (_n, v, msg) => {
    const e = thrown(() => normalizeSecretValue(v));
    expect(e.kind).toBe('invalid');
    expect(e.message).toMatch(msg);
    expect(e.message).not.toContain(v.trim() || '\u0000');
  });
});

describe('[X-Fleet-Secrets] references', () => {
  it('reads ENV=name lines in order; an env var given twice keeps the last', () => {
    const refs = secretReferences(unit('[X-Fleet-Secrets]\nDD_API_KEY=dd-api-key\nDB_PASSWORD=db\nDD_API_KEY=dd-key-2\n'), 'x.service');
    expect(refs).toEqual([
      { env: 'DD_API_KEY', secret: 'dd-key-2' },
      { env: 'DB_PASSWORD', secret: 'db' },
    ]);
    expect(referencedSecrets([refs, [{ env: 'A', secret: 'db' }]])).toEqual(['db', 'dd-key-2']);
  });

  it('a unit without the section names no secrets and needs no EnvironmentFile', () => {
    expect(secretReferences(unit('', ''), 'x.service')).toEqual([]);
  });

  it.each([
    ['no EnvironmentFile line', unit('[X-Fleet-Secrets]\nA=a\n', ''), /lacks EnvironmentFile=\/run\/fleetx\/secrets\/%n\.env/],
    ['the optional "-" form', unit('[X-Fleet-Secrets]\nA=a\n', `EnvironmentFile=-${SECRETS_ENV_FILE}\n`), /lacks EnvironmentFile/],
    ['a bad variable name', unit('[X-Fleet-Secrets]\n1A=a\n'), /1A is not an environment variable name/],
    ['a value that is not a secret name', unit('[X-Fleet-Secrets]\nA=Hunter2!\n'), /is not a secret name/],
  ])('%s is refused', (_n, u, msg) => {
    const e = thrown(() => secretReferences(u, 'x.service'));
    expect(e.kind).toBe('invalid');
    expect(e.message).toMatch(msg);
    expect(e.hint).toMatch(/README/);
  });

  it('the env file of a unit is named after the unit, as systemd expands %n', () => {
    expect(secretEnvFile('app@1.service')).toBe('/run/fleetx/secrets/app@1.service.env');
  });
});

describe('the env file text', () => {
  it('quotes every value so systemd reads it back unchanged', () => {
    expect(quoteEnvValue('plain')).toBe('"plain"');
    expect(quoteEnvValue('a"b\\c$d`e\'f g')).toBe('"a\\"b\\\\c\\$d\\`e\'f g"');
  });

  it('has one line per reference, or reports the missing secrets without a text', () => {
    const refs = [{ env: 'B', secret: 'b' }, { env: 'A', secret: 'a' }];
    expect(envFileText(refs, new Map([['a', '1'], ['b', '2']])).text).toBe('# written by the fleetx agent from etcd secrets; do not edit\nB="2"\nA="1"\n');
    expect(envFileText(refs, new Map([['a', '1']]))).toEqual({ missing: ['b'] });
  });
});

describe('a template that takes secretEnv (the pattern in src/secrets/README.md)', () => {
  const TEMPLATE = [
    '[Service]',
    '{{#if secretEnv}}EnvironmentFile=/run/fleetx/secrets/%n.env{{/if}}',
    'ExecStart=/usr/bin/podman run --rm{{#each secretEnv}} --env {{@key}}{{/each}} {{image}}',
    '',
    '[X-Fleet-Secrets]',
    '{{#each secretEnv}}',
    '{{@key}}={{this}}',
    '{{/each}}',
    '',
  ].join('\n');

  it('renders references that submit accepts, and no value', async () => {
    const { renderTemplate } = await import('../../src/template/render.js');
    const r = renderTemplate(TEMPLATE, { image: 'dd-agent:7', secretEnv: { DD_API_KEY: 'dd-api-key' } }, { templateName: 'dd-agent.service' });
    expect(r.text).toContain('EnvironmentFile=/run/fleetx/secrets/%n.env');
    expect(r.text).toContain('ExecStart=/usr/bin/podman run --rm --env DD_API_KEY dd-agent:7');
    expect(secretReferences(r.unit, 'dd-agent.service')).toEqual([{ env: 'DD_API_KEY', secret: 'dd-api-key' }]);
  });
});
