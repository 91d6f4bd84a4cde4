/**
 * `fleet restart <node> <role> [--fleet FILE]`: restarts every service of a role on one node with that
 * node's service manager (`systemctl restart`, `launchctl kickstart -k`, `docker restart`; systemd
 * inside the WSL distro on Windows nodes), then prints each service's state. The services come from the
 * role's rendered bundle. Exit 0 when every service is active afterwards, 1 when not, 255 when the node
 * cannot be reached, 2 for bad input.
 */
import { parseVerb } from "./verb.js";
import { chalk } from "zx";
import { remoteCommand } from "../roles/bundle.js";
import { loadFleetWithRoles } from "../roles/sources.js";
import type { FleetNode } from "../model/fleet.js";
import type { Bundle } from "../roles/types.js";
import { UserError } from "../model/errors.js";
import { serviceBundle } from "./logs.js";
import { serviceRestartScript, serviceStateScript } from "./services.js";
import { sshRun, sshTargetOf } from "./ssh.js";
import { resolveNode, resolveRole } from "./targets.js";

/**
 * The remote command: restart each service, then print `NAME<TAB>STATE` per service. A failed restart
 * does not stop the others; the states tell. Pure.
 */
export function restartCommand(node: FleetNode, bundle: Bundle): string {
  const lines = ["set -u"];
  for (const s of bundle.services) {
    lines.push(`${serviceRestartScript(s, node)} || echo "fleet restart: restarting ${s.name} failed" >&2`);
  }
  // Give the manager a moment to report a unit that dies right after starting.
  lines.push("sleep 1");
  for (const s of bundle.services) lines.push(`fk_s=$(\n${serviceStateScript(s, node)}\n)`, `printf '%s\\t%s\\n' '${s.name}' "$fk_s"`);
  return remoteCommand(node, bundle.target, lines.join("\n") + "\n");
}

const USAGE = `usage: fleet restart <node> <role> [--fleet FILE]
Restarts the role's services on the node and prints their state afterwards.
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseVerb(argv, { verb: "restart", usage: USAGE, options: { fleet: { type: "string", default: "fleet.yaml" } } });
  if (!parsed) return 0;
  const { values: args, positionals: words } = parsed;
  if (words.length > 2) throw new UserError(`fleet restart: expected <node> <role>, got ${words.length} words.\n${USAGE}`);
  const fleet = await loadFleetWithRoles(args.fleet);
  const node = resolveNode(fleet, words[0], "restart");
  const role = resolveRole(node, words[1], "restart");
  const bundle = serviceBundle(fleet, node, role, "restart");
  const r = await sshRun(sshTargetOf(node), restartCommand(node, bundle), { timeoutSeconds: node.perDialTimeoutSeconds + 120 });
  process.stderr.write(r.stderr);
  if (r.reach !== "ok") {
    process.stderr.write(`fleet restart: ${node.name} is ${r.reach}: ${r.reason}\n`);
    return 255;
  }
  let allActive = r.exitCode === 0;
  const states = new Map(r.stdout.trim().split("\n").filter(Boolean).map((l) => l.split("\t") as [string, string]));
  for (const s of bundle.services) {
    const state = states.get(s.name) ?? "unknown";
    if (state !== "active") allActive = false;
    process.stdout.write(`${state === "active" ? chalk.green("✓") : chalk.red("✗")} ${node.name} ${s.name}: ${state}\n`);
  }
  return allActive ? 0 : 1;
}
