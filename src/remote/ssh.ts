/**
 * Running commands on machines, as fleetctl's status / journal / ssh did:
 * over OpenSSH, with host keys checked against a known-hosts file and an
 * optional jump host (--tunnel). The remote side of SSH hands the command
 * to a shell, so every argument is quoted here; nothing the user or the
 * registry supplies is ever interpreted by a shell.
 */
import { spawn } from 'node:child_process';
import { failedError, unavailableError } from '../errors/errors.js';

export interface SshOptions {
  user: string;
  port?: number;
  /** jump host, user@host[:port] (fleetctl's --tunnel) */
  tunnel?: string;
  knownHostsFile?: string;
  /** false only for throwaway hosts; fleetctl also defaulted to true */
  strictHostKeyChecking: boolean;
  identityFile?: string;
  forwardAgent?: boolean;
  connectTimeoutSec?: number;
}

/** POSIX single-quote one argument so the remote shell passes it through verbatim. */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The argv of the ssh process (without "ssh" itself). Pure, for tests. */
export function sshArgv(host: string, command: string[], opts: SshOptions, tty: boolean): string[] {
  const argv: string[] = [
    '-o', 'BatchMode=yes',
    '-o', `StrictHostKeyChecking=${opts.strictHostKeyChecking ? 'yes' : 'no'}`,
    '-o', `ConnectTimeout=${opts.connectTimeoutSec ?? 10}`,
    '-l', opts.user,
  ];
  if (opts.knownHostsFile) argv.push('-o', `UserKnownHostsFile=${opts.knownHostsFile}`);
  if (!opts.strictHostKeyChecking && !opts.knownHostsFile) argv.push('-o', 'UserKnownHostsFile=/dev/null');
  if (opts.port) argv.push('-p', String(opts.port));
  if (opts.identityFile) argv.push('-i', opts.identityFile, '-o', 'IdentitiesOnly=yes');
  if (opts.tunnel) argv.push('-J', opts.tunnel);
  if (opts.forwardAgent) argv.push('-A');
  argv.push(tty ? '-t' : '-T');
  argv.push('--', host);
  if (command.length > 0) argv.push(command.map(shellQuote).join(' '));
  return argv;
}

/**
 * Run a command on a host with the terminal attached and return its exit
 * code. Throws 'unavailable' when ssh itself cannot connect (exit 255).
 */
export async function runRemote(host: string, command: string[], opts: SshOptions, tty: boolean): Promise<number> {
  const argv = sshArgv(host, command, opts, tty);
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('ssh', argv, { stdio: 'inherit' });
    child.on('error', (e) => reject(failedError(`cannot run ssh: ${e.message}`, 'install openssh-client')));
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  if (code === 255) {
    throw unavailableError(`cannot reach ${opts.user}@${host} over SSH${opts.tunnel ? ` through ${opts.tunnel}` : ''}`);
  }
  return code;
}
