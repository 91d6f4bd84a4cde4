/**
 * Running rendered role bundles on harness nodes exactly as the Pulumi role component does (roles/component.ts,
 * roles/shipping.ts `bundleShipping`): the bundle's files and the shipping helper copied over SFTP into the
 * node user's `~/.fleetkit/bundles/` (as the node's CopyToRemote does), then the short install line over SSH as the
 * node user (on a Windows node's stand-in, the script inline in the line), with the bundle's secrets as `NAME=value` lines on stdin (stacks/secrets.ts `secretStdin`),
 * in the order `dependsOn` gives (plan.ts `roleDependencies`), independent roles in parallel. Plus the
 * file checks the hosts tests share.
 */
import { createHash } from "node:crypto";
import type { Fleet, FleetNode, RoleName } from "../../model/fleet.js";
import { roleDependencies, roleResourceName } from "../../stacks/plan.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleShipping, NODE_BUNDLE_DIR, writeBundleFiles, type BundleShipping } from "../../roles/shipping.js";
import type { Bundle, SecretName } from "../../roles/types.js";
import type { CommandResult, TestNetwork, TestNode } from "./harness.js";

/**
 * Install order as Pulumi's `dependsOn` gives it: waves of (node, role) whose dependencies are all in
 * earlier waves; a wave's members are independent and run in parallel. Uninstall runs the waves reversed.
 * @throws Error on a dependency cycle (a fleetkit bug).
 */
export function installWaves(fleet: Fleet): [FleetNode, RoleName][][] {
  const pending = fleet.nodes.flatMap((n) => n.roles.map((r) => [n, r] as [FleetNode, RoleName]));
  const done = new Set<string>();
  const waves: [FleetNode, RoleName][][] = [];
  while (pending.length) {
    const wave = pending.filter(([n, r]) => roleDependencies(fleet, n, r).every((d) => done.has(d)));
    if (!wave.length) throw new Error("dependency cycle among roles");
    for (const w of wave) pending.splice(pending.indexOf(w), 1);
    for (const [n, r] of wave) done.add(roleResourceName(n.name, r));
    waves.push(wave);
  }
  return waves;
}

/** Last non-empty line of a script's output (`fleetkit: <role> changed|unchanged|removed`). */
export const lastLine = (s: string): string => s.trimEnd().split("\n").pop() ?? "";

/** The harness node named `name`. @throws TypeError when there is none (a test bug). */
export function testNode(net: TestNetwork, name: string): TestNode {
  const n = net.nodes.find((x) => x.name === name);
  if (!n) throw new TypeError(`no test node ${name}`);
  return n;
}

/**
 * Runs `bundle`'s install or uninstall script on its node as the Pulumi component would. Install gets the
 * bundle's secrets that `secrets` (or `secrets(node)`, for per-node values) has, as `NAME=value` lines in
 * the bundle's order; uninstall gets no stdin. `copy: false` runs the install line without copying the
 * files first: what `pulumi up` does for an unchanged bundle whose command runs again (the copy's archive
 * hash is the same, so the engine copies nothing).
 */
export async function runBundleScript(
  net: TestNetwork,
  fleet: Fleet,
  bundle: Bundle,
  which: "install" | "uninstall",
  secrets: Partial<Record<SecretName, string>> | ((node: string) => Partial<Record<SecretName, string>>),
  opts: { copy?: boolean } = {},
): Promise<CommandResult> {
  const node = fleet.nodes.find((n) => n.name === bundle.node)!;
  const values = typeof secrets === "function" ? secrets(bundle.node) : secrets;
  const present = bundle.secrets.filter((s) => values[s]);
  const secretLines = which === "install" && present.length ? present.map((s) => `${s}=${values[s]}\n`).join("") : undefined;
  const shipping = bundleShipping(node, bundle);
  const target = testNode(net, bundle.node);
  if (which === "uninstall") return target.ssh(shipping.delete, { input: secretLines, timeoutSeconds: 600 });
  if (shipping.files && opts.copy !== false) await copyBundle(target, shipping);
  // As roles/component.ts does: an inline script too long for the command line is the start of stdin, then the secrets.
  const input = shipping.stdinPrefix ? shipping.stdinPrefix + (secretLines ?? "") : secretLines;
  return target.ssh(shipping.create, { input, timeoutSeconds: 600 });
}

