/**
 * Role `worker`: the worker daemon (runtime/worker.ts) on each worker node, run exactly as
 * `fleet worker --queue URL --token-file FILE --node NAME --run-as fleetkit-w1 --home-root DIR [--claude PATH]
 * [--env-file FILE]` as the node user: systemd unit `fleet-worker.service` on Linux and inside the WSL distro
 * on Windows, LaunchDaemon `dev.fleetkit.worker` with `UserName` on macOS (runs at boot without a login,
 * unlike a LaunchAgent).
 *
 * - Task identity: the daemon's one slot runs its tasks as `fleetkit-w1`, a system user the role creates
 *   (`useradd --system` on Linux/WSL; `dscl` on macOS, a hidden user with a group of its own, id 401-499),
 *   whose home `<stateDir>/workers/<node>-0` (0700) is the slot's HOME. The daemon stays the node user and
 *   starts each run's supervisor with `sudo -n -u fleetkit-w1` (runtime/slot.ts): `/etc/sudoers.d/
 *   fleetkit-worker` allows exactly that (checked with `visudo -c` before it is placed; sudo must be there,
 *   as it is on every node fleetkit drives). So a task cannot read the node's queue token, the queue's tokens
 *   file, claude.env, or the node user's home, which the role makes `o-rwx` (left so on uninstall). Chosen
 *   over a root daemon with spawn `uid`/`gid`: nothing that parses the queue's answers runs as root, and
 *   stops reach the task as lines on the supervisor's stdin. `<stateDir>/workers/node-claude` (node user,
 *   0755) is where the daemon leaves the node's Claude settings for the slot (the slot cannot read ~/.claude).
 * - Dying together: every run is started through runtime/supervise.sh, which stops the run when the daemon's
 *   pipe closes; the systemd unit also keeps `KillMode=control-group`; the LaunchDaemon relies on the
 *   supervisor (launchd kills only the daemon's own process group).
 *
 * - Runtime: Node.js and git from the platform's packages (Homebrew's `node` and `git`, run as the node user, on
 *   macOS: its /usr/bin/git is a stub that asks for the Xcode command line tools), the worker's
 *   sources and pinned package-lock subset (zod + tsx, no native modules) in `<binDir>/worker`, `npm ci` when
 *   the lock changed (roles/runtime-dist.ts).
 * - Queue: `http://<queue node host>:<services.queue.port>` (the queue binds the host address only, so the
 *   orchestrator's own worker uses it too). Budget cap and ntfy settings come from the queue
 *   (`GET /v1/nodes/me`, from fleet.yaml's budgetUsdPerSession), so editing a budget re-deploys only the queue.
 * - Claude: with role `claude` on the node, `--claude <pinned claude>` and `--env-file <configDir>/claude.env`
 *   (the 0600 credentials file the claude role writes); without it, `claude` from PATH and no env file.
 * - Secret: `queueToken` (this node's own token, the value the queue role has for it in `queueTokens`) from
 *   stdin into `<configDir>/worker/token`, 0600, owned by the node user; never on a command line.
 * - `fleet` on the node ({@link FLEET_COMMAND}): `fleet task delegate rpi2 "…" --wait` from the node user's
 *   shell or its Claude sessions (the worker runtime ships the `task` verb), with the queue URL and this
 *   token file filled in; a task's user cannot read the token, so a task cannot act as the node.
 * - Stop: SIGTERM, then 45 s (the worker finishes tasks for 30 s, then releases them to the queue).
 * - Uninstall removes the sudoers rule, the slot user (killing what it still runs) and `<stateDir>/workers`,
 *   task history and checkouts included.
 */
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { renderTemplate, sh, shQuote, type RoleParts } from "../bundle.js";
import { launchdPlist } from "../launchd.js";
import type { BundleFile } from "../types.js";
import { platformFor } from "../platform.js";
import { claudeBinary, claudeEnvFile, nodeJsBinDir } from "../claude/render.js";
import { queueUrl } from "../queue/render.js";
import type { PackageNames } from "../platform.js";
import { runtimePayload } from "../runtime-dist.js";

/**
 * The worker's packages: Node.js and npm (as roles/queue/render.ts `NODEJS_PACKAGES`) plus git, which runtime/checkout.ts and
 * GitHub issue tasks (runtime/github.ts) run for every task in a repository; a minimal Debian, Raspberry Pi
 * OS Lite or Arch install has none. Written out, not spread from NODEJS_PACKAGES: the queue, claude and worker
 * renderers import each other, and a constant computed from another module's constant at load time would
 * depend on which of them loads first (test/roles/queue-worker.test.ts checks both lists agree).
 */
export const WORKER_PACKAGES: PackageNames = {
  apt: ["nodejs", "npm", "git"],
  pacman: ["nodejs", "npm", "git"],
  brew: ["node", "git"],
};

