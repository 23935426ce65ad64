/**
 * cloud-config/flatcar/worker.bu against Butane's documented Flatcar v1.0.0
 * schema (test/helpers/butane.ts), and its Ignition 3.3.0 translation against
 * Debian's `ignition-validate` (package ignition, scripts/setup.sh).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTool } from '../helpers/tool.js';
import { parse as parseYaml } from 'yaml';
import { parseUnit } from '../../src/unit/parse.js';
import { butaneFlatcar, toIgnition } from '../helpers/butane.js';

const BU = new URL('../../cloud-config/flatcar/worker.bu', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fleetx-butane-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Butane reads YAML 1.1 (go-yaml): `mode: 0600` is octal.
const read = (text: string) => parseYaml(text, { version: '1.1' }) as unknown;

async function ignitionValidate(config: unknown): Promise<{ code: number; out: string }> {
  const file = join(dir, 'config.ign');
  writeFileSync(file, JSON.stringify(config));
  return runTool('ignition-validate', [file]);
}

describe('cloud-config/flatcar/worker.bu', () => {
  const parsed = butaneFlatcar.safeParse(read(readFileSync(BU, 'utf8')));

  it('follows Butane\'s Flatcar v1.0.0 spec (strict: no unknown key)', () => {
    expect(parsed.error?.issues ?? []).toEqual([]);
  });

  it('secrets are 0600 in a 0700 dir; downloads are checked by hash; units parse', () => {
    const c = parsed.data!;
    const mode = (p: string) => [...c.storage!.files!, ...c.storage!.directories!].find((f) => f.path === p)?.mode;
    expect(mode('/etc/fleetx/secrets')).toBe(0o700);
    for (const f of c.storage!.files!.filter((x) => x.path.startsWith('/etc/fleetx/secrets/'))) expect([f.path, f.mode]).toEqual([f.path, 0o600]);
    for (const f of c.storage!.files!.filter((x) => x.contents?.source)) expect(f.contents!.verification?.hash).toMatch(/^sha256-/);
    for (const u of c.systemd!.units) expect(() => parseUnit(u.contents!, u.name)).not.toThrow();
    const agent = c.systemd!.units.find((u) => u.name === 'fleetx-agent.service')!;
    expect(agent.contents).toContain('--metadata "role=worker"');
  });

  it('its Ignition 3.3.0 translation passes ignition-validate', async () => {
    const r = await ignitionValidate(toIgnition(parsed.data!));
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  });

  it.each([
    ['an unknown key', (c: Record<string, any>) => ({ ...c, storage: { ...c.storage, filez: [] } }), /Unrecognized key/],
    ['a file with both source and inline', (c: Record<string, any>) => ({ ...c, storage: { ...c.storage, files: [{ path: '/a', contents: { source: 'https://x', inline: 'y' } }] } }), /mutually exclusive/],
    ['a bad hash', (c: Record<string, any>) => ({ ...c, storage: { ...c.storage, files: [{ path: '/a', contents: { source: 'https://x', verification: { hash: 'md5-00' } } }] } }), /hash is sha256/],
    ['a setuid file', (c: Record<string, any>) => ({ ...c, storage: { ...c.storage, files: [{ path: '/a', mode: 0o4755 }] } }), /too big|<=/],
    ['a drop-in not ending in .conf', (c: Record<string, any>) => ({ ...c, systemd: { units: [{ name: 'a.service', dropins: [{ name: 'x' }] }] } }), /\.conf/],
  ])('the schema check bites: %s', (_what, change, message) => {
    const r = butaneFlatcar.safeParse(change(read(readFileSync(BU, 'utf8')) as Record<string, unknown>));
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.message).join('; ')).toMatch(message);
  });

  it('ignition-validate bites too: a file mode as a string is refused', async () => {
    const ign = toIgnition(parsed.data!) as { storage: { files: Array<Record<string, unknown>> } };
    ign.storage.files[0]!.mode = '0644';
    const r = await ignitionValidate(ign);
    expect(r.code).not.toBe(0);
  });
});