/** Local directory the harness writes bundle files to before copying them (content-addressed, as the program's). */
const LOCAL_BUNDLES = mkdtempSync(join(tmpdir(), "fleetkit-hosts-bundles-"));

/**
 * Copies a file-shipped bundle's directory and the shipping helper to `node` as the node's CopyToRemote
 * does: SFTP as the node user, parents created, into `~/.fleetkit/bundles/<role>.<hash>/` and
 * `~/.fleetkit/bundles/_ship.<hash>`.
 */
export async function copyBundle(node: TestNode, shipping: BundleShipping): Promise<void> {
  const files = shipping.files!;
  const local = writeBundleFiles(LOCAL_BUNDLES, shipping);
  const helper = join(LOCAL_BUNDLES, files.helper.name);
  writeFileSync(helper, files.helper.content, { mode: 0o600 });
  const remote = `${NODE_BUNDLE_DIR}/${files.dir}`;
  const parents = remote.split("/").map((_, i, parts) => parts.slice(0, i + 1).join("/"));
  await node.sftp(
    [...parents.map((d) => `-mkdir ${d}`), `put ${local}/install.sh ${remote}/install.sh`, `put ${local}/uninstall.sh ${remote}/uninstall.sh`, `put ${helper} ${NODE_BUNDLE_DIR}/${files.helper.name}`, ""].join("\n"),
  );
}

/**
 * `mode owner group sha256 mtime` (mtime in seconds with nanoseconds) of each path on `node`, read as root,
 * or `absent`. The script travels on stdin, so no path quoting reaches a command line.
 */
export async function fileFacts(node: TestNode, paths: string[]): Promise<Record<string, string>> {
  const q = (p: string) => `'${p.replace(/'/g, `'\\''`)}'`;
  const script = paths
    .map((p) => `if [ -e ${q(p)} ]; then echo "$(stat -c '%a %U %G' ${q(p)}) $(sha256sum < ${q(p)} | cut -d' ' -f1) $(stat -c '%.9Y' ${q(p)})"; else echo absent; fi`)
    .join("\n");
  const out = (await node.run("sudo -n sh -s", { input: script })).trimEnd().split("\n");
  return Object.fromEntries(paths.map((p, i) => [p, out[i]!]));
}

/** What {@link fileFacts} must say (without mtime) for each file of `bundle`, from the rendered bundle. */
export function expectedFacts(bundle: Bundle): Record<string, string> {
  return Object.fromEntries(
    bundle.files.map((f) => [f.path, `${f.mode.toString(8)} ${f.owner} ${f.group ?? f.owner} ${createHash("sha256").update(f.content).digest("hex")}`]),
  );
}

/** {@link fileFacts} output with the mtime dropped. */
export function withoutMtime(facts: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(facts).map(([k, v]) => [k, v.replace(/ \d+\.\d+$/, "")]));
}

/** Main PIDs of `services` on `node`, one line each (a restart changes them). */
export async function mainPids(node: TestNode, bundle: Bundle): Promise<string> {
  const names = bundle.services.map((s) => s.name);
  if (!names.length) return "";
  return node.run(names.map((n) => `systemctl show -p MainPID --value ${n}`).join("; "));
}

/** `systemctl is-active` of a service, with its journal tail when it is not active (for the failure message). */
export async function serviceState(node: TestNode, service: string): Promise<{ state: string; journal: string }> {
  const st = await node.ssh(`systemctl is-active ${service}`);
  const journal = st.stdout === "active\n" ? "" : (await node.ssh(`sudo -n journalctl -u ${service} --no-pager | tail -20`)).stdout;
  return { state: st.stdout.trim(), journal };
}
