import type { Reporter, TestModule } from "vitest/node";

/**
 * Prints the closing line CI reads: `N passed, N failed, N skipped`, counted over every test case
 * (a file that fails to load counts as one failure, so a broken import can never pass silently).
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      let cases = 0;
      for (const test of mod.children.allTests()) {
        cases++;
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
      if (cases === 0 && mod.state() === "failed") failed++;
      else if (mod.errors().length > 0 && failed === 0) failed++;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
