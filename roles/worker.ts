/**
 * Role `worker`: the worker daemon (runtime/worker.ts) on each worker node, run exactly as
 * `fleet worker --queue URL --token-file FILE --node NAME [--claude PATH] [--env-file FILE]` as the node user:
 * systemd unit `fleet-worker.service` on Linux and inside the WSL distro on Windows, LaunchDaemon
 * `dev.fleetkit.worker` with `UserName` on macOS (runs at boot without a login, unlike a LaunchAgent).
 *
 * - Runtime: Node.js from the platform's packages (Homebrew `node` run as the node user on macOS), the worker's
 *   sources and pinned package-lock subset (zod + tsx, no native modules) in `<binDir>/worker`, `npm ci` when
 *   the lock changed (roles/runtime-dist.ts).
 * - Queue: `http://<queue node host>:<services.queue.port>` (the queue binds the host address only, so the
 *   orchestrator's own worker uses it too). Budget cap and ntfy settings come from the queue
 *   (`GET /v1/nodes/me`, from fleet.yaml's budgetUsdPerSession), so editing a budget re-deploys only the queue.
 * - Claude: with role `claude` on the node, `--claude <pinned claude>` and `--env-file <configDir>/claude.env`
 *   (the 0600 credentials file the claude role writes); without it, `claude` from PATH and no env file.
 * - Secret: `queueToken` (this node's own token, the value the queue role has for it in `queueTokens`) from
 *   stdin into `<configDir>/worker/token`, 0600, owned by the node user; never on a command line.
 * - Stop: SIGTERM, then 45 s (the worker finishes tasks for 30 s, then releases them to the queue).
 */
import type { Fleet, FleetNode } from "../stacks/model/fleet.js";
import { renderTemplate, sh, type RoleParts } from "./bundle.js";
import { launchdPlist } from "./launchd.js";
import { platformFor } from "./platform.js";
import { claudeBinary, claudeEnvFile, nodeJsBinDir } from "./claude.js";
import { NODEJS_PACKAGES, queueUrl } from "./queue.js";
import { runtimePayload } from "./runtime-dist.js";

/** Directory of the worker runtime on `node`. */
export function workerDir(node: FleetNode): string {
  return `${platformFor(node).binDir}/worker`;
}

/** The 0600 file holding the node's queue token. */
export function workerTokenFile(node: FleetNode): string {
  return `${platformFor(node).configDir}/worker/token`;
}

/** Renders the worker role for one node (see the module docstring). Pure. */
export function renderWorker(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  const dir = workerDir(node);
  const nodeBin = nodeJsBinDir(node);
  const hasClaude = node.roles.includes("claude");
  const payload = runtimePayload(node, "worker", dir);
  const group = p.userGroup;
  const tokenFile = workerTokenFile(node);
  const view = {
    node: node.name,
    user: node.user,
    group,
    home: p.home,
    nodeBin,
    nodeExe: `${nodeBin}/node`,
    entry: `${dir}/fleet.mjs`,
    queueUrl: queueUrl(fleet),
    tokenFile,
    configDir: `${p.configDir}/worker`,
    claude: hasClaude ? claudeBinary(node) : undefined,
    envFile: hasClaude ? claudeEnvFile(node) : undefined,
  };
  const runtime = renderTemplate("queue/runtime.sh", {
    verb: "worker",
    dir,
    nodeBin,
    stateDir: p.stateDir,
    minNodeMajor: payload.minNodeMajor,
    why: "tsx",
    payload: payload.base64,
  }).trimEnd();
  const preInstall = [p.installPackages(NODEJS_PACKAGES), runtime].filter(Boolean).join("\n");
  const token = renderTemplate("worker/token.sh", view).trimEnd();
  const cleanup = [sh`fk_rm ${tokenFile}`, sh`rm -rf ${dir}`].join("\n");

  if (p.serviceManager === "launchd") {
    const plist = "/Library/LaunchDaemons/dev.fleetkit.worker.plist";
    const log = `${p.home}/Library/Logs/fleet-worker.log`;
    return {
      packages: p.packageList(NODEJS_PACKAGES),
      preInstall,
      files: [
        {
          path: plist,
          mode: 0o644,
          owner: "root",
          kind: "launchd",
          content: launchdPlist(
            [
              `Rendered by fleetkit for node ${node.name}: the worker daemon, a LaunchDaemon running as ${node.user} (starts at boot`,
              `without a login). It long-polls the queue at ${view.queueUrl} and runs tasks with Claude Code.`,
              "SIGTERM lets running tasks finish for 30 s (the worker's grace period) before launchd sends SIGKILL.",
            ],
            {
              Label: "dev.fleetkit.worker",
              UserName: node.user,
              ProgramArguments: [
                view.nodeExe,
                view.entry,
                "worker",
                ...["--queue", view.queueUrl, "--token-file", tokenFile, "--node", node.name],
                ...(view.claude ? ["--claude", view.claude] : []),
                ...(view.envFile ? ["--env-file", view.envFile] : []),
              ],
              WorkingDirectory: p.home,
              EnvironmentVariables: { HOME: p.home, PATH: `${nodeBin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`, NODE_ENV: "production" },
              RunAtLoad: true,
              KeepAlive: true,
              ExitTimeOut: 45,
              StandardOutPath: log,
              StandardErrorPath: log,
            },
          ),
        },
      ],
      postInstall: [token, sh`fk_launchd_daemon dev.fleetkit.worker ${plist} system`].join("\n"),
      preUninstall: sh`fk_launchd_remove dev.fleetkit.worker ${plist} system`,
      postUninstall: cleanup,
      services: [{ name: "dev.fleetkit.worker", manager: "launchd", scope: "system" }],
      secrets: ["queueToken"],
    };
  }
  const unit = "/etc/systemd/system/fleet-worker.service";
  return {
    packages: p.packageList(NODEJS_PACKAGES),
    preInstall,
    files: [{ path: unit, mode: 0o644, owner: "root", kind: "systemd", content: renderTemplate("worker/fleet-worker.service", view) }],
    postInstall: [token, "fk_systemd_unit fleet-worker.service"].join("\n"),
    preUninstall: sh`fk_systemd_remove fleet-worker.service ${unit}`,
    postUninstall: cleanup,
    services: [{ name: "fleet-worker.service", manager: "systemd", scope: "system" }],
    secrets: ["queueToken"],
  };
}
