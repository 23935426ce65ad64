/**
 * A matrix cell: one fault injected during a rollout under load through
 * HAProxy, with the invariant checker running from before the rollout
 * until the cluster has recovered. All cells of a test file share one
 * sandbox + demo (useFaultCluster); a cell starts only once the cluster is
 * healthy again (every instance in service, no rollout running), and ends
 * by proving that it is.
 *
 *   const fc = useFaultCluster({ tag: 'mtx', hosts: 4 });
 *   fc.cell('agent SIGKILL on another host', async (c) => {
 *     const cli = c.demo.start(['rolling-restart', 'app@']);
 *     await c.untilPhase('stopping');
 *     c.injected('agent SIGKILLed');       // recovery time counts from here
 *     await killAgent(...);
 *     return { rollout: await c.rolloutEnd(cli) };
 *   });
 *
 * Each cell writes its figures to test/faults/results/<slug>.json
 * (scripts/faults-table.ts renders them) and then asserts: 0 invariant
 * violations and 0 failed requests while a backend served.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { inService } from '../../../src/demo/instances.js';
import { DEMO_SERVICE } from '../../../src/demo/demo.js';
import type { RolloutRecord } from '../../../src/rollout/types.js';
import { useDemo, type DemoFixture, type RunningCli } from '../../helpers/demo.js';
import { REPO } from '../../helpers/cli.js';
import type { SandboxFixture } from '../../helpers/sandbox.js';
import { InvariantChecker, type Violation, type WatchedService } from './checker.js';
import type { LoadReport } from '../../../src/loadgen/load.js';
import { FaultLoad } from './load.js';

export const RESULTS_DIR = join(REPO, 'test', 'faults', 'results');

/** What a cell's body returns. */
export interface CellOutcome {
  /** how the rollout(s) ended: succeeded, failed (reverted), aborted, … */
  rollout: string;
  /** anything the reader of the table should know */
  note?: string;
}

/** The figures of one cell, as written to results/<slug>.json. */
export interface CellFigures {
  cell: string;
  file: string;
  command: string;
  at: string;
  requests: number;
  failedRequests: number;
  /** failed while at least one HAProxy slot served: each one is a violation */
  failedWithBackend: number;
  failuresByKind: Record<string, number>;
  violations: Violation[];
  /** from the fault's injection until every instance is in service and no rollout runs */
  recoverMs: number | null;
  rollout: string;
  note?: string;
  samples: number;
  maxSampleGapMs: number;
  durationMs: number;
}

export interface CellContext {
  demo: DemoFixture;
  sb: SandboxFixture;
  checker: InvariantChecker;
  load: FaultLoad;
  /** marks the fault's injection: recovery time counts from here */
  injected(what: string): void;
  /** marks recovery when the cell does more afterwards (e.g. reboots the host it powered off); otherwise the cell's end, healthy, is */
  recovered(): void;
  /** waits until some instance of the running rollout has reached `phase` (or any of several); fails at once, with its output, when `cli` ended first */
  untilPhase(phase: string | string[], timeoutMs?: number, cli?: RunningCli): Promise<RolloutRecord>;
  /** waits for a CLI run to end, then for the rollout record to finish; its final state */
  rolloutEnd(cli?: RunningCli, timeoutMs?: number): Promise<string>;
}

export interface FaultClusterOptions {
  tag: string;
  hosts: number;
  instances?: number;
  /** etcd members of the sandbox (default 1; 3 for the etcd cells) */
  etcdMembers?: number;
  /** extra services the checker watches (the demo's app is always watched) */
  services?: WatchedService[];
}

export interface FaultCluster {
  demo: DemoFixture;
  /** declares a cell as a vitest test */
  cell(name: string, body: (c: CellContext) => Promise<CellOutcome>, timeoutMs?: number): void;
}

// the demo's service: app@ containers behind HAProxy
const WEB: WatchedService = { name: DEMO_SERVICE, template: `${DEMO_SERVICE}@.service`, conflicts: true, backend: DEMO_SERVICE };

const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);

