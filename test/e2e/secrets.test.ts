/**
 * End to end on real hosts, with the sandbox's etcd authentication: an API
 * key stored with `fleetx secret set` reaches a global unit on every host as
 * an environment variable, through the agent's 0600 env file, and is found
 * nowhere else: not in `fleetx cat`, not in any etcd key the operator's
 * credentials can read, not in the hosts' journals, not in any argv (`ps`).
 * Rotation rewrites the file without restarting the unit.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Host } from '../../src/sandbox/host.js';
import { fleetx } from '../helpers/cli.js';
import { useSandbox } from '../helpers/sandbox.js';

const sb = useSandbox({ tag: 'sec', hosts: 2 });

const KEY1 = randomBytes(16).toString('hex'); // the shape of a Datadog API key
const KEY2 = randomBytes(16).toString('hex');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

// The unit proves it got the key by writing its hash, never the key itself.
const PROBE = [
  '[Unit]',
  'Description=e2e secret probe',
  '[Service]',
  'EnvironmentFile=/run/fleetx/secrets/%n.env',
  'ExecStart=/bin/sh -c \'printf %%s "$$DD_API_KEY" | sha256sum | cut -d" " -f1 > /run/dd-probe.sum; exec sleep infinity\'',
  '[X-Fleet]',
  'Global=true',
  '[X-Fleet-Secrets]',
  'DD_API_KEY=dd-api-key',
  '',
].join('\n');

const setSecret = async (value: string) => {
  const r = await fleetx(['secret', 'set', 'dd-api-key'], sb.env, sb.workDir, `${value}\n`);
  if (r.code !== 0) throw new Error(`secret set exited ${r.code}: ${r.stderr}`);
  return r;
};

const probeSum = async (h: Host) => (await h.exec(['cat', '/run/dd-probe.sum'])).stdout.trim();

describe('secrets on real hosts', () => {
  it('the key reaches the unit on every host through a 0600 env file', async () => {
    const set = await setSecret(KEY1);
    expect(set.stderr).toBe(''); // the operator cannot read values back
    sb.writeUnit('dd-probe.service', PROBE);
    await sb.cliOk(['start', '--no-block', 'dd-probe.service']);
    for (const h of sb.runningHosts()) {
      await sb.until(`dd-probe on ${h.name} got the key`, async () => (await probeSum(h)) === sha(KEY1), 60_000);
      const st = await h.exec(['stat', '-c', '%a %U %n', '/run/fleetx/secrets', '/run/fleetx/secrets/dd-probe.service.env']);
      expect(st.stdout).toBe('700 root /run/fleetx/secrets\n600 root /run/fleetx/secrets/dd-probe.service.env\n');
      expect((await h.exec(['cat', '/run/fleetx/secrets/dd-probe.service.env'])).stdout).toContain(`DD_API_KEY="${KEY1}"`);
    }
  }, 120_000);

  it('the key is absent from fleetx cat, secret list, and every etcd key the operator can read', async () => {
    const cat = await sb.cliOk(['cat', 'dd-probe.service']);
    expect(cat.stdout).toContain('DD_API_KEY=dd-api-key');
    expect(cat.stdout).not.toContain(KEY1);
    expect((await sb.cliOk(['secret', 'list', '-o', 'json'])).stdout).not.toContain(KEY1);
    // sb.etcd() connects with the env file's operator credentials
    const readable = await sb.etcd().getAll().prefix('/fleetx/').strings();
    expect(Object.keys(readable).length).toBeGreaterThan(5);
    expect(JSON.stringify(readable)).not.toContain(KEY1);
    await expect(sb.etcd().getAll().prefix('/fleetx-secrets/').strings()).rejects.toThrow(/permission denied/);
    await expect(sb.etcd().getAll().prefix('').strings()).rejects.toThrow(/permission denied/);
  });

  it('the key is absent from the hosts\' journals and from every process\'s argv', async () => {
    for (const h of sb.runningHosts()) {
      const journal = await h.exec(['journalctl', '--no-pager', '-o', 'cat'], { timeoutMs: 30_000 });
      expect(journal.stdout.length).toBeGreaterThan(1000);
      expect(journal.stdout).toContain('secret env file of dd-probe.service written');
      expect(journal.stdout).not.toContain(KEY1);
      const ps = await h.exec(['ps', '-eo', 'args']);
      expect(ps.stdout).toContain('sleep infinity');
      expect(ps.stdout).not.toContain(KEY1);
    }
  }, 60_000);

  it('rotation: the file gets the new key within a pass, the running unit is not restarted; its next start reads it', async () => {
    const hosts = sb.runningHosts();
    const pids = await Promise.all(hosts.map(async (h) => (await sb.show(h, 'dd-probe.service', ['MainPID'])).MainPID));
    await setSecret(KEY2);
    for (const [i, h] of hosts.entries()) {
      await sb.until(`${h.name}: env file rotated`, async () => (await h.exec(['cat', '/run/fleetx/secrets/dd-probe.service.env'])).stdout.includes(KEY2), 30_000);
      expect((await sb.show(h, 'dd-probe.service', ['MainPID'])).MainPID).toBe(pids[i]);
      expect(await probeSum(h)).toBe(sha(KEY1));
      await h.exec(['systemctl', 'restart', 'dd-probe.service']);
      await sb.until(`${h.name}: restarted unit has the new key`, async () => (await probeSum(h)) === sha(KEY2), 30_000);
    }
  }, 120_000);

  it('secret rm: the env files go, so the unit cannot start again without it', async () => {
    await sb.cliOk(['secret', 'rm', 'dd-api-key']);
    const h = sb.runningHosts()[0]!;
    await sb.until('env file removed', async () => (await h.exec(['test', '-e', '/run/fleetx/secrets/dd-probe.service.env'])).code !== 0, 30_000);
    const restart = await h.exec(['systemctl', 'restart', 'dd-probe.service']);
    expect(restart.code).not.toBe(0);
    const journal = await h.exec(['journalctl', '-u', 'fleetx-agent', '--no-pager', '-o', 'cat']);
    expect(journal.stdout).toContain('dd-probe.service needs secret(s) dd-api-key that are not set');
  }, 60_000);
});
