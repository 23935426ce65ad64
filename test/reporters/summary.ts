/**
 * Ends a test run with one plain line, `N passed, N failed, N skipped`, that
 * CI systems and scripts can read without knowing vitest's own format.
 *
 * "failed" counts failed tests and also what failed outside a test, so the
 * line never says clean for a failed run: a beforeAll or afterAll that threw
 * (vitest then marks the file's tests skipped, or leaves them passed; an
 * afterAll leftover check is such a hook), a file that did not load, an
 * error no test caught. Each of those is named on a line before it.
 */
import type { Reporter, SerializedError, TestModule, TestRunEndReason, TestSuite } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, reason: TestRunEndReason): void {
    let passed = 0;
    let failedTests = 0;
    let skipped = 0;
    const outside: string[] = [];
    for (const m of testModules) {
      let failedHere = 0;
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failedHere++;
        else skipped++;
      }
      failedTests += failedHere;
      const broken: Array<TestModule | TestSuite> = [m, ...m.children.allSuites()].filter((s) => s.errors().length > 0);
      for (const s of broken) outside.push(`${m.relativeModuleId}${s.type === 'suite' ? ` > ${s.fullName}` : ''}: ${firstLine(s.errors()[0]!)}`);
      // failed for a reason vitest did not attach to a suite
      if (broken.length === 0 && failedHere === 0 && m.state() === 'failed') outside.push(`${m.relativeModuleId}: failed outside its tests`);
    }
    for (const e of unhandledErrors) outside.push(`unhandled: ${firstLine(e)}`);
    // vitest's own verdict is the last word: a failed run is never reported clean
    if (reason === 'failed' && failedTests + outside.length === 0) outside.push('the run failed (see above)');
    for (const o of outside) process.stdout.write(`\nfailed outside a test: ${o}`);
    process.stdout.write(`\n${passed} passed, ${failedTests + outside.length} failed, ${skipped} skipped\n`);
  }
}

function firstLine(e: SerializedError): string {
  return `${e.name ?? 'Error'}: ${(e.message ?? '').split('\n')[0]}`;
}
