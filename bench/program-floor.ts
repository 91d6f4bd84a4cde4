/**
 * The floor under bench/program.bench.ts: what the Pulumi SDK alone costs to register a fleet's worth of
 * resources of fleetkit's shape, with none of fleetkit's rendering: per node one component holding a
 * `CopyToRemote`-like resource (a 200-byte input: its bundles), and per role one component holding a
 * `Command`-like one (a 0.65 KB create line, a 0.35 KB delete line and an SSH connection whose private key is
 * a secret, as fleetkit's are) that depends on the node's copy and on the role before it. Like fleetkit's program (stacks/index.ts
 * `limitPromiseStacks`) it creates them with `Error.stackTraceLimit` at 0, so the SDK's eager promise stacks
 * cost neither side; `FLEETKIT_STACK_TRACES=1` keeps the default limit in both, to measure what that costs.
 * Under `pulumi.runtime.setMocks` like bench/program-run.ts:
 * `node --import tsx bench/program-floor.ts <nodes> <roles per node>`; usage (CPU, wall, peak memory) comes
 * from bench/usage-reporter.cjs. Prints `{ resources, inputBytes }` as program-run.ts does.
 */
import * as pulumi from "@pulumi/pulumi";
import { countRegistrations } from "./registrations.js";
import { BENCH_SSH_KEY } from "./secrets.js";

class Thing extends pulumi.CustomResource {
  constructor(name: string, props: Record<string, pulumi.Input<unknown>>, opts?: pulumi.CustomResourceOptions) {
    super("floor:index:Thing", name, props, pulumi.mergeOptions({ version: "1.0.0" }, opts ?? {}));
  }
}
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
  const copy = new Thing(`node${i}-bundles`, { connection, source: "s".repeat(200), remotePath: ".fleetkit" }, { parent: node });
  let previous: pulumi.Resource[] = [];
  for (let r = 0; r < roles; r++) {
    const role = new Group("floor:index:Role", `node${i}-role${r}`, { parent: node, dependsOn: previous });
    const install = new Thing(`node${i}-role${r}-install`, { connection, create: "c".repeat(650), delete: "d".repeat(350) }, { parent: role, dependsOn: [copy, ...previous] });
    previous = [install];
  }
}
await pulumi.runtime.disconnect();
process.stdout.write(`${JSON.stringify(counts)}\n`);
