/**
 * `npm run bench`: every benchmark of the project, each printing its figures beside a baseline measured in the
 * same run. Bounded (about ten minutes on our 2-core machine, four of them the program at scale); each
 * benchmark cleans up the processes it starts.
 */
import { runRuntimeBench } from "./runtime.bench.js";

await runRuntimeBench((text) => process.stdout.write(text));
await (await import("./status.bench.js")).runStatusBench((line) => process.stdout.write(`\nfleet status (scripts): ${line}\n`));
await (await import("./dependson.bench.js")).runDependsOnBench((line) => process.stdout.write(`\nPulumi SDK dependsOn (minimal reproduction): ${line}\n`));
await (await import("./dashboard.bench.js")).runDashboardBench((line) => process.stdout.write(`\ndashboard: ${line}\n`));
await (await import("./stats.bench.js")).runStatsBench((line) => process.stdout.write(`\nqueue stats: ${line}\n`));
await (await import("./orphans.bench.js")).runOrphansBench((line) => process.stdout.write(`\nGitHub orphan list: ${line}\n`));
process.stdout.write("\nfleet CLI start:\n");
await (await import("./cli-start.bench.js")).runCliStartBench((line) => process.stdout.write(`${line}\n`));
process.stdout.write("\nPulumi program at scale (fleet.yaml, then generated fleets of its shape):\n");
await (await import("./program.bench.js")).runProgramBench((line) => process.stdout.write(`${line}\n`));
