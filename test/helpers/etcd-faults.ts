/**
 * Faults of a sandbox's etcd cluster (`sandboxUp({ etcdMembers: 3 })`), for
 * the fault matrix and the sandbox tests. Everything here acts from outside
 * fleetx's code paths: members are processes found through state.json and
 * signalled directly; the cluster is read with Debian's `etcdctl`.
 *
 *   const f = new EtcdFaults(stateDir);
 *   const leader = await f.leader();   f.kill(leader);   await f.restart(leader);
 *   f.freeze(a, b) ... f.thaw(a, b)    // SIGSTOP / SIGCONT
 *   await f.armNoSpace(m) ... await f.disarmNoSpace(m)
 *   await f.compact()
 *
 * Each fault leaves a way back; `healthy()` is the check a cell ends on.
 */
import type { Host } from '../../src/sandbox/host.js';
import { etcdHealthy, startEtcdMembers, type EtcdSpec } from '../../src/sandbox/etcd.js';
import { isAlive, signal, waitGone } from '../../src/sandbox/proc.js';
import { run } from '../../src/sandbox/run.js';
import { readState, writeState, type SandboxEtcdMember } from '../../src/sandbox/state.js';
import { waitFor } from './wait.js';

export type Member = SandboxEtcdMember;

export interface MemberStatus {
  /** etcd's member and leader ids, as decimal strings (they exceed 2^53). */
  memberId: string;
  leaderId: string;
  revision: number;
  dbSize: number;
  raftIndex: number;
}

export interface EtcdAuth {
  username: string;
  password: string;
}

export class EtcdFaults {
  constructor(
    readonly stateDir: string,
    /** Who etcdctl runs as (default: the sandbox's root, from state.json: alarms and compaction need it). */
    readonly auth?: EtcdAuth,
  ) {}

  /** The members as state.json names them (pid as last recorded). */
  members(): Member[] {
    const state = readState(this.stateDir);
    if (!state) throw new Error(`no sandbox at ${this.stateDir}`);
    return state.etcd.members;
  }

  endpoints(): string[] {
    return this.members().map((m) => m.clientUrl);
  }

