/**
 * A provisioning step that fails in a sandbox host: cloud-init's status says
 * so, the agent's journal says why, and `sandbox up` names the host with
 * fleetx's reason (from cloud-init's output log) instead of a bare timeout.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { openHost } from '../../src/sandbox/host.js';
import { sandboxDown, sandboxUp, type SandboxOptions } from '../../src/sandbox/sandbox.js';
import { leftovers, testNet, testStateDir } from '../helpers/hosts.js';

const net = testNet();
const stateDir = testStateDir('pfail');
const prefix = `fxp${randomBytes(1).toString('hex')}`;
const name = `${prefix}-1`;
const opts: SandboxOptions = { hosts: 1, stateDir, repoRoot: process.cwd(), bridge: net.bridge, subnet: net.prefix, hostPrefix: prefix };
// A CA file in PEM form; the sandbox etcd speaks plain http, so no TLS handshake completes whatever it holds.
const CA = '-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n';

describe('a sandbox host whose provisioning fails', { timeout: 400_000 }, () => {
  afterAll(async () => {
    await sandboxDown(stateDir);
    expect(await leftovers(stateDir, net.bridge, [{ name, dir: `${stateDir}/hosts/${name}` }])).toEqual([]);
  });

  it('bad endpoint: up fails naming the host and the step; status --long and the agent\'s journal say why', async () => {
    const bad = `http://${net.prefix}.1:2999`; // nothing listens there
    const up = sandboxUp({ ...opts, values: { etcd: { endpoints: [bad] }, registerTimeout: 10 } });
    await expect(up).rejects.toMatchObject({
      kind: 'failed',
      message: expect.stringMatching(new RegExp(`^host ${name}: provisioning by cloud-init failed \\(status error: .*scripts-user.*\\): the agent did not register in etcd within 10s`)),
      hint: expect.stringContaining(`agent starting; etcd endpoints ["${bad}"]`),
    });
    const host = openHost(`${stateDir}/hosts/${name}`)!;
    const status = await host.exec(['cloud-init', 'status', '--long']);
    expect(status.stdout).toMatch(/^status: error$/m);
    expect(status.stdout).toMatch(/scripts-user/);
    const journal = await host.exec(['journalctl', '-u', 'fleetx-agent', '-o', 'cat', '--no-pager']);
    expect(journal.stdout).toContain(`"endpoints":["${bad}"]`);
    expect(journal.stdout).not.toContain('machine registered');
  });

  it('TLS that etcd does not speak (https with a CA; the sandbox etcd is plain http): the same, with the agent\'s TLS error quoted', async () => {
    await sandboxDown(stateDir);
    const up = sandboxUp({ ...opts, values: { etcd: { endpoints: [`https://${net.prefix}.1:2379`] }, secrets: { etcdCa: CA }, registerTimeout: 10 } });
    await expect(up).rejects.toMatchObject({
      kind: 'failed',
      message: expect.stringMatching(new RegExp(`^host ${name}: provisioning by cloud-init failed \\(status error: .*\\): the agent did not register in etcd within 10s`)),
      hint: expect.stringMatching(/registering the machine failed; retrying: .*secure TLS connection/),
    });
    const host = openHost(`${stateDir}/hosts/${name}`)!;
    const journal = await host.exec(['journalctl', '-u', 'fleetx-agent', '-o', 'cat', '--no-pager']);
    expect(journal.stdout).toContain('secure TLS connection');
    expect(journal.stdout).not.toContain('machine registered');
    // The CA is a secret file: 0600 in the 0700 secrets dir.
    const modes = await host.exec(['stat', '-c', '%a %n', '/etc/fleetx/secrets', '/etc/fleetx/secrets/etcd-ca.pem']);
    expect(modes.stdout.trim().split('\n')).toEqual(['700 /etc/fleetx/secrets', '600 /etc/fleetx/secrets/etcd-ca.pem']);
  });
});
