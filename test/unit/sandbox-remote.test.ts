/** The pure parts of what lets fleetx reach sandbox hosts over SSH. */
import { describe, expect, it } from 'vitest';
import { knownHostsText, sshdDropIn } from '../../src/sandbox/sshd.js';
import { envFileText, envValues } from '../../src/sandbox/state.js';

describe('sandbox SSH files', () => {
  it('known_hosts names each host by its address, without key comments', () => {
    expect(knownHostsText([
      { address: '10.213.0.11', hostKey: 'ssh-ed25519 AAAAone root@sandbox-1\n' },
      { address: '10.213.0.12', hostKey: 'ssh-ed25519 AAAAtwo' },
    ])).toBe('10.213.0.11 ssh-ed25519 AAAAone\n10.213.0.12 ssh-ed25519 AAAAtwo\n');
  });

  it('sshd serves only the host\'s own key and takes keys only', () => {
    const conf = sshdDropIn();
    expect(conf.match(/^HostKey .*/gm)).toEqual(['HostKey /etc/ssh/ssh_host_ed25519_key']);
    expect(conf).toMatch(/^PasswordAuthentication no$/m);
    expect(conf).toMatch(/^PermitRootLogin prohibit-password$/m);
  });

  it('the env file points fleetx at the known_hosts file and the client key', () => {
    expect(envValues(['http://10.213.0.1:2379'], '/var/lib/s')).toEqual({
      FLEETX_ENDPOINT: 'http://10.213.0.1:2379',
      FLEETX_SANDBOX_DIR: '/var/lib/s',
      FLEETX_KNOWN_HOSTS_FILE: '/var/lib/s/known_hosts',
      FLEETX_SSH_IDENTITY_FILE: '/var/lib/s/id_ed25519',
      FLEETX_SSH_USERNAME: 'root',
    });
    expect(envFileText(['http://10.213.0.1:2379'], '/var/lib/s')).toContain(
      "export FLEETX_KNOWN_HOSTS_FILE='/var/lib/s/known_hosts'\nexport FLEETX_SSH_IDENTITY_FILE='/var/lib/s/id_ed25519'\nexport FLEETX_SSH_USERNAME='root'\n",
    );
  });
});
