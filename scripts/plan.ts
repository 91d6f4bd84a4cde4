/**
 * `fleet plan [--fleet FILE] [--json]`: offline. Validates the fleet file, renders every node's role
 * bundles and prints the resources `pulumi up` would manage per node — the same resource set the Pulumi
 * program registers (both come from `planFleet`). Exit 0 ok, 2 bad input.
 */
import { minimist, chalk } from "zx";
import { loadFleet } from "../stacks/model/load.js";
import { planFleet, renderBundles, type FleetPlan } from "../stacks/plan.js";
import { describeToolchainsPlan } from "../roles/toolchains.js";
import type { Fleet } from "../stacks/model/fleet.js";
import type { Bundle } from "../roles/types.js";
import { UserError } from "./errors.js";
import { artifactPins } from "./pin-artifacts.js";

const USAGE = `usage: fleet plan [--fleet FILE] [--json]
  --fleet FILE   fleet file to plan (default fleet.yaml)
  --json         print the plan as JSON: { fleet, nodes: [{ name, os, arch, host, roles: [{ role, bundleHash, resources: [{ type, name, dependsOn }] }] }] }
`;

/** Resource types in order, the last segment of each, repeats counted: `Queue + RandomPassword ×3 + Command`. */
function typeSummary(resources: { type: string }[]): string {
  const runs: { type: string; count: number }[] = [];
  for (const r of resources) {
    const type = r.type.split(":").at(-1)!;
    if (runs.at(-1)?.type === type) runs.at(-1)!.count++;
    else runs.push({ type, count: 1 });
  }
  return runs.map((r) => (r.count > 1 ? `${r.type} ×${r.count}` : r.type)).join(" + ");
}

/**
 * The human-readable plan: a header line, one block per node with one line per role (bundle hash, its
 * resources' types, the resources of other roles it waits for), then where each icecc toolchain is
 * built and copied (roles/toolchains.ts describeToolchainsPlan), then each artifact download with no
 * sha256 pinned (an install that would stop; `fleet pin-artifacts` pins them).
 */
export function formatPlan(fleet: Fleet, plan: FleetPlan, file: string, bundles: Map<string, Bundle[]> = renderBundles(fleet)): string {
  const roleCount = plan.nodes.reduce((n, node) => n + node.roles.length, 0);
  const resourceCount = plan.nodes.reduce((n, node) => n + node.roles.reduce((m, r) => m + r.resources.length, 0), 0);
  const lines = [chalk.bold(`fleet ${plan.fleet} (${file}): ${plan.nodes.length} nodes, ${roleCount} roles, ${resourceCount} resources`), ""];
  const nameWidth = Math.max(...plan.nodes.map((n) => n.name.length));
  for (const node of plan.nodes) {
    lines.push(`${chalk.bold(node.name.padEnd(nameWidth))}  ${node.os}/${node.arch}  ssh ${node.host}`);
    const roleWidth = Math.max(...node.roles.map((r) => r.role.length));
    for (const role of node.roles) {
      const own = new Set(role.resources.map((r) => r.name));
      const deps = [...new Set(role.resources.flatMap((r) => r.dependsOn))].filter((d) => !own.has(d));
      lines.push(
        `  ${role.role.padEnd(roleWidth)}  ${chalk.dim(role.bundleHash.slice(0, 12))}  ${typeSummary(role.resources)}${deps.length ? chalk.dim(`  after ${deps.join(", ")}`) : ""}`,
      );
    }
    lines.push("");
  }
  const toolchains = describeToolchainsPlan(fleet);
  if (toolchains.length) lines.push(...toolchains, "");
  const unpinned = artifactPins(fleet, bundles).filter((p) => p.sha256 === undefined);
  for (const p of unpinned) {
    lines.push(`artifacts: no sha256 pinned for ${p.artifact} ${p.version} ${p.platform}: the ${p.artifact} install stops on ${p.nodes.join(", ")} until one is (run npx fleet pin-artifacts)`);
  }
  if (unpinned.length) lines.push("");
  return lines.join("\n");
}

export async function run(argv: string[]): Promise<number> {
  const args = minimist(argv, {
    string: ["fleet"],
    boolean: ["json", "help"],
    default: { fleet: "fleet.yaml" },
    unknown: (a) => {
      if (a.startsWith("-")) throw new UserError(`fleet plan: unknown option ${a}\n${USAGE}`);
      throw new UserError(`fleet plan: unexpected argument "${a}"\n${USAGE}`);
    },
  });
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const fleet = loadFleet(args.fleet);
  const bundles = renderBundles(fleet);
  const plan = planFleet(fleet, {}, bundles);
  process.stdout.write(args.json ? JSON.stringify(plan, null, 2) + "\n" : formatPlan(fleet, plan, args.fleet, bundles));
  return 0;
}
