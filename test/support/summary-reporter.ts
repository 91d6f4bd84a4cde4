import type { Reporter, TestModule, TestSuite } from "vitest/node";

/**
 * Prints the closing line CI reads: `N passed, N failed, N skipped`, counted over every test case. A
 * module or suite that failed without a failed test of its own (a file that fails to load, a throwing
 * `beforeAll`/`afterAll`, whose tests vitest then reports as skipped) counts as one failure, so a broken
 * import or setup can never read as "0 failed".
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    // A failed group whose failure is not already explained by a failed test or a failed inner suite.
    const ownFailure = (group: TestModule | TestSuite) =>
      group.state() === "failed" && [...group.children.allTests("failed")].length === 0 && ![...group.children.allSuites()].some((s) => s.state() === "failed");
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
      for (const group of [mod, ...mod.children.allSuites()]) {
        if (ownFailure(group)) failed++;
      }
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
