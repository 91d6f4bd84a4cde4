/**
 * `fleet plan [--fleet FILE] [--stack NAME] [--json] [--diff STATE [--bundle-dir DIR]]`: offline. Validates the fleet file, renders every
 * node's role bundles and prints the resources `pulumi up` would manage per node — the same resource set the
 * Pulumi program registers (both come from `planFleet`) — and whether the tailnet policy is managed, and
 * if not, what then relies on node firewalls alone. Exit 0 ok, 2 bad input.
 *
 * Stack config: `fleet plan` never runs Pulumi and never decrypts anything. With `--stack NAME` it reads
 * the stack's config file `Pulumi.NAME.yaml` (in Pulumi.yaml's `stackConfigDir`, default the project
 * folder) for which `fleetkit:` keys are set — a secret's presence, not its value — plus the plain ones it
 * needs (`fleetFile`, `tailscaleTagOwners`, `tailnetPolicyFile`); without `--stack` it plans with the
 * defaults (no managed tailnet, a minted ntfy token) and says so.
 *
 * `--diff STATE` prints, instead of the plan, which role bundles would change against a stack state
 * (`pulumi stack export`) and the diff of their scripts, offline (cli/plan-diff.ts).
 */
import { parseVerb } from "./verb.js";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { chalk } from "zx";
import { parseDocument } from "yaml";
import { loadFleetWithRoles } from "../roles/sources.js";
import { isBuiltinRole } from "../roles/registry.js";
import { COPY_TYPE, planFleet, renderBundles, TAILNET_CONFIG_KEYS, type FleetPlan, type PlanOptions } from "../stacks/plan.js";
import { describeToolchainsPlan } from "../roles/toolchains/render.js";
import { fleetReach } from "../roles/reach.js";
import { fleetTailnetPolicy, mergeTailnetPolicy, readUserPolicy, tailnetTags, type TailnetPolicy } from "../stacks/tailnet-policy.js";
import type { Fleet } from "../model/fleet.js";
import type { Bundle } from "../roles/types.js";
import { UserError } from "../model/errors.js";
import { artifactPins } from "./pin-artifacts.js";
import { diffBundles, formatBundleDiff, readDeployedBundles } from "./plan-diff.js";

const USAGE = `usage: fleet plan [--fleet FILE] [--stack NAME] [--json] [--diff STATE [--bundle-dir DIR]]
  --fleet FILE      fleet file to plan (default: the stack's fleetkit:fleetFile, else fleet.yaml)
  --stack NAME      plan for stack NAME: reads which fleetkit: keys Pulumi.NAME.yaml sets (never a secret's value)
  --json            print the plan as JSON: { fleet, nodes: [{ name, os, arch, host, roles: [{ role, bundleHash, resources: [{ type, name, dependsOn }] }] }], tailnet: { managed, resources } }
  --diff STATE      instead of the plan, the role bundles that would change against a stack state
                    (\`npx pulumi stack export --file STATE\`; - reads stdin) and their script diffs
                    (with --json: { changed: [{ node, role, from, to, patch }], added, removed, unchanged, inline })
  --bundle-dir DIR  where the deployed bundles' scripts are (default: the stack's fleetkit:bundleDir, else .fleetkit/bundles)
`;

/** What `--stack NAME` learns from the stack's config file. */
export interface StackFacts {
  /** The config file read, as a path relative to the working directory (`Pulumi.dev.yaml`). */
  file: string;
  /** Every config key the file sets, with its namespace (`fleetkit:tailscaleApiKey` …). */
  keys: Set<string>;
  /** Plain `fleetkit:` values the plan uses (a secret's value is never read). */
  fleetFile?: string;
  tagOwners: string[];
  policyFile?: string;
  /** `fleetkit:bundleDir`, where the program writes bundle files (roles/shipping.ts). */
  bundleDir?: string;
}

/**
 * Reads stack `stack`'s config file: `Pulumi.<stack>.yaml` (for `org/project/stack`, the last part) in
 * Pulumi.yaml's `stackConfigDir` (default its own folder), both under `projectDir`.
 * @throws UserError (exit 2) when the file is missing or not YAML, naming the file and the fix.
 */