export function useFaultCluster(o: FaultClusterOptions): FaultCluster {
  const demo = useDemo({ tag: o.tag, hosts: o.hosts, ...(o.instances !== undefined ? { instances: o.instances } : {}), ...(o.etcdMembers !== undefined ? { etcdMembers: o.etcdMembers } : {}) });
  const file = new Error().stack?.split('\n').map((l) => /\/(test\/faults\/[^:)]+\.test\.ts)/.exec(l)?.[1]).find(Boolean) ?? 'test/faults';
  const services = [WEB, ...(o.services ?? [])];

  const cell = (name: string, body: (c: CellContext) => Promise<CellOutcome>, timeoutMs = 180_000) =>
    it(name, async () => {
      const sb = demo.sb;
      await healthy(demo);
      const checker = new InvariantChecker({
        etcdEndpoints: sb.endpoints,
        haproxySocket: demo.status!.socket!,
        services,
        hosts: () => sb.runningHosts().map((h) => ({ name: h.name, machineId: h.machineId, leaderPid: h.leaderPid })),
      });
      await checker.start();
      const load = new FaultLoad({ url: demo.lbUrl, maxDurationMs: timeoutMs });
      const t0 = Date.now();
      let faultAt: number | undefined;
      let recoveredAt: number | undefined;
      const ctx: CellContext = {
        demo, sb, checker, load,
        injected: (what) => {
          faultAt ??= Date.now();
          console.log(`[${name}] ${new Date().toISOString()} fault: ${what}`);
        },
        recovered: () => {
          recoveredAt ??= Date.now();
        },
        untilPhase: (phase, ms = 60_000, cli) => {
          const want = Array.isArray(phase) ? phase : [phase];
          let ended: string | undefined;
          void cli?.done.then((r) => (ended = `the CLI exited ${r.code} first:\n${r.stdout}\n${r.stderr}`));
          return sb.until(`an instance of the running rollout in ${want.join('/')}`, async () => {
            if (ended) throw new Error(ended);
            const r = await demo.running();
            return r && Object.values(r.instances).some((i) => want.includes(i.phase)) ? r : undefined;
          }, ms, 50);
        },
        rolloutEnd: async (cli, ms = 120_000) => {
          if (cli) await cli.done;
          await sb.until(`no rollout of ${DEMO_SERVICE} running`, async () => (await demo.running()) === undefined, ms, 200);
          return (await demo.history()).at(-1)?.state ?? 'none';
        },
      };
      let outcome: CellOutcome | undefined;
      let recoverMs: number | null = null;
      let figures: LoadReport | undefined;
      try {
        outcome = await body(ctx);
        await healthy(demo);
        // and the checker sees nothing amiss that has yet to last its grace (an orphan, a held slot)
        await sb.until('no condition pending in the checker', () => checker.pending().length === 0, 40_000, 200)
          .catch(() => checker.record('lost', 'conditions still pending when the cluster was otherwise healthy', checker.pending()));
        recoverMs = (recoveredAt ?? Date.now()) - (faultAt ?? t0);
      } finally {
        figures = await load.stop();
        await checker.stop();
      }
      const withBackend = load.failed.filter((f) => (checker.servingAt(WEB.name, f.at) ?? 0) > 0);
      if (withBackend.length > 0) {
        checker.record('requests', `${withBackend.length} request(s) failed while HAProxy had a serving backend`, withBackend.slice(0, 10).map((f) => ({ at: new Date(f.at).toISOString(), kind: f.kind, serving: checker.servingAt(WEB.name, f.at) })));
      }
      const byKind = figures.failuresByKind;
      const result: CellFigures = {
        cell: name, file, command: `npx vitest run --config vitest.faults.config.ts ${file} -t '${name.replace(/'/g, '.')}'`,
        at: new Date(t0).toISOString(), requests: figures.requests, failedRequests: figures.failures,
        failedWithBackend: withBackend.length, failuresByKind: byKind, violations: checker.violations, recoverMs,
        rollout: outcome.rollout, ...(outcome.note ? { note: outcome.note } : {}),
        samples: checker.samples, maxSampleGapMs: checker.maxGapMs, durationMs: Date.now() - t0,
      };
      mkdirSync(RESULTS_DIR, { recursive: true });
      writeFileSync(join(RESULTS_DIR, `${slug(name)}.json`), `${JSON.stringify(result, null, 2)}\n`);
      console.log(`[${name}] ${figures.requests} requests, ${figures.failures} failed (${withBackend.length} with a backend serving) ${JSON.stringify(byKind)}; ` +
        `${checker.violations.length} violation(s); recovered in ${recoverMs} ms; rollout ${outcome.rollout}; ${checker.samples} samples, max gap ${checker.maxGapMs} ms`);
      expect(checker.violations, JSON.stringify(checker.violations, null, 2)).toEqual([]);
      expect(figures.ok).toBeGreaterThan(0);
    }, timeoutMs);

  return { demo, cell };
}

/** Every instance in service (active, healthy, UP in HAProxy) and no rollout running. */
async function healthy(demo: DemoFixture, timeoutMs = 90_000): Promise<void> {
  await demo.sb.until('the cluster healthy: no rollout running, every app instance in service', async () => {
    if ((await demo.running()) !== undefined) return false;
    const all = await demo.instances();
    return all.length > 0 && all.every(inService);
  }, timeoutMs, 200);
}
