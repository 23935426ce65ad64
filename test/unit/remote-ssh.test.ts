import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sshOptions } from '../../src/cli/commands/remote.js';
import { shellQuote, sshArgv, untilInputEnds, type SshOptions } from '../../src/remote/ssh.js';

const execFileP = promisify(execFile);

const strict: SshOptions = { user: 'root', strictHostKeyChecking: true };

/** What a real shell makes of the remote command line ssh sends: the argv it runs. */
async function throughShell(shell: string, commandLine: string): Promise<string[]> {
  // sshd runs the user's shell as `shell -c "<command line>"`.
  const { stdout } = await execFileP(shell, ['-c', commandLine], { encoding: 'buffer' });
  const parts = stdout.toString('utf8').split('\0');
  parts.pop();
  return parts;
}

/** The remote command line sshArgv builds: its last element. */
const remoteLine = (command: string[]) => sshArgv('h', command, strict, false).at(-1)!;

const SPECIAL = ["'", '"', '\\', '$', '`', ' ', '\n', '\t', ';', '&', '|', '*', '?', '~', '#', '(', ')', '<', '>', '!', '{', '}', '=', '%', '-', '[', ']', 'é', '日', '😀'];
/** Anything but NUL, which no argv can hold; weighted towards what shells treat specially. */
const arg = fc.string({ unit: fc.oneof(fc.constantFrom(...SPECIAL), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), maxLength: 12 });

describe('shellQuote', () => {
  it.each([
    ['plain', 'systemctl', 'systemctl'],
    ['path and options', '--lines=5', '--lines=5'],
    ['a unit name', 'app@1.service', 'app@1.service'],
    ['empty', '', "''"],
    ['space', 'a b', "'a b'"],
    ['single quote', "it's", "'it'\\''s'"],
    ['command substitution', '$(id)', "'$(id)'"],
    ['semicolon', 'a;b', "'a;b'"],
    ['glob', '*', "'*'"],
    ['tilde', '~root', "'~root'"],
  ])('%s: %j -> %s', (_, input, expected) => {
    expect(shellQuote(input)).toBe(expected);
  });

  it.each(['/bin/sh', '/bin/bash'])('round-trips any arguments through %s -c', async (shell) => {
    await fc.assert(
      fc.asyncProperty(fc.array(arg, { maxLength: 5 }), async (args) => {
        expect(await throughShell(shell, remoteLine(['printf', '%s\\0', ...args]))).toEqual(args.length === 0 ? [''] : args);
      }),
      { numRuns: 150 },
    );
  });
});

describe('sshArgv', () => {
  it('checks host keys against the given file, logs in with the key only, never prompts', () => {
    const argv = sshArgv('10.0.0.5', ['cat', '/etc/hostname'], { ...strict, knownHostsFile: '/k', identityFile: '/id', port: 2222 }, false);
    expect(argv).toEqual([
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'ConnectTimeout=10',
      '-l', 'root',
      '-o', 'UserKnownHostsFile=/k',
      '-p', '2222',
      '-i', '/id', '-o', 'IdentitiesOnly=yes',
      '-T',
      '--', '10.0.0.5',
      'cat /etc/hostname',
    ]);
  });

  it.each([
    ['a jump host', { tunnel: 'core@bastion:22' }, ['-J', 'core@bastion:22']],
    ['agent forwarding', { forwardAgent: true }, ['-A']],
    ['no strict checking and no file: nothing is remembered', { strictHostKeyChecking: false }, ['StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null']],
  ] as Array<[string, Partial<SshOptions>, string[]]>)('%s', (_, extra, expected) => {
    const argv = sshArgv('h', ['true'], { ...strict, ...extra }, false);
    for (const e of expected) expect(argv).toContain(e);
  });

  it('asks for a terminal only for an interactive shell, and sends no command then', () => {
    expect(sshArgv('h', [], strict, true).slice(-3)).toEqual(['-t', '--', 'h']);
  });

  it('the host can never be read as an option, whatever the registry says', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), (host) => {
        const argv = sshArgv(host, ['true'], strict, false);
        expect(argv[argv.indexOf('--') + 1]).toBe(host);
      }),
    );
  });
});

describe('sshOptions', () => {
  const flags = { strictHostKeyChecking: true };
  it.each([
    ['defaults', {}, {}, { user: 'root', strictHostKeyChecking: true }],
    ['FLEETX_* variables', {}, { FLEETX_KNOWN_HOSTS_FILE: '/k', FLEETX_SSH_IDENTITY_FILE: '/id', FLEETX_SSH_USERNAME: 'core', FLEETX_SSH_PORT: '2222', FLEETX_TUNNEL: 'b' }, { knownHostsFile: '/k', identityFile: '/id', user: 'core', port: 2222, tunnel: 'b' }],
    ['FLEETCTL_* fallback', {}, { FLEETCTL_SSH_USERNAME: 'core', FLEETCTL_STRICT_HOST_KEY_CHECKING: 'false' }, { user: 'core', strictHostKeyChecking: false }],
    ['flags win over variables', { knownHostsFile: '/flag', sshUsername: 'a' }, { FLEETX_KNOWN_HOSTS_FILE: '/env', FLEETX_SSH_USERNAME: 'b' }, { knownHostsFile: '/flag', user: 'a' }],
  ] as Array<[string, object, NodeJS.ProcessEnv, Partial<SshOptions>]>)('%s', (_, f, env, expected) => {
    expect(sshOptions({ ...flags, ...f }, env)).toMatchObject(expected);
  });

  it('refuses a port that is not a number', () => {
    expect(() => sshOptions({ ...flags, sshPort: '22; rm' }, {})).toThrow(expect.objectContaining({ kind: 'usage' }));
  });
});

describe('untilInputEnds: the remote command ends when the session\'s input does', () => {
  /** The wrapped command line run by a real shell, as sshd would; its stdin a pipe we hold. */
  function runWrapped(command: string[]) {
    const child = spawn('/bin/sh', ['-c', remoteLine(untilInputEnds(command))], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    return { child, exit, out: () => out };
  }

  it('passes arguments through unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(arg, { maxLength: 5 }), async (args) => {
        const r = runWrapped(['printf', '%s\\0', ...args]);
        expect(await r.exit).toBe(0);
        const parts = r.out().split('\0');
        parts.pop();
        expect(parts).toEqual(args.length === 0 ? [''] : args);
        r.child.stdin.end();
      }),
      { numRuns: 40 },
    );
  });

  it('a command that would run forever ends once stdin closes (the caller died), and nothing is left', async () => {
    const r = runWrapped(['sleep', '1000']);
    r.child.stdin.end(); // what the kernel does when the caller is SIGKILLed
    expect(await r.exit).toBe(143); // the command's own status: SIGTERM
  });

  it('a command runs to its end while stdin stays open (the caller is alive)', async () => {
    const r = runWrapped(['sh', '-c', 'sleep 1; echo finished']);
    expect(await r.exit).toBe(0);
    expect(r.out()).toBe('finished\n');
    r.child.stdin.end();
  });

  it('gives the command\'s exit status while stdin stays open', async () => {
    const r = runWrapped(['sh', '-c', 'exit 3']);
    expect(await r.exit).toBe(3);
    r.child.stdin.end();
  });
});