export function readStackFacts(stack: string, projectDir = "."): StackFacts {
  let configDir = projectDir;
  try {
    const project = parseDocument(readFileSync(join(projectDir, "Pulumi.yaml"), "utf8")).toJS() as { stackConfigDir?: unknown } | null;
    if (typeof project?.stackConfigDir === "string") configDir = join(projectDir, project.stackConfigDir);
  } catch {
    // No readable Pulumi.yaml: the stack file is looked for beside the fleet's working directory.
  }
  const name = stack.split("/").at(-1)!;
  const file = join(configDir, `Pulumi.${name}.yaml`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UserError(
      `fleet plan: no config file ${file} for stack "${stack}" (${(err as NodeJS.ErrnoException).code ?? "unreadable"}); name a stack of this project (\`npx pulumi stack ls\`), ` +
        `create it with \`npx pulumi stack init ${name}\`, or plan without --stack.`,
    );
  }
  const doc = parseDocument(text);
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new UserError(`${file}:${pos?.line ?? 1}:${pos?.col ?? 1}: the stack's config file is not YAML (${e.code}); fix it or run \`npx pulumi config\` to see what Pulumi makes of it.`);
  }
  const config = ((doc.toJS() as { config?: unknown } | null)?.config ?? {}) as Record<string, unknown>;
  const keys = new Set(typeof config === "object" && config !== null ? Object.keys(config) : []);
  const plain = (key: string) => {
    const v = config[`fleetkit:${key}`];
    return typeof v === "string" ? v : undefined;
  };
  const owners = config[`fleetkit:${TAILNET_CONFIG_KEYS.tagOwners}`];
  const ownersList = typeof owners === "string" ? (JSON.parse(owners) as unknown) : owners;
  return {
    file: dirname(file) === "." ? `Pulumi.${name}.yaml` : file,
    keys,
    fleetFile: plain("fleetFile"),
    tagOwners: Array.isArray(ownersList) ? ownersList.filter((o): o is string => typeof o === "string") : [],
    policyFile: plain(TAILNET_CONFIG_KEYS.policyFile),
    bundleDir: plain("bundleDir"),
  };
}

/** The config key that makes the stack manage the tailnet, if the stack file sets one. */
function tailnetCredential(facts: StackFacts | undefined): string | undefined {
  const k = TAILNET_CONFIG_KEYS;
  return [k.apiKey, k.oauthClientSecret].map((key) => `fleetkit:${key}`).find((key) => facts?.keys.has(key));
}

/** The plan's options for a stack: what its config file says (defaults without one). */
export function stackPlanOptions(facts: StackFacts | undefined): PlanOptions {
  return { ntfyTokenFromConfig: facts?.keys.has("fleetkit:ntfyToken") ?? false, tailnetManaged: tailnetCredential(facts) !== undefined };
}

/** "a", "a and b", "a, b and c". */
const listing = (items: string[]) => (items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`);

/**
 * The plan's tailnet lines. Managed: the credential's key, the policy's size (fleetkit's, with the user's
 * file merged in when the stack names one) and each tag's nodes. Not managed: what relies on the node
 * firewalls alone (the services of roles/reach.ts that are not open to anyone) and the shared join key.
 * @throws UserError when the stack's policy file cannot be read or parsed (readUserPolicy).
 */
export function describeTailnet(fleet: Fleet, facts: StackFacts | undefined): string[] {
  const credential = tailnetCredential(facts);
  if (credential) {
    let policy: TailnetPolicy = fleetTailnetPolicy(fleet, facts!.tagOwners);
    if (facts!.policyFile) policy = mergeTailnetPolicy(policy, readUserPolicy(facts!.policyFile));
    const byTag = new Map<string, string[]>();
    for (const [node, tag] of tailnetTags(fleet)) byTag.set(tag, [...(byTag.get(tag) ?? []), node]);
    const width = Math.max(...[...byTag.keys()].map((t) => t.length));
    return [
      `tailnet policy: managed (${credential} in ${facts!.file}): ${Object.keys(policy.tagOwners).length} tags, ${policy.grants.length} grants, ${policy.tests.length} tests` +
        `${facts!.policyFile ? ` (with ${facts!.policyFile})` : ""}; each node joins with its own single-use key`,
      ...[...byTag].map(([tag, nodes]) => `  ${tag.padEnd(width)}  ${nodes.join(", ")}`),
      `  resources: tailnet (Tailscale provider), tailnet-policy (Acl: the tailnet's whole policy file)`,
    ];
  }
  const why = facts
    ? `no fleetkit:${TAILNET_CONFIG_KEYS.apiKey} or fleetkit:${TAILNET_CONFIG_KEYS.oauthClientSecret} in ${facts.file}`
    : "planned without stack config; --stack NAME reads Pulumi.NAME.yaml";
  const rules = fleetReach(fleet).filter((r) => !r.open);
  const agentapi = new Set(rules.filter((r) => r.service === "agentapi").map((r) => r.node)).size;
  const services = [
    ...(agentapi ? [`AgentAPI on ${agentapi} node${agentapi === 1 ? "" : "s"}`] : []),
    ...(rules.some((r) => r.service === "queue") ? ["the queue"] : []),
    ...(rules.some((r) => r.role === "iceccd" || r.role === "icecc-scheduler") ? ["icecc"] : []),
    ...(rules.some((r) => r.service === "ntfy") ? ["ntfy"] : []),
    // User roles' services (fleet.yaml roleSources), by service name.
    ...[...new Set(rules.filter((r) => !isBuiltinRole(r.role)).map((r) => r.service))],
  ];
  const relies = services.length ? `${listing(services)} ${services.length === 1 ? "relies" : "rely"} on node firewalls only` : "no fleet service listens";
  return [`tailnet policy: not managed (${why}): ${relies}; nodes join with the shared fleetkit:tailscaleAuthKey`];
}

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
 * The human-readable plan: a header line, one block per node (a line with its address and its own
 * resources, the copy of its bundle files) with one line per role (bundle hash, its resources' types, the
 * resources of other roles it waits for), then where each icecc toolchain is
 * built and copied (roles/toolchains/render.ts describeToolchainsPlan), then each artifact download with no
 * sha256 pinned (an install that would stop; `fleet pin-artifacts` pins them), then the tailnet lines
 * ({@link describeTailnet}).
 */
