/**
 * `fleet plan --diff STATE`: which role bundles `pulumi up` would change, and the script diff of each, offline.
 *
 * The deployed side comes from the stack's state as `pulumi stack export --file STATE` writes it (Pulumi's
 * deployment format, version 3: sdk/go/common/apitype/deployments.json and resources.json in
 * github.com/pulumi/pulumi): for each `<node>-<role>-install` resource (a `remote.Command`) the state keeps its
 * `create` input, the short install line of roles/shipping.ts, which ends by naming the bundle's directory
 * `<role>.<hash>`. Nothing else of the state is read, and secrets stay encrypted in it. The deployed scripts themselves are the bundle directory of that
 * name under the bundle dir (`fleetkit:bundleDir`, default `.fleetkit/bundles`), where the program wrote
 * them when it was deployed from this checkout; the new side is what the fleet renders now. Windows nodes'
 * bundles travel inline in their command (no copy resource) and are left out, said in one line.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTwoFilesPatch } from "diff";
import { z } from "zod";
import type { Bundle } from "../roles/types.js";
import { COMMAND_TYPE, installResourceName, roleResourceName, type FleetPlan } from "../stacks/plan.js";
import { UserError } from "../model/errors.js";
import { shipsBundleFiles } from "../roles/shipping.js";

/** One bundle as deployed: its install command's resource name and its directory name `<role>.<hash>`. */
export interface DeployedBundle {
  resource: string;
  dir: string;
}

/**
 * File-shipped install lines (roles/shipping.ts `bundleShipping`) and the bundle directory each names: today's,
 * which ends by handing the shipping helper the directory, and the earlier one that began `set -e;n=<dir>;`
 * (a stack last deployed before the helper).
 */
const CREATE_RES = [
  /^sudo -n sh -c 'h=[^']*;sh \$h i ([a-z0-9][a-z0-9-]*\.[0-9a-f]{64}) [0-9a-f]{64} [0-9a-f]{64} [a-z0-9-]+'$/,
  /^sudo -n sh -c 'set -e;n=([a-z0-9][a-z0-9-]*\.[0-9a-f]{64});/,
];

const StateSchema = z.object({
  version: z.literal(3, { error: "expected version 3 (what `pulumi stack export` writes today)" }),
  deployment: z.object({
    resources: z.array(z.object({ urn: z.string(), type: z.string().optional(), inputs: z.record(z.string(), z.unknown()).optional() })).optional(),
  }),
});

/**
 * The bundles a stack state says are deployed, by install command name (`<node>-<role>-install`); installs
 * whose bundle travels inline (Windows) are not among them.
 * @param file a `pulumi stack export --file` output; `-` reads standard input.
 * @throws UserError (exit 2) when the file cannot be read, is not JSON or not a version 3 deployment, naming
 *   the file, what was expected and how to produce it.
 */