/** Directory of the worker runtime on `node`. */
export function workerDir(node: FleetNode): string {
  return `${platformFor(node).binDir}/worker`;
}

/** The 0600 file holding the node's queue token. */
export function workerTokenFile(node: FleetNode): string {
  return `${platformFor(node).configDir}/worker/token`;
}

/**
 * The node's `fleet` command (templates/worker/fleet.sh): the worker runtime's CLI verbs (`task`, `worker`)
 * with this fleet's queue URL and the node's own token file, for the node user's shell and Claude sessions.
 */
export const FLEET_COMMAND = "/usr/local/bin/fleet";

/** The system user the worker's one slot runs tasks as. */
export const SLOT_USER = "fleetkit-w1";

/** The sudoers file allowing the node user to start the run supervisor as {@link SLOT_USER}. */
export const WORKER_SUDOERS = "/etc/sudoers.d/fleetkit-worker";

/**
 * Under the home root, where the daemon leaves the node's Claude settings for its slots: the name the worker
 * runtime uses (`STAGED_CLAUDE_DIR` in runtime/worker.ts; roles do not import the runtime, a test checks both).
 */
export const WORKER_STAGED_CLAUDE_DIR = "node-claude";

/**
 * The one sudoers rule of the worker role: the node user may start the run supervisor as the slot user,
 * and nothing else as anyone (`user ALL=(slotUser) NOPASSWD: supervise`, sudoers(5)). Built here rather than
 * from a template: sudoers has its own metacharacters (`,:=()\\!` and spaces), so every value must be a POSIX
 * user name or an absolute path of plain characters.
 * @throws Error when a value holds anything else (the model's grammar never lets one through).
 */
export function workerSudoersRule(user: string, slotUser: string, supervise: string): string {
  const name = /^[a-z_][a-z0-9_-]*$/;
  for (const [what, value, ok] of [
    ["user", user, name.test(user)],
    ["slot user", slotUser, name.test(slotUser)],
    ["supervisor path", supervise, /^\/[A-Za-z0-9._/-]+$/.test(supervise)],
  ] as const) {
    if (!ok) throw new Error(`sudoers rule ${WORKER_SUDOERS}: ${what} ${JSON.stringify(value)} cannot be written here: sudoers(5) takes a POSIX user name or a plain absolute path`);
  }
  return `# Rendered by fleetkit (role worker): the worker daemon, running as ${user}, may start the run supervisor as\n# its slot user ${slotUser}, and nothing else as anyone.\n${user} ALL=(${slotUser}) NOPASSWD: ${supervise}\n`;
}

/** Parent of the slot homes on `node` (`--home-root`). */
export function workerHomeRoot(node: FleetNode): string {
  return `${platformFor(node).stateDir}/workers`;
}

/** The node's `fleet` command as install and uninstall fragments: see {@link fleetCli}. */
export interface FleetCli {
  /** Unpacks the worker runtime (the `task` verbs the command runs) into {@link workerDir}; needs Node.js. */
  runtime: string;
  /** {@link FLEET_COMMAND}, a bundle file of the role that places it, kept on uninstall while the other role is there. */
  command: BundleFile;
  /** Writes the node's queue token (secret queueToken) into {@link workerTokenFile}, 0600, the node user's. */
  token: string;
  /** Removes the command, the runtime and the token, unless the node's other role that installs them is there. */
  remove: string;
}

/**
 * The `fleet` command on a node: the worker runtime's CLI with the fleet's queue URL and the node's own token,
 * for the node user's shell and its Claude sessions (issue "delegation from anywhere"). The worker role
 * installs it, and so does the claude role on a node without a worker, so that every node with Claude can
 * delegate. The two share the paths; each role's uninstall keeps them while the other role's marker
 * (`<stateDir>/roles/<role>.hash`) is there. That covers the orders Pulumi runs things in: a role removed is
 * uninstalled at the end of `pulumi up`, after the other role's update has (re)installed the command. Pure.
 */
export function fleetCli(fleet: Fleet, node: FleetNode, owner: "worker" | "claude"): FleetCli {
  const p = platformFor(node);
  const dir = workerDir(node);
  const nodeBin = nodeJsBinDir(node);
  const tokenFile = workerTokenFile(node);
  const view = { node: node.name, user: node.user, group: p.userGroup, nodeExe: `${nodeBin}/node`, entry: `${dir}/fleet.mjs`, queueUrl: queueUrl(fleet), tokenFile, configDir: `${p.configDir}/worker` };
  const payload = runtimePayload(node, "worker", dir);
  const runtime = renderTemplate("queue/runtime.sh", { verb: owner, dir, nodeBin, stateDir: p.stateDir, minNodeMajor: payload.minNodeMajor, why: "tsx", payload: payload.base64 }).trimEnd();
  const other = owner === "worker" ? "claude" : "worker";
  const command: BundleFile = { path: FLEET_COMMAND, mode: 0o755, owner: "root", group: p.rootGroup, kind: "shell", content: renderTemplate("worker/fleet.sh", view), keepWhile: other };
  return { runtime, command, token: renderTemplate("worker/token.sh", view).trimEnd(), remove: fleetCliRemoval(node, owner) };
}

