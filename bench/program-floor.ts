/**
 * The floor under bench/program.bench.ts: what the Pulumi SDK and @pulumi/command alone cost to register a
 * fleet's worth of resources of fleetkit's shape, with none of fleetkit's code: per node one component holding a
 * `remote.CopyToRemote` (its bundles directory), and per role one component holding a `remote.Command` (a
 * 0.65 KB create line, a 0.35 KB delete line and an SSH connection whose private key is a secret, as
 * fleetkit's are) that depends on the node's copy and on the role before it. The provider's real classes, not
 * bare custom resources: each declares a dozen output properties, and the SDK keeps Outputs and promises for
 * every one of them, which is most of the memory (a bare resource with three properties: 469 MB at 500 nodes;
 * these: 706 MB, same machine). Like fleetkit's program (stacks/index.ts
 * `limitPromiseStacks`) it creates them with `Error.stackTraceLimit` at 0, so the SDK's eager promise stacks
 * cost neither side; `FLEETKIT_STACK_TRACES=1` keeps the default limit in both, to measure what that costs.
 * Under `pulumi.runtime.setMocks` like bench/program-run.ts:
 * `node --import tsx bench/program-floor.ts <nodes> <roles per node>`; usage (CPU, wall, peak memory) comes
 * from bench/usage-reporter.cjs. Prints `{ resources, inputBytes }` as program-run.ts does.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { countRegistrations } from "./registrations.js";
import { BENCH_SSH_KEY } from "./secrets.js";

class Group extends pulumi.ComponentResource {
  constructor(type: string, name: string, opts?: pulumi.ComponentResourceOptions) {
    super(type, name, {}, opts);
  }
}

const nodes = Number(process.argv[2]);
const roles = Number(process.argv[3]);
if (!(nodes > 0) || !(roles > 0)) {
  process.stderr.write("usage: node --import tsx bench/program-floor.ts <nodes> <roles per node>\n");
  process.exit(2);
}
await pulumi.runtime.setMocks({ newResource: (a) => ({ id: `${a.name}_id`, state: a.inputs }), call: (a) => a.inputs }, "floor", "bench", false);
const counts = countRegistrations();
const key = pulumi.secret(BENCH_SSH_KEY);
if (!process.env.FLEETKIT_STACK_TRACES) Error.stackTraceLimit = 0;
const fleet = new Group("floor:index:Fleet", "fleet");
for (let i = 0; i < nodes; i++) {
  const node = new Group("floor:index:Node", `node${i}`, { parent: fleet });
  const connection = { host: `node${i}`, user: "fleet", port: 22, privateKey: key, dialErrorLimit: 3 };
  const copy = new command.remote.CopyToRemote(`node${i}-bundles`, { connection, source: new pulumi.asset.FileArchive(`bundles/nodes/${"0".repeat(64)}/bundles`), remotePath: ".fleetkit" }, { parent: node });
  let previous: pulumi.Resource[] = [];
  for (let r = 0; r < roles; r++) {
    const role = new Group("floor:index:Role", `node${i}-role${r}`, { parent: node, dependsOn: previous });
    const install = new command.remote.Command(
      `node${i}-role${r}-install`,
      { connection, create: "c".repeat(650), delete: "d".repeat(350), addPreviousOutputInEnv: false },
      { parent: role, dependsOn: [copy, ...previous] },
    );
    previous = [install];
  }
}
await pulumi.runtime.disconnect();
process.stdout.write(`${JSON.stringify(counts)}\n`);
