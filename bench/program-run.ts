/**
 * One run of the Pulumi program (`stacks/index.ts`) under `pulumi.runtime.setMocks`, in a process of its own
 * so its peak memory is its own: `node --import tsx bench/program-run.ts <fleet file> <bundle dir>`.
 * Prints one JSON line: `{ resources, inputBytes }` — how many resources the SDK registered and the bytes of
 * all their inputs in the wire form it sent (what an engine diffs and checkpoints). CPU, wall time and
 * peak memory are written by bench/usage-reporter.cjs at exit (loaded with `--require`), as for Pulumi's
 * run harness, so both modes are measured the same way. Used by bench/program.bench.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import { programMocks } from "../test/program/mocks.js";
import { countRegistrations } from "./registrations.js";
import { BENCH_SECRETS } from "./secrets.js";

const [fleetFile, bundleDir] = process.argv.slice(2);
if (!fleetFile || !bundleDir) {
  process.stderr.write("usage: node --import tsx bench/program-run.ts <fleet file> <bundle dir>\n");
  process.exit(2);
}

const SECRETS = BENCH_SECRETS;

await pulumi.runtime.setMocks(programMocks, "fleetkit", "bench", false);
pulumi.runtime.setAllConfig({ "fleetkit:fleetFile": fleetFile, "fleetkit:bundleDir": bundleDir, ...SECRETS }, Object.keys(SECRETS));
const counts = countRegistrations();
try {
  await import("../stacks/index.js");
} finally {
  await pulumi.runtime.disconnect();
}
process.stdout.write(`${JSON.stringify(counts)}\n`);