/**
 * {@link FleetCli.remove} alone: what `owner`'s uninstall runs for the node's `fleet` when it does not place it
 * itself (the claude role on a node with a worker), without rendering the runtime it would otherwise carry.
 */
export function fleetCliRemoval(node: FleetNode, owner: "worker" | "claude"): string {
  const other = owner === "worker" ? "claude" : "worker";
  return [
    sh`if [ -e ${`${platformFor(node).stateDir}/roles/${other}.hash`} ]; then`,
    `  fk_log ${shQuote(`kept ${FLEET_COMMAND}, its runtime and the node's queue token: role ${other} uses them too`)}`,
    "else",
    `  ${sh`fk_rm ${FLEET_COMMAND} ${workerTokenFile(node)}`}`,
    `  ${sh`rm -rf ${workerDir(node)}`}`,
    "fi",
  ].join("\n");
}

/** Renders the worker role for one node (see the module docstring). Pure. */
export function renderWorker(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  const dir = workerDir(node);
  const nodeBin = nodeJsBinDir(node);
  const hasClaude = node.roles.includes("claude");
  const group = p.userGroup;
  const tokenFile = workerTokenFile(node);
  const homeRoot = workerHomeRoot(node);
  const view = {
    node: node.name,
    user: node.user,
    group,
    rootGroup: p.rootGroup,
    home: p.home,
    nodeBin,
    nodeExe: `${nodeBin}/node`,
    entry: `${dir}/fleet.mjs`,
    queueUrl: queueUrl(fleet),
    tokenFile,
    configDir: `${p.configDir}/worker`,
    claude: hasClaude ? claudeBinary(node) : undefined,
    envFile: hasClaude ? claudeEnvFile(node) : undefined,
    slotUser: SLOT_USER,
    homeRoot,
    slotHome: `${homeRoot}/${node.name}-0`,
    staged: `${homeRoot}/${WORKER_STAGED_CLAUDE_DIR}`,
    sudoers: WORKER_SUDOERS,
    supervise: `${dir}/runtime/supervise.sh`,
    linux: p.family !== "macos",
    macos: p.family === "macos",
  };
  const cli = fleetCli(fleet, node, "worker");
  const sudoersRule = workerSudoersRule(node.user, SLOT_USER, view.supervise);
  const sudoersFile: BundleFile = { path: WORKER_SUDOERS, mode: 0o440, owner: "root", group: p.rootGroup, kind: "text", content: sudoersRule };
  const identity = [renderTemplate(p.family === "macos" ? "worker/identity-macos.sh" : "worker/identity.sh", view), renderTemplate("worker/dirs.sh", { ...view, sudoersRule })].join("").trimEnd();
  const preInstall = [p.installPackages(WORKER_PACKAGES), cli.runtime, identity].filter(Boolean).join("\n");
  const token = cli.token;
  const cleanup = [cli.remove, renderTemplate("worker/identity-remove.sh", view).trimEnd()].join("\n");

  if (p.serviceManager === "launchd") {
    const plist = "/Library/LaunchDaemons/dev.fleetkit.worker.plist";
    const log = `${p.home}/Library/Logs/fleet-worker.log`;
    return {
      packages: p.packageList(WORKER_PACKAGES),
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
              `without a login). It long-polls the queue at ${view.queueUrl} and runs tasks with Claude Code as ${SLOT_USER}`,
              `(through sudo, as ${WORKER_SUDOERS} allows), each through the run supervisor, which ends the task when this`,
              "daemon exits or is killed.",
              "SIGTERM lets running tasks finish for 30 s (the worker's grace period) before launchd sends SIGKILL.",
            ],
            {
              Label: "dev.fleetkit.worker",
              UserName: node.user,
              ProgramArguments: [
                view.nodeExe,
                view.entry,
                "worker",
                ...["--queue", view.queueUrl, "--token-file", tokenFile, "--node", node.name, "--run-as", SLOT_USER, "--home-root", homeRoot],
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
        sudoersFile,
        cli.command,
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
    packages: p.packageList(WORKER_PACKAGES),
    preInstall,
    files: [{ path: unit, mode: 0o644, owner: "root", kind: "systemd", content: renderTemplate("worker/fleet-worker.service", view) }, sudoersFile, cli.command],
    postInstall: [token, "fk_systemd_unit fleet-worker.service"].join("\n"),
    preUninstall: sh`fk_systemd_remove fleet-worker.service ${unit}`,
    postUninstall: cleanup,
    services: [{ name: "fleet-worker.service", manager: "systemd", scope: "system" }],
    secrets: ["queueToken"],
  };
}
