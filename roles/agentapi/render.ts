/**
 * Role `agentapi`: coder/agentapi in front of the node's Claude Code, so other nodes (and the orchestrator)
 * can drive a Claude session over HTTP: `agentapi server --type claude --port <port> --allowed-hosts <names>
 * -- claude`, running as the node user with the Claude credentials of roles/claude/render.ts.
 *
 * - Binary: the pinned release from `artifacts.agentapi` for the node's OS/arch (`agentapi-<os>-<goarch>`),
 *   sha256-verified by fk_download; with no sha256 pinned for the platform the install stops and says how
 *   to pin it. Installed to `<binDir>/agentapi`.
 * - Service: systemd `claude-agentapi.service` (User=, EnvironmentFile=<configDir>/claude.env; the name the
 *   reference fleet used) on Linux and inside the WSL distro; on macOS the LaunchDaemon
 *   `com.claude.agentapi` with UserName= (a LaunchDaemon starts at boot without anyone logged in, unlike the
 *   reference's LaunchAgent).
 * - Health: the install waits (bounded, 60 s) for `GET /status` on 127.0.0.1.
 * - First run: before AgentAPI starts, `<binDir>/claude-onboarded.mjs` (Node.js, as the node user, with the
 *   credentials in its environment) pre-answers the questions an interactive Claude Code asks once — theme,
 *   onboarding, "use this API key?", "trust this folder?" — in `~/.claude.json`, which no one could answer
 *   in a session AgentAPI drives; a failure there never keeps AgentAPI from starting. Uninstall leaves
 *   those answers (they are the user's Claude Code state).
 *
 * Security: AgentAPI has no authentication at all (FIELD-NOTES): whoever reaches the port drives an agent
 * with the node user's rights. v0.10.0 listens on `:port` (every interface) and has no bind flag, so the
 * node firewall the role installs (roles/firewall.ts: nftables, pf, Windows Firewall) is its only guard:
 * loopback and the queue node (roles/reach.ts) may connect, nobody else. `--allowed-hosts` (default:
 * localhost only) is set to exactly this node's names — localhost, 127.0.0.1, its fleet.yaml host, its node
 * name and its tailnet name — and `--allowed-origins` to the matching `http://name:port` origins: a guard
 * against DNS rebinding (a browser tricked into addressing the port under another name), not access
 * control, since any client that reaches the port chooses its own `Host:` header. Flags checked against
 * coder/agentapi cmd/server/server.go (`--type`, `--port`, `--allowed-hosts` hostnames without ports,
 * `--allowed-origins`).
 */
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { renderTemplate, sh, type RoleParts } from "../bundle.js";
import { launchdPlist } from "../launchd.js";
import type { BundleFile } from "../types.js";
import { artifactDownload, artifactFetch, artifactPinned, platformFor } from "../platform.js";
import { ENSURE_CURL } from "../tailscale/render.js";
import { claudeBinary, claudeEnvFile, nodeJsBinDir } from "../claude/render.js";

/** Absolute path of the agentapi binary on `node`. */
export function agentapiBinary(node: FleetNode): string {
  return `${platformFor(node).binDir}/agentapi`;
}

/** The script that pre-answers Claude Code's first-run questions before AgentAPI starts (module docstring). */
export function agentapiOnboardScript(node: FleetNode): string {
  return `${platformFor(node).binDir}/claude-onboarded.mjs`;
}

/**
 * The URL the queue node reaches `node`'s AgentAPI at, `http://<fleet.yaml host>:<services.agentapi.port>`: the
 * host is one of {@link agentapiAllowedHosts}, and the node firewall admits the queue node (roles/reach.ts).
 */
export function agentapiUrl(fleet: Fleet, node: FleetNode): string {
  return `http://${node.host}:${fleet.services.agentapi.port}`;
}

/** Host names AgentAPI accepts requests for on `node` (no ports), in a fixed order without duplicates. */
export function agentapiAllowedHosts(fleet: Fleet, node: FleetNode): string[] {
  const names = ["localhost", "127.0.0.1", node.host, node.name];
  if (fleet.tailnet) names.push(`${node.name}.${fleet.tailnet}`);
  return [...new Set(names)];
}

/**
 * The macOS LaunchDaemon. launchd has no environment files, so `/bin/sh` loads the 0600 credentials file
 * first; its `-c` script is a constant and every path, host name and port reaches it as a positional
 * parameter, so no fleet value is ever read as shell code.
 */
