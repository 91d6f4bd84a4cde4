/**
 * Role `claude`: Claude Code, pinned to `defaults.claude.version`, set up for the node user.
 *
 * - Install: Node.js from the platform's package manager (apt/pacman `nodejs npm`, Homebrew `node` run as
 *   the node user), then `npm install --global --prefix <binDir>/claude-code @anthropic-ai/claude-code@<v>`
 *   as root into a prefix fleetkit owns, linked as /usr/local/bin/claude. Claude's docs warn against
 *   `sudo npm install -g` because the self-updater then lacks write access; fleetkit pins the version and
 *   turns the updater off (`DISABLE_AUTOUPDATER=1` in settings.json), so a root-owned install is what we
 *   want: the agent cannot modify its own binary. Claude Code 2.x's npm package is a wrapper whose
 *   postinstall copies the platform's native binary (an optional dependency,
 *   `@anthropic-ai/claude-code-<os>-<arch>`) over `bin/claude.exe`: Node.js is needed to install, not to
 *   run. Its `engines` asks for Node 22+, which Debian/Raspberry Pi OS do not ship, so the step checks the
 *   result instead (`claude --version` must print `<version> (Claude Code)`, which is also the idempotency
 *   test) and names the Node.js version when it fails. Verified by test/roles/claude.test.ts, which runs the
 *   step against the npm registry.
 * - With the sandbox on, Linux and WSL2 also get `bubblewrap` and `socat`, which Claude Code's sandbox
 *   needs there (macOS uses the built-in Seatbelt; code.claude.com/docs/en/sandboxing).
 * - Files: `~/.claude/settings.json` (permissions + sandbox as in reference/claude-workers.md, from
 *   fleet.yaml), `~/.claude/CLAUDE.md` (the node's identity: name, fleet, roles, budget cap, how to
 *   delegate), `<configDir>/node.json` (what the worker runtime reads: node, fleet, budgetUsdPerSession,
 *   roles, os, arch).
 * - Secrets: `anthropicApiKey` and/or `claudeOauthToken` on stdin (at least one; the component passes
 *   whichever is configured) into `<configDir>/claude.env` (0600, owned by the node user) as
 *   `ANTHROPIC_API_KEY=` / `CLAUDE_CODE_OAUTH_TOKEN=` lines, read by AgentAPI's service and the worker.
 *   No secret is ever part of a rendered file.
 * - `fleet` (when the fleet runs a queue): on a node without the worker role, this role installs the node's
 *   `fleet` command the worker role otherwise brings (roles/worker/render.ts `fleetCli`: the runtime's `task`
 *   verbs, the queue URL, the node's own token from the minted secret `queueToken`, 0600), so Claude on every
 *   node can delegate as its CLAUDE.md and skill say.
 * Uninstall removes Claude Code, the link, the env file and the rendered files (and the `fleet` command unless
 * the worker role is still there); ~/.claude's history stays.
 */
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { fleetQueueUrl, nodeWithRole } from "../../model/fleet.js";
import { renderTemplate, type RoleParts } from "../bundle.js";
import { platformFor, type PackageNames } from "../platform.js";
import { fleetCli, fleetCliRemoval } from "../worker/render.js";

/** Where fleetkit installs Claude Code's npm prefix on `node`. */
export function claudePrefix(node: FleetNode): string {
  return `${platformFor(node).binDir}/claude-code`;
}

/** Absolute path of the `claude` executable fleetkit installs on `node` (inside the WSL distro on Windows). */
export function claudeBinary(node: FleetNode): string {
  return `${claudePrefix(node)}/bin/claude`;
}

/** The 0600 env file holding the node's Claude credentials (ANTHROPIC_API_KEY / CLAUDE_CODE_OAUTH_TOKEN). */
export function claudeEnvFile(node: FleetNode): string {
  return `${platformFor(node).configDir}/claude.env`;
}

/** Directory holding the `node` executable on `node` (Homebrew's bin on macOS, /usr/bin on Linux). */
export function nodeJsBinDir(node: FleetNode): string {
  const p = platformFor(node);
  return p.family === "macos" ? p.brew!.replace(/\/brew$/, "") : "/usr/bin";
}

/**
 * The fleet's `defaults.claude`.
 * @throws Error when it is absent: the fleet model requires it whenever a node runs role claude (model/rules.ts).
 */
export function claudeOf(fleet: Fleet): NonNullable<Fleet["claude"]> {
  if (!fleet.claude) throw new Error("role claude without defaults.claude: the fleet model should have rejected this");
  return fleet.claude;
}

/** `~/.claude/settings.json` for the fleet's Claude settings (shape from reference/claude-workers.md). */
export function claudeSettings(fleet: Fleet): Record<string, unknown> {
  const c = claudeOf(fleet);
  return {
    // Pinned version: the self-updater would drift away from the version AgentAPI was tested with.
    env: { DISABLE_AUTOUPDATER: "1" },
    permissions: { allow: c.allow, defaultMode: c.defaultMode },
    sandbox: c.sandbox ? { enabled: true, autoAllowBashIfSandboxed: true, network: { allowedDomains: c.allowedDomains } } : { enabled: false },
  };
}