export function formatPlan(fleet: Fleet, plan: FleetPlan, file: string, bundles: Map<string, Bundle[]> = renderBundles(fleet), stack?: StackFacts): string {
  const roleCount = plan.nodes.reduce((n, node) => n + node.roles.length, 0);
  const resourceCount = plan.tailnet.resources.length + plan.nodes.reduce((n, node) => n + node.resources.length + node.roles.reduce((m, r) => m + r.resources.length, 0), 0);
  const lines = [chalk.bold(`fleet ${plan.fleet} (${file}): ${plan.nodes.length} nodes, ${roleCount} roles, ${resourceCount} resources`), ""];
  const nameWidth = Math.max(...plan.nodes.map((n) => n.name.length));
  // Bundle copies are on the node's line or waited for with an install command, which is listed: not named twice.
  const copies = new Set(plan.nodes.flatMap((n) => [...n.resources, ...n.roles.flatMap((r) => r.resources)].filter((x) => x.type === COPY_TYPE).map((x) => x.name)));
  for (const node of plan.nodes) {
    const own = node.resources.length ? `  bundles: ${typeSummary(node.resources)}${node.resources.some((r) => r.dependsOn.length) ? chalk.dim(`  after ${[...new Set(node.resources.flatMap((r) => r.dependsOn))].join(", ")}`) : ""}` : "";
    lines.push(`${chalk.bold(node.name.padEnd(nameWidth))}  ${node.os}/${node.arch}  ssh ${node.host}${own}`);
    const roleWidth = Math.max(...node.roles.map((r) => r.role.length));
    for (const role of node.roles) {
      const own = new Set(role.resources.map((r) => r.name));
      const deps = [...new Set(role.resources.flatMap((r) => r.dependsOn))].filter((d) => !own.has(d) && !copies.has(d));
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
  lines.push(...describeTailnet(fleet, stack), "");
  return lines.join("\n");
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseVerb(argv, { verb: "plan", usage: USAGE, options: { fleet: { type: "string" }, stack: { type: "string" }, json: { type: "boolean" }, diff: { type: "string" }, "bundle-dir": { type: "string" } }, positionals: false });
  if (!parsed) return 0;
  const { values: args } = parsed;
  const stack = args.stack ? readStackFacts(args.stack) : undefined;
  const file: string = args.fleet ?? stack?.fleetFile ?? "fleet.yaml";
  const fleet = await loadFleetWithRoles(file);
  const bundles = renderBundles(fleet);
  const plan = planFleet(fleet, stackPlanOptions(stack), bundles);
  if (args.diff !== undefined) {
    const bundleDir = args["bundle-dir"] ?? stack?.bundleDir ?? ".fleetkit/bundles";
    const report = diffBundles(plan, bundles, readDeployedBundles(args.diff), bundleDir);
    process.stdout.write(args.json ? JSON.stringify(report, null, 2) + "\n" : formatBundleDiff(report, args.diff, bundleDir));
    return 0;
  }
  if (args["bundle-dir"] !== undefined) throw new UserError("fleet plan: --bundle-dir goes with --diff STATE; see fleet plan --help.");
  process.stdout.write(args.json ? JSON.stringify(plan, null, 2) + "\n" : formatPlan(fleet, plan, file, bundles, stack));
  return 0;
}
