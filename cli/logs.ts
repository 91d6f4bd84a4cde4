/**
 * `fleet logs <node> <role> [-n LINES] [-f] [--fleet FILE]`: a role's service logs on one node, read
 * with that node's service manager: the systemd journal (`journalctl -u`, also inside a Windows node's
 * WSL distro), the log files a launchd plist names on macOS, or `docker logs`. Which services a role has
 * comes from its rendered bundle. `-f` keeps following until interrupted. Exit: the remote command's exit
 * code (255 when the node cannot be reached), 2 for bad input.
 */
import { parseVerb } from "./verb.js";
import { remoteCommand } from "../roles/bundle.js";
import { loadFleetWithRoles } from "../roles/sources.js";
import { UserError } from "../model/errors.js";
import { renderNodeBundles } from "../roles/index.js";
import { serviceLogsScript } from "./services.js";
import { sshRun, sshTargetOf } from "./ssh.js";
import { resolveNode, resolveRole } from "./targets.js";
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import type { Bundle } from "../roles/types.js";

/**
 * The rendered bundle of `role` on `node`, which must run at least one service.
 * @throws UserError (exit 2) when the role runs no service (or runs on a Windows node's host side).
 */
export function serviceBundle(fleet: Fleet, node: FleetNode, role: RoleName, verb: string): Bundle {
  const bundles = renderNodeBundles(fleet, node);
  const bundle = bundles.find((b) => b.role === role);
  if (!bundle) throw new UserError(`fleet ${verb}: ${node.name} does not run role ${role}; its roles: ${node.roles.join(", ")}.`);
  if (bundle.services.length === 0) {
    const withServices = bundles.filter((b) => b.services.length > 0).map((b) => b.role);
    throw new UserError(`fleet ${verb}: role ${role} on ${node.name} runs no service; roles with services there: ${withServices.join(", ") || "(none)"}.`);
  }
  if (bundle.target === "windows-host") throw new UserError(`fleet ${verb}: role ${role} runs on ${node.name}'s Windows host side; use the Windows event viewer or Services there.`);
  return bundle;
}

/** The remote command that prints (or follows) the logs of every service of `bundle`. Pure. */
export function logsCommand(node: FleetNode, bundle: Bundle, opts: { lines: number; follow: boolean }): string {
  const parts = bundle.services.map((s) => serviceLogsScript(bundle, s, node, opts));
  // Following several services: run all but the last in the background so every stream shows.
  const script = opts.follow && parts.length > 1 ? [...parts.slice(0, -1).map((p) => `${p} &`), parts.at(-1)!].join("\n") : parts.join("\n");
  return remoteCommand(node, bundle.target, `set -e\n${script}\n`);
}

const USAGE = `usage: fleet logs <node> <role> [-n LINES] [-f] [--fleet FILE]
  -n, --lines LINES  how many recent lines (default 100)
  -f, --follow       keep streaming new lines until interrupted
  --fleet FILE       fleet file (default fleet.yaml)
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseVerb(argv, { verb: "logs", usage: USAGE, options: { fleet: { type: "string", default: "fleet.yaml" }, lines: { type: "string", short: "n", default: "100" }, follow: { type: "boolean", short: "f" } } });
  if (!parsed) return 0;
  const { values: args, positionals: words } = parsed;
  const lines = Number(args.lines);
  if (!Number.isInteger(lines) || lines < 0) throw new UserError(`fleet logs: --lines expects a whole number ≥ 0, got "${args.lines}".`);
  if (words.length > 2) throw new UserError(`fleet logs: expected <node> <role>, got ${words.length} words.\n${USAGE}`);
  const fleet = await loadFleetWithRoles(args.fleet);
  const node = resolveNode(fleet, words[0], "logs");
  const role = resolveRole(node, words[1], "logs");
  const bundle = serviceBundle(fleet, node, role, "logs");
  const r = await sshRun(sshTargetOf(node), logsCommand(node, bundle, { lines, follow: args.follow ?? false }), {
    timeoutSeconds: args.follow ? undefined : node.perDialTimeoutSeconds + 60,
    onStdout: (c) => process.stdout.write(c),
    onStderr: (c) => process.stderr.write(c),
  });
  if (r.reach !== "ok") process.stderr.write(`fleet logs: ${node.name} is ${r.reach}: ${r.reason}\n`);
  return r.exitCode;
}
