/**
 * Rendered user-data against cloud-init's own schema: Debian's cloud-init
 * (22.4, installed by scripts/setup.sh) runs `cloud-init schema --config-file`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTool } from '../helpers/tool.js';
import { renderRole } from '../../src/provision/provision.js';

const CLUSTER = new URL('../fixtures/cloud-config/cluster.yaml', import.meta.url).pathname;
const NO_RUNTIME = new URL('../fixtures/cloud-config/no-runtime.yaml', import.meta.url).pathname;
const cwd = new URL('../fixtures/cloud-config/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fleetx-cloud-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Exit code and output of `cloud-init schema --config-file` on the text. */
async function schema(name: string, text: string): Promise<{ code: number; out: string }> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text, { mode: 0o600 });
  return runTool('cloud-init', ['schema', '--config-file', file]);
}

describe('cloud-init schema --config-file accepts what fleetx renders', () => {
  it.each([
    ['web', 'web', [CLUSTER], []],
    ['worker', 'worker', [CLUSTER], []],
    ['web on a prebuilt image', 'web', [CLUSTER], ['packages.preinstalled=true']],
    ['worker with nspawn runtime settings', 'worker', [CLUSTER], ['runtime.storageDriver=vfs', 'runtime.cgroups=disabled', 'runtime.network=host']],
    ['worker, no runtime, plain http etcd', 'worker', [NO_RUNTIME], ['etcd.endpoints[0]=http://10.0.0.1:2379', 'fleetx.url=file:///var/lib/fleetx/fleetx.tgz', `fleetx.sha256=${'a'.repeat(64)}`]],
  ])('%s', async (name, role, files, sets) => {
    const { text } = renderRole({ role, files, sets, cwd });
    const r = await schema(name.replace(/\W+/g, '-'), text);
    expect(r.out).toContain('Valid cloud-config');
    expect(r.code).toBe(0);
  });

  it('the check bites: a write_files mode given as a number is refused', async () => {
    const { text } = renderRole({ role: 'web', files: [CLUSTER], sets: [], cwd });
    const r = await schema('broken', text.replace("permissions: '0755'", 'permissions: 0755'));
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/permissions: 493 is not of type 'string'/);
  });
});
