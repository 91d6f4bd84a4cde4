/**
 * Running rendered role bundles on harness nodes exactly as the Pulumi role component does (roles/component.ts):
 * the command string is `remoteInvocation(node, target, script)` (`sudo -n sh -c '…'`, with the script at the
 * start of stdin when it is too long for the line), sent over SSH as the
 * node user, with the bundle's secrets as `NAME=value` lines on stdin (stacks/secrets.ts `secretStdin`),
 * in the order `dependsOn` gives (plan.ts `roleDependencies`), independent roles in parallel. Plus the
 * file checks the hosts tests share.
 */
import { createHash } from "node:crypto";
import type { Fleet, FleetNode, RoleName } from "../../model/fleet.js";
import { roleDependencies, roleResourceName } from "../../stacks/plan.js";
import { remoteCommand, remoteInvocation } from "../../roles/bundle.js";
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
 * the bundle's order; uninstall gets no stdin.
 */
export function runBundleScript(
  net: TestNetwork,
  fleet: Fleet,
  bundle: Bundle,
  which: "install" | "uninstall",
  secrets: Partial<Record<SecretName, string>> | ((node: string) => Partial<Record<SecretName, string>>),
): Promise<CommandResult> {
  const node = fleet.nodes.find((n) => n.name === bundle.node)!;
  const values = typeof secrets === "function" ? secrets(bundle.node) : secrets;
  const present = bundle.secrets.filter((s) => values[s]);
  const secretLines = which === "install" && present.length ? present.map((s) => `${s}=${values[s]}\n`).join("") : undefined;
  if (which === "uninstall") return testNode(net, bundle.node).ssh(remoteCommand(node, bundle.target, bundle.uninstall), { input: secretLines, timeoutSeconds: 600 });
  // As roles/component.ts does: a script too long for the command line is the start of stdin, then the secrets.
  const inv = remoteInvocation(node, bundle.target, bundle.install);
  const input = inv.stdinPrefix ? inv.stdinPrefix + (secretLines ?? "") : secretLines;
  return testNode(net, bundle.node).ssh(inv.command, { input, timeoutSeconds: 600 });
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