function agentapiLaunchDaemon(view: { node: string; version: string; user: string; port: number; envFile: string; nodeExe: string; onboard: string; agentapi: string; allowedHosts: string; allowedOrigins: string; claude: string }, home: string, log: string): string {
  return launchdPlist(
    [
      `Rendered by fleetkit for node ${view.node}: AgentAPI ${view.version} driving Claude Code over HTTP on port ${view.port},`,
      `a LaunchDaemon running as ${view.user} (starts at boot, no login needed). AgentAPI has NO authentication:`,
      "whoever reaches the port drives an agent with that user's rights. allowed-hosts only admits requests",
      "addressed to this node's own names (a DNS-rebinding guard); the pf anchor fleetkit/agentapi admits only",
      "loopback and the queue node.",
      "launchd has no environment files, so sh loads the 0600 credentials file ($1) before exec; claude-onboarded.mjs",
      "pre-answers Claude Code's first-run questions in ~/.claude.json (AgentAPI starts even if it fails).",
    ],
    {
      Label: "com.claude.agentapi",
      UserName: view.user,
      ProgramArguments: [
        "/bin/sh",
        "-c",
        'set -a; . "$1"; set +a; "$2" "$3"; shift 3; exec "$@"',
        "claude-agentapi",
        view.envFile,
        view.nodeExe,
        view.onboard,
        view.agentapi,
        ...["server", "--type", "claude", "--port", String(view.port), "--allowed-hosts", view.allowedHosts, "--allowed-origins", view.allowedOrigins, "--", view.claude],
      ],
      WorkingDirectory: home,
      EnvironmentVariables: { HOME: home, PATH: `${view.nodeExe.replace(/\/node$/, "")}:/usr/bin:/bin:/usr/sbin:/sbin`, TERM: "xterm-256color" },
      RunAtLoad: true,
      KeepAlive: true,
      StandardOutPath: log,
      StandardErrorPath: log,
    },
  );
}

/** Renders the agentapi role for one node (see the module docstring). Pure. */
export function renderAgentapi(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  const port = fleet.services.agentapi.port;
  const art = fleet.artifacts.agentapi;
  const bin = agentapiBinary(node);
  const hosts = agentapiAllowedHosts(fleet, node);
  const view = {
    node: node.name,
    version: art.version,
    user: node.user,
    home: p.home,
    port,
    envFile: claudeEnvFile(node),
    agentapi: bin,
    claude: claudeBinary(node),
    allowedHosts: hosts.join(","),
    allowedOrigins: hosts.map((h) => `http://${h}:${port}`).join(","),
    nodeExe: `${nodeJsBinDir(node)}/node`,
    onboard: agentapiOnboardScript(node),
  };
  const fetch = artifactFetch("agentapi", art, node, bin, 0o755);
  const onboarded: BundleFile = { path: agentapiOnboardScript(node), mode: 0o644, owner: "root", kind: "text", content: renderTemplate("agentapi/claude-onboarded.mjs", view) };

  if (p.family === "macos") {
    const plist = "/Library/LaunchDaemons/com.claude.agentapi.plist";
    const log = `${p.home}/Library/Logs/claude-agentapi.log`;
    return {
      packages: [],
      preInstall: fetch,
      downloads: [artifactDownload("agentapi", art, node)],
      files: [{ path: plist, mode: 0o644, owner: "root", kind: "launchd", content: agentapiLaunchDaemon(view, p.home, log) }, onboarded],
      postInstall: [sh`fk_launchd_daemon com.claude.agentapi ${plist} system`, renderTemplate("agentapi/health.sh", { port, logHint: log }).trimEnd()].join("\n"),
      preUninstall: sh`fk_launchd_remove com.claude.agentapi ${plist} system`,
      postUninstall: sh`fk_rm ${bin}`,
      services: [{ name: "com.claude.agentapi", manager: "launchd", scope: "system" }],
    };
  }

  const unit = "/etc/systemd/system/claude-agentapi.service";
  return {
    packages: [],
    // An unpinned platform stops first, before anything changes; Debian may need curl (download, health).
    preInstall: (artifactPinned(art, node) ? [p.family === "debian" ? ENSURE_CURL : "", fetch] : [fetch]).filter(Boolean).join("\n"),
    downloads: [artifactDownload("agentapi", art, node)],
    files: [{ path: unit, mode: 0o644, owner: "root", kind: "systemd", content: renderTemplate("agentapi/claude-agentapi.service", view) }, onboarded],
    postInstall: ["fk_systemd_unit claude-agentapi.service", renderTemplate("agentapi/health.sh", { port, logHint: "journalctl -u claude-agentapi" }).trimEnd()].join("\n"),
    preUninstall: sh`fk_systemd_remove claude-agentapi.service ${unit}`,
    postUninstall: sh`fk_rm ${bin}`,
    services: [{ name: "claude-agentapi.service", manager: "systemd", scope: "system" }],
  };
}