  /** `etcdctl ARGS` against `endpoints` (default: all members). */
  async etcdctl(args: string[], endpoints = this.endpoints(), timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
    // the sandbox's etcd runs with auth: root's password from state.json, by environment (never argv)
    const root = readState(this.stateDir)?.etcd.auth?.rootPassword;
    const auth = this.auth ?? (root ? { username: 'root', password: root } : undefined);
    const user: Record<string, string> = auth ? { ETCDCTL_USER: `${auth.username}:${auth.password}` } : {};
    return run('etcdctl', [`--endpoints=${endpoints.join(',')}`, '--command-timeout=3s', '--dial-timeout=2s', ...args], {
      timeoutMs,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ETCDCTL_API: '3', ...user },
    });
  }

  /** One member's own view (maintenance Status), or undefined when it does not answer. */
  async status(m: Member): Promise<MemberStatus | undefined> {
    const r = await this.etcdctl(['endpoint', 'status', '-w', 'json'], [m.clientUrl]).catch(() => undefined);
    if (!r || r.code !== 0) return undefined;
    // Ids are 64-bit: quote them before JSON.parse rounds them.
    const quoted = r.stdout.replace(/"(member_id|leader|cluster_id)":(\d+)/g, '"$1":"$2"');
    const s = (JSON.parse(quoted) as Array<{ Status: { header: { member_id: string; revision: number }; leader: string; dbSize: number; raftIndex: number } }>)[0]?.Status;
    if (!s) return undefined;
    return { memberId: s.header.member_id, leaderId: s.leader, revision: s.header.revision, dbSize: s.dbSize, raftIndex: s.raftIndex };
  }

  /** The member that leads, once the answering members agree on one. */
  async leader(timeoutMs = 20_000): Promise<Member> {
    return waitFor('an etcd leader the members agree on', async () => {
      const all = this.members();
      const statuses = await Promise.all(all.map((m) => this.status(m)));
      const answered = statuses.filter((s): s is MemberStatus => s !== undefined);
      const leaderId = answered[0]?.leaderId;
      if (!leaderId || leaderId === '0' || answered.some((s) => s.leaderId !== leaderId)) return undefined;
      return all[statuses.findIndex((s) => s?.memberId === leaderId)];
    }, { timeoutMs, intervalMs: 200 });
  }

  /** SIGKILL: the member's process dies at once, its peers and clients see connections reset. */
  async kill(m: Member): Promise<void> {
    const pid = this.livePid(m);
    signal(pid, 'SIGKILL');
    if (!(await waitGone([pid], 5_000))) throw new Error(`etcd member ${m.name} (pid ${pid}) did not die`);
  }

  /** SIGSTOP: the member stops answering, its connections stay open (a hung machine). */
  freeze(...ms: Member[]): void {
    for (const m of ms) signal(this.livePid(m), 'SIGSTOP');
  }

  thaw(...ms: Member[]): void {
    for (const m of ms) signal(this.livePid(m), 'SIGCONT');
  }

  /**
   * Starts a stopped member again on its data dir (it rejoins the cluster),
   * with `extraArgs` added, and records its pid in state.json. Waits until
   * it is healthy, or with `answering` only until it answers a status call
   * (/health stays false while an alarm is active).
   */
  async restart(m: Member, extraArgs: string[] = [], answering = false): Promise<void> {
    const pid = m.pid !== undefined && isAlive(m.pid) ? m.pid : undefined;
    if (pid !== undefined) {
      signal(pid, 'SIGKILL');
      await waitGone([pid], 5_000);
    }
    const all = this.members();
    const spec: EtcdSpec = { ...m, initialCluster: all.map((x) => `${x.name}=${x.peerUrl}`), extraArgs };
    const ready = answering ? async () => (await this.status(m)) !== undefined : undefined;
    const [started] = await startEtcdMembers([spec], 30_000, ready);
    const state = readState(this.stateDir)!;
    state.etcd.members.find((x) => x.name === m.name)!.pid = started;
    writeState(state);
    m.pid = started;
  }

  /** Active alarms, e.g. ['NOSPACE']. */
  async alarms(): Promise<string[]> {
    const r = await this.etcdctl(['alarm', 'list']);
    if (r.code !== 0) throw new Error(`etcdctl alarm list exited ${r.code}: ${r.stderr}`);
    return [...r.stdout.matchAll(/alarm:(\w+)/g)].map((x) => x[1]!);
  }

  /**
   * etcd's NOSPACE alarm, the way a member whose backend outgrew its quota
   * raises it: `m` restarts with a 1-byte --quota-backend-bytes and one write
   * through it trips the quota check, which raises the alarm through raft.
   * From then on every member refuses writes ("database space exceeded");
   * reads, deletes and compaction still work.
   */
  async armNoSpace(m: Member): Promise<void> {
    await this.restart(m, ['--quota-backend-bytes=1'], true);
    const r = await this.etcdctl(['put', '/fault/nospace', 'x'], [m.clientUrl]);
    if (r.code === 0 || !/database space exceeded/.test(r.stderr)) throw new Error(`the write through ${m.name} was not refused for space: ${r.stdout}${r.stderr}`);
    await waitFor('the NOSPACE alarm', async () => (await this.alarms()).includes('NOSPACE'), { timeoutMs: 10_000, intervalMs: 200 });
  }

  /** The operator's way back: space again (the member's normal quota), then `etcdctl alarm disarm`. */
  async disarmNoSpace(m: Member): Promise<void> {
    await this.restart(m, [], true);
    const r = await this.etcdctl(['alarm', 'disarm']);
    if (r.code !== 0) throw new Error(`etcdctl alarm disarm exited ${r.code}: ${r.stderr}`);
    await waitFor('no alarm', async () => (await this.alarms()).length === 0, { timeoutMs: 10_000, intervalMs: 200 });
  }

  /** Compacts the keyspace up to the current revision (physically): every older revision is gone. */
  async compact(): Promise<number> {
    const leader = await this.leader();
    const s = await this.status(leader);
    if (!s) throw new Error('the etcd leader does not answer');
    const r = await this.etcdctl(['compaction', '--physical', String(s.revision)]);
    if (r.code !== 0) throw new Error(`etcdctl compaction exited ${r.code}: ${r.stderr}`);
    return s.revision;
  }

  /** Every member runs, answers /health, and they agree on a leader; no alarm. */
  async healthy(): Promise<boolean> {
    const all = this.members();
    if (!all.every((m) => m.pid !== undefined && isAlive(m.pid))) return false;
    if (!(await Promise.all(all.map((m) => etcdHealthy(m.clientUrl)))).every(Boolean)) return false;
    return (await this.leader(5_000).then(() => true, () => false)) && (await this.alarms()).length === 0;
  }

  /** Waits until healthy() (the check a fault cell ends on). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor('the etcd cluster healthy again', async () => this.healthy(), { timeoutMs, intervalMs: 250 });
  }

  private livePid(m: Member): number {
    const pid = this.members().find((x) => x.name === m.name)?.pid;
    if (pid === undefined || !isAlive(pid)) throw new Error(`etcd member ${m.name} is not running`);
    return pid;
  }
}

/**
 * The members a host's fleetx agent has TCP connections to, most used first
 * (read with `ss` in the host's network namespace, by the agent's main pid).
 */
export async function agentMembers(host: Host, members: Member[]): Promise<Member[]> {
  const mainPid = (await host.exec(['systemctl', 'show', '-p', 'MainPID', '--value', 'fleetx-agent.service'])).stdout.trim();
  const r = await host.exec(['ss', '-Htnp', 'state', 'established']);
  const counts = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    if (!line.includes(`pid=${mainPid},`)) continue;
    const peer = line.trim().split(/\s+/)[3];
    const m = members.find((x) => peer === new URL(x.clientUrl).host);
    if (m) counts.set(m.name, (counts.get(m.name) ?? 0) + 1);
  }
  return members.filter((m) => counts.has(m.name)).sort((a, b) => counts.get(b.name)! - counts.get(a.name)!);
}

/**
 * Resets every TCP connection of a host's agent to etcd (`ss -K` in the
 * host's network namespace; the kernel answers both ends with RST): the
 * agent must reconnect and resume its watches from where it was.
 */
export async function cutAgentConnections(host: Host, members: Member[]): Promise<void> {
  for (const m of members) {
    const u = new URL(m.clientUrl);
    const r = await host.exec(['ss', '-K', 'dst', u.hostname, 'dport', '=', u.port]);
    if (r.code !== 0) throw new Error(`ss -K on ${host.name} exited ${r.code}: ${r.stderr}`);
  }
}
