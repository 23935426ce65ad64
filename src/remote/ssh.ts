/**
 * Running commands on machines, as fleetctl's status / journal / ssh did:
 * over OpenSSH, with host keys checked against a known-hosts file and an
 * optional jump host (--tunnel). The remote side of SSH hands the command
 * to a shell, so every argument is quoted here; nothing the user or the
 * registry supplies is ever interpreted by a shell.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { FleetxError, failedError } from '../errors/errors.js';

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

/** Where a remote command's output goes when it is not handed the terminal: one call per line, without its newline. */
export interface RemoteOutput {
  stdout(line: string): void;
  stderr(line: string): void;
}

export interface RunRemoteOptions {
  /** Ask for a remote terminal (`-t`): an interactive shell. */
  tty: boolean;
  /**
   * Pipe the output, line by line, here instead of sharing this process's
   * stdout/stderr with ssh (in-process callers and tests). A remote terminal
   * always gets this process's streams.
   */
  output?: RemoteOutput;
  /**
   * The remote command must end when this process does, however it ends
   * (SIGKILL included), for commands that never read input (`journal -f`,
   * `status`). ssh's stdin is then a pipe this process holds open and never
   * writes: when the process dies the pipe closes, ssh passes the EOF on, and
   * the remote wrapper (`untilInputEnds`) stops the command; the command
   * then exits, and so does ssh. Without it a killed `journal -f` left ssh
   * and the remote `journalctl --follow` running until the unit next logged.
   */
  endWithCaller?: boolean;
}

/** POSIX single-quote one argument so the remote shell passes it through verbatim. */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Pure: `command` wrapped for a POSIX shell so that it is terminated once the
 * session's stdin reaches EOF. The command itself reads /dev/null; a watcher
 * (its output to /dev/null, so it never holds the session open) waits for EOF
 * and sends SIGTERM. The wrapper's status is the command's.
 */
export function untilInputEnds(command: string[]): string[] {
  // A non-interactive shell gives background jobs /dev/null as stdin, so the
  // session's stdin is kept on fd 3 for the watcher.
  const script = [
    'exec 3<&0',
    '"$@" </dev/null 3<&- & p=$!',
    '{ cat <&3 >/dev/null 2>&1; kill $p 2>/dev/null; } >/dev/null 2>&1 & w=$!',
    'exec 3<&-',
    'wait $p; s=$?',
    'kill $w 2>/dev/null',
    'exit $s',
  ].join('; ');
  return ['sh', '-c', script, 'fleetx-remote', ...command];
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

/** Splits a byte stream into lines (a line may span chunks; UTF-8 is decoded across chunk borders). */
function lineSink(emit: (line: string) => void): { write(chunk: Buffer): void; end(): void } {
  const decoder = new TextDecoder();
  let rest = '';
  return {
    write(chunk) {
      const lines = (rest + decoder.decode(chunk, { stream: true })).split('\n');
      rest = lines.pop()!;
      for (const l of lines) emit(l);
    },
    end() {
      rest += decoder.decode();
      if (rest !== '') emit(rest);
      rest = '';
    },
  };
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** What ssh says when the host's key is not the one on record. */
const HOST_KEY = /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/;
const UNKNOWN_HOST = /No \S+ host key is known for/;

/**
 * Runs a command on a host and returns its exit code (128+n when it ended
 * by signal n). SIGINT/SIGTERM/SIGHUP sent to this process while it runs
 * are passed on to ssh, so `journal -f` stops with it and leaves nothing
 * behind on either side.
 * @throws FleetxError 'unavailable' when ssh cannot connect or the host key
 *         does not match the known-hosts file (ssh's exit 255),
 *         'failed' when ssh cannot be run at all, and 'failed' with exit
 *         code 128+n ("interrupted by SIGxxx") after passing on signal n.
 */
export async function runRemote(host: string, command: string[], opts: SshOptions, run: RunRemoteOptions): Promise<number> {
  const ending = run.endWithCaller === true && !run.tty;
  const argv = sshArgv(host, ending ? untilInputEnds(command) : command, opts, run.tty);
  const piped = run.output !== undefined && !run.tty ? run.output : undefined;
  const sshSaid: string[] = [];
  let interrupted: NodeJS.Signals | undefined;
  const code = await new Promise<number>((resolve, reject) => {
    const stdin = ending ? 'pipe' : 'inherit';
    const child = spawn('ssh', argv, { stdio: piped ? [stdin, 'pipe', 'pipe'] : [stdin, 'inherit', 'inherit'] });
    // never written; closed by the kernel when this process dies (see endWithCaller)
    child.stdin?.on('error', () => undefined);
    const forward = (sig: NodeJS.Signals) => {
      interrupted ??= sig;
      child.kill(sig);
    };
    for (const s of FORWARDED) process.on(s, forward);
    const done = () => {
      for (const s of FORWARDED) process.off(s, forward);
    };
    if (piped) {
      const out = lineSink((l) => piped.stdout(l));
      const err = lineSink((l) => {
        sshSaid.push(l);
        if (sshSaid.length > 20) sshSaid.shift();
        piped.stderr(l);
      });
      child.stdout!.on('data', (c: Buffer) => out.write(c));
      child.stderr!.on('data', (c: Buffer) => err.write(c));
      child.stdout!.on('end', () => out.end());
      child.stderr!.on('end', () => err.end());
    }
    child.on('error', (e) => {
      done();
      reject(failedError(`cannot run ssh: ${e.message}`, 'install openssh-client'));
    });
    // 'close', not 'exit': all output has been read by then.
    child.on('close', (c, signal) => {
      done();
      resolve(c ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
    });
  });
  // ssh stopped on our behalf may say 255 ("Killed by signal"): not a connection problem.
  if (interrupted) throw interruptedError(interrupted);
  if (code === 255) throw connectError(host, opts, sshSaid.join('\n'));
  return code;
}

/** Exit status 128+n, as a shell reports a command killed by signal n. */
function interruptedError(sig: NodeJS.Signals): FleetxError {
  return new FleetxError('failed', `interrupted by ${sig}`, { exitCode: 128 + (constants.signals[sig] ?? 0) });
}

function connectError(host: string, opts: SshOptions, said: string): FleetxError {
  const where = `${opts.user}@${host}${opts.tunnel ? ` through ${opts.tunnel}` : ''}`;
  const file = opts.knownHostsFile ?? '~/.ssh/known_hosts';
  if (UNKNOWN_HOST.test(said)) {
    return new FleetxError('unavailable', `refusing to connect to ${where}: no SSH host key is on record for it in ${file}`, {
      hint: `add the machine's host key to ${file}, or pass --known-hosts-file`,
      retryable: false,
    });
  }
  if (HOST_KEY.test(said)) {
    return new FleetxError('unavailable', `refusing to connect to ${where}: its SSH host key does not match the one on record`, {
      hint: `known hosts: ${file}; if the machine was really re-installed, replace its entry (ssh-keygen${opts.knownHostsFile ? ` -f ${shellQuote(opts.knownHostsFile)}` : ''} -R ${shellQuote(host)})`,
      retryable: false,
    });
  }
  const last = said.trim().split('\n').pop();
  return new FleetxError('unavailable', `cannot reach ${where} over SSH${last ? `: ${last}` : ''}`);
}
