/**
 * etcd authentication in the sandbox, set up the way a production cluster
 * should be (docs/SECURITY.md), so that secrets are protected for real:
 *
 *   user              role              may
 *   root              root              everything (only `sandbox up` uses it)
 *   fleetx-agent      fleetx-agent      readwrite {p}/,  read  {p}-secrets/  (the hosts' agents)
 *   fleetx-operator   fleetx-operator   readwrite {p}/,  write {p}-secrets/  (the CLI, the presence syncer)
 *
 * The operator can store and remove a secret but never read a value back;
 * only the agents can. Passwords are random, made once per sandbox and kept
 * in state.json (0600): the operator's go into the env file (0600), the
 * agent's into each host's user-data (seed.ts), which cloud-init writes to
 * /etc/fleetx/secrets/fleetx-agent.env (0600 in a 0700 dir).
 * Everything goes through the gRPC API, never etcdctl, so no password is
 * ever in a process's argv.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { failedError } from '../errors/errors.js';
import { etcd3 } from '../registry/libraries.js';
import { keyspace } from '../registry/keys.js';

export interface EtcdCredentials {
  username: string;
  password: string;
}

export interface SandboxEtcdAuth {
  rootPassword: string;
  agent: EtcdCredentials;
  operator: EtcdCredentials;
}

export type Permission = 'Read' | 'Write' | 'Readwrite';

export interface RoleSpec {
  role: string;
  grants: Array<{ permission: Permission; prefix: string }>;
}

export const AGENT_USER = 'fleetx-agent';
export const OPERATOR_USER = 'fleetx-operator';

const password = () => randomBytes(18).toString('base64url');

/** Fresh random credentials for a new sandbox. */
export function newEtcdAuth(): SandboxEtcdAuth {
  return { rootPassword: password(), agent: { username: AGENT_USER, password: password() }, operator: { username: OPERATOR_USER, password: password() } };
}

/** Pure: the two roles for fleetx data under `prefix`. */
export function fleetxRoles(prefix = '/fleetx'): RoleSpec[] {
  const k = keyspace(prefix);
  return [
    { role: AGENT_USER, grants: [{ permission: 'Readwrite', prefix: `${k.prefix}/` }, { permission: 'Read', prefix: k.secretValues() }] },
    { role: OPERATOR_USER, grants: [{ permission: 'Readwrite', prefix: `${k.prefix}/` }, { permission: 'Write', prefix: k.secretValues() }] },
  ];
}

const already = (e: unknown) => /already exist/i.test((e as Error).message ?? '');

/**
 * Makes the users and roles exist with these passwords and turns auth on.
 * Idempotent: on an etcd whose auth is already on it logs in as root and
 * puts users, roles and passwords right again.
 * @throws FleetxError 'failed' when etcd refuses (e.g. root's password changed behind our back).
 */
export async function ensureEtcdAuth(endpoints: string[], auth: SandboxEtcdAuth, prefix = '/fleetx', timeoutMs = 20_000): Promise<void> {
  // members just (re)started may not take connections yet: a few attempts, all members
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await ensureOnce(endpoints, auth, prefix);
    } catch (e) {
      if (Date.now() >= until || !/UNAVAILABLE|No connection|ECONNREFUSED|deadline/i.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function ensureOnce(endpoints: string[], auth: SandboxEtcdAuth, prefix: string): Promise<void> {
  const open = (asRoot: boolean): Etcd3 =>
    new etcd3.Etcd3({
      hosts: endpoints,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 5_000 }),
      ...(asRoot ? { auth: { username: 'root', password: auth.rootPassword } } : {}),
    });
  let client = open(false);
  try {
    try {
      await client.getUsers();
    } catch {
      // auth is on already (an empty user name is refused): the rest as root
      client.close();
      client = open(true);
    }
    await setUp(client, auth, prefix);
  } catch (e) {
    throw failedError(`cannot set up etcd authentication at ${endpoints.join(', ')}: ${(e as Error).message}`, 'the sandbox etcd may hold users from elsewhere: `fleetx sandbox down` and up again');
  } finally {
    client.close();
  }
}

async function setUp(client: Etcd3, auth: SandboxEtcdAuth, prefix: string): Promise<void> {
  const user = async (name: string, pw: string, role: string) => {
    try {
      await client.user(name).create(pw);
    } catch (e) {
      if (!already(e)) throw e;
      await client.user(name).setPassword(pw);
    }
    await client.user(name).addRole(role);
  };
  for (const spec of fleetxRoles(prefix)) {
    try {
      await client.role(spec.role).create();
    } catch (e) {
      if (!already(e)) throw e;
    }
    await client.role(spec.role).grant(spec.grants.map((g) => ({ permission: g.permission, range: etcd3.Range.prefix(g.prefix) })));
  }
  try {
    await client.role('root').create();
  } catch (e) {
    if (!already(e)) throw e;
  }
  await user('root', auth.rootPassword, 'root');
  await user(auth.agent.username, auth.agent.password, AGENT_USER);
  await user(auth.operator.username, auth.operator.password, OPERATOR_USER);
  await client.auth.authEnable();
}