export function readDeployedBundles(file: string): Map<string, DeployedBundle> {
  const how = "write it with `npx pulumi stack export --file FILE` for the stack and pass that file";
  let text: string;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    throw new UserError(`fleet plan --diff: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "unreadable"}); ${how}.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`fleet plan --diff: ${file} is not JSON (${(err as Error).message}); ${how}.`);
  }
  const parsed = StateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UserError(`fleet plan --diff: ${file} is not a Pulumi stack export: field ${issue.path.join(".") || "(top)"}: ${issue.message}; ${how}.`);
  }
  const out = new Map<string, DeployedBundle>();
  for (const r of parsed.data.deployment.resources ?? []) {
    if (r.type !== COMMAND_TYPE) continue;
    const create = r.inputs?.create;
    const dir = typeof create === "string" ? CREATE_RES.map((re) => re.exec(create)?.[1]).find((d) => d) : undefined;
    if (!dir) continue;
    const resource = r.urn.slice(r.urn.lastIndexOf("::") + 2);
    out.set(resource, { resource, dir });
  }
  return out;
}

/** One role bundle whose hash differs between the state and the fleet now. */
export interface ChangedBundle {
  node: string;
  role: string;
  /** Deployed and new directory names, `<role>.<hash>`. */
  from: string;
  to: string;
  /** Unified diff of install.sh then uninstall.sh (deployed → new), or null when the deployed scripts are not in the bundle dir. */
  patch: string | null;
}

/** What `fleet plan --diff` reports. */
export interface BundleDiff {
  changed: ChangedBundle[];
  /** Roles the fleet has and the state does not: `pulumi up` copies and installs them. */
  added: { node: string; role: string; to: string }[];
  /** Install commands the state has and the fleet no longer plans: `pulumi up` runs their uninstall. */
  removed: { resource: string; from: string }[];
  /** Roles whose bundle is deployed unchanged. */
  unchanged: number;
  /** Nodes whose bundles travel inline (Windows), not compared. */
  inline: string[];
}

/**
 * Compares the bundles `plan` would deploy with `deployed` (from {@link readDeployedBundles}); the deployed
 * scripts are read from `<bundleDir>/<role>.<hash>/`. Pure apart from reading those files.
 */
export function diffBundles(plan: FleetPlan, bundles: Map<string, Bundle[]>, deployed: Map<string, DeployedBundle>, bundleDir: string): BundleDiff {
  const report: BundleDiff = { changed: [], added: [], removed: [], unchanged: 0, inline: [] };
  const planned = new Set<string>();
  for (const node of plan.nodes) {
    const byRole = new Map((bundles.get(node.name) ?? []).map((b) => [b.role as string, b]));
    for (const role of node.roles) {
      if (!shipsBundleFiles(node)) {
        if (!report.inline.includes(node.name)) report.inline.push(node.name);
        continue;
      }
      const install = installResourceName(roleResourceName(node.name, role.role));
      planned.add(install);
      const bundle = byRole.get(role.role);
      if (!bundle) continue;
      const to = `${bundle.role}.${bundle.hash}`;
      const was = deployed.get(install);
      if (!was) report.added.push({ node: node.name, role: role.role, to });
      else if (was.dir === to) report.unchanged++;
      else report.changed.push({ node: node.name, role: role.role, from: was.dir, to, patch: scriptPatch(bundleDir, was.dir, to, bundle) });
    }
  }
  for (const [name, was] of deployed) if (!planned.has(name)) report.removed.push({ resource: name, from: was.dir });
  return report;
}

/** The unified diff of both scripts, or null when the deployed directory is not (wholly) in `bundleDir`. */
function scriptPatch(bundleDir: string, from: string, to: string, bundle: Bundle): string | null {
  const parts: string[] = [];
  for (const [file, now] of [["install.sh", bundle.install], ["uninstall.sh", bundle.uninstall]] as const) {
    let before: string;
    try {
      before = readFileSync(join(bundleDir, from, file), "utf8");
    } catch {
      return null;
    }
    if (before !== now) parts.push(createTwoFilesPatch(`${from}/${file}`, `${to}/${file}`, before, now, undefined, undefined, { context: 3 }));
  }
  return parts.join("");
}

/** The first 12 hex digits of a bundle directory's hash (`<role>.<hash>`), as `fleet plan` shows hashes. */
const shortHash = (dir: string) => dir.slice(dir.lastIndexOf(".") + 1, dir.lastIndexOf(".") + 13);

/** The human-readable report: one line per changed, added and removed bundle, each change followed by its patch. */
export function formatBundleDiff(report: BundleDiff, stateFile: string, bundleDir: string): string {
  const lines = [
    `bundles against ${stateFile}: ${report.changed.length} changed, ${report.added.length} added, ${report.removed.length} removed, ${report.unchanged} unchanged`,
  ];
  for (const c of report.changed) {
    lines.push("", `~ ${c.node} ${c.role}: ${shortHash(c.from)} -> ${shortHash(c.to)}`);
    if (c.patch === null) lines.push(`  (the deployed scripts are not in ${bundleDir}/${c.from}: deployed from another checkout; only the hash is known)`);
    else lines.push(c.patch.trimEnd());
  }
  if (report.added.length || report.removed.length) lines.push("");
  for (const a of report.added) lines.push(`+ ${a.node} ${a.role}: new, ${shortHash(a.to)} (copied and installed)`);
  for (const r of report.removed) lines.push(`- ${r.resource}: no longer planned (its uninstall script runs)`);
  if (report.inline.length) lines.push("", `not compared: ${report.inline.join(", ")} (Windows: the bundle travels inline in its command; \`pulumi preview --diff\` shows it)`);
  return lines.join("\n") + "\n";
}