/** `<configDir>/node.json`: the facts the worker runtime reads about its node (budget in USD per session). */
export function nodeFacts(fleet: Fleet, node: FleetNode): Record<string, unknown> {
  return {
    node: node.name,
    fleet: fleet.name,
    budgetUsdPerSession: node.budgetUsdPerSession ?? null,
    roles: node.roles,
    os: node.os,
    arch: node.arch,
  };
}

/**
 * The Claude Code skill `fleet` for `node` (`~/.claude/skills/fleet/SKILL.md`, Claude Code's skills format:
 * YAML front matter with `name` and `description`, then Markdown): how to see the fleet's nodes (`fleet task
 * status`, which lists every node with its OS, arch, profile, roles, tags and presence from the queue, which
 * has them from fleet.yaml) and the `fleet task` commands to delegate, wait, check status, read results and
 * take work by hand. It names no other node, so adding or changing a node re-deploys no other node's claude.
 * Pure.
 */
export function fleetSkill(fleet: Fleet, node: FleetNode): string {
  const queue = nodeWithRole(fleet, "queue");
  return renderTemplate("claude/SKILL.md", {
    fleet: fleet.name,
    node: node.name,
    // The node's `fleet`: the worker role or, without one, this role installs it wherever the fleet has a queue.
    command: queue !== undefined,
    queueUrl: queue ? fleetQueueUrl(fleet)! : "(no node of this fleet runs the queue role)",
  });
}

/** Renders the claude role for one node (see the module docstring). Pure. */
export function renderClaude(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  const claude = claudeOf(fleet);
  const sandboxPkgs = claude.sandbox ? ["bubblewrap", "socat"] : [];
  const pkgs: PackageNames = { apt: ["nodejs", "npm", ...sandboxPkgs], pacman: ["nodejs", "npm", ...sandboxPkgs], brew: ["node"] };
  const group = p.userGroup;
  const envFile = claudeEnvFile(node);
  const view = {
    version: claude.version,
    prefix: claudePrefix(node),
    nodeBin: nodeJsBinDir(node),
    user: node.user,
    group,
    home: p.home,
    configDir: p.configDir,
    envFile,
    linkDir: "/usr/local/bin",
    link: "/usr/local/bin/claude",
    claudeExe: claudeBinary(node),
    claudeDir: `${p.home}/.claude`,
    skillDir: `${p.home}/.claude/skills/fleet`,
    npmPackage: `@anthropic-ai/claude-code@${claude.version}`,
    owner: `${node.user}:${group}`,
    systemd: p.serviceManager === "systemd",
    launchd: p.serviceManager === "launchd",
  };
  const claudeMd = renderTemplate("claude/CLAUDE.md", {
    skill: true,
    node: node.name,
    fleet: fleet.name,
    os: node.os,
    arch: node.arch,
    roles: node.roles.join(", "),
    host: node.host,
    tailnetName: fleet.tailnet ? `${node.name}.${fleet.tailnet}` : undefined,
    budget: node.budgetUsdPerSession,
    agentapi: node.roles.includes("agentapi"),
    agentapiPort: fleet.services.agentapi.port,
    iceccd: node.roles.includes("iceccd"),
    worker: node.roles.includes("worker"),
  });
  // The node's `fleet` command: the worker role brings it; on a node without one, this role does (roles/worker).
  const queue = nodeWithRole(fleet, "queue") !== undefined;
  const ownCli = queue && !node.roles.includes("worker") ? fleetCli(fleet, node, "claude") : undefined;
  return {
    packages: p.packageList(pkgs),
    preInstall: [p.installPackages(pkgs), renderTemplate("claude/install.sh", view).trimEnd(), ...(ownCli ? [ownCli.runtime] : [])].join("\n"),
    files: [
      {
        path: `${p.home}/.claude/settings.json`,
        mode: 0o644,
        owner: node.user,
        group,
        kind: "json",
        content: `${JSON.stringify(claudeSettings(fleet), null, 2)}\n`,
      },
      { path: `${p.home}/.claude/CLAUDE.md`, mode: 0o644, owner: node.user, group, kind: "text", content: claudeMd },
      { path: `${p.configDir}/node.json`, mode: 0o644, owner: "root", kind: "json", content: `${JSON.stringify(nodeFacts(fleet, node), null, 2)}\n` },
      { path: `${p.home}/.claude/skills/fleet/SKILL.md`, mode: 0o644, owner: node.user, group, kind: "text", content: fleetSkill(fleet, node) },
      ...(ownCli ? [ownCli.command] : []),
    ],
    postInstall: [renderTemplate("claude/env.sh", view).trimEnd(), ...(ownCli ? [ownCli.token] : [])].join("\n"),
    // Always, when the fleet has a queue: the command this role installed, or the worker's once both roles go.
    postUninstall: [renderTemplate("claude/uninstall.sh", view).trimEnd(), ...(queue ? [fleetCliRemoval(node, "claude")] : [])].join("\n"),
    services: [],
    secrets: ["anthropicApiKey", "claudeOauthToken"],
    secretsMode: "any",
    ...(ownCli ? { requiredSecrets: ["queueToken" as const] } : {}),
  };
}
