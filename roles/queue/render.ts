/**
 * Role `queue`: the fleet's task queue server (runtime/server.ts) on one always-on Linux node, run exactly as
 * `fleet queue serve --db FILE --listen HOST:PORT --tokens FILE` by the systemd unit `fleet-queue.service`, as
 * the node user.
 *
 * - Runtime: Node.js from the platform's packages (apt/pacman `nodejs npm`), version checked against what the
 *   runtime's dependencies need (20+: better-sqlite3 12); the runtime sources and a pinned package-lock
 *   subset (roles/runtime-dist.ts) unpacked into `<binDir>/queue`, then `npm ci --omit=dev` when the lock
 *   changed. The sources travel gzip+base64 inside the install script, which is still past the 128 KiB one
 *   SSH command line may have (Linux MAX_ARG_STRLEN), so the script itself travels on stdin ahead of the
 *   secrets (roles/bundle.ts `remoteInvocation`).
 * - Listen: `0.0.0.0:<services.queue.port>`, so workers on other nodes can connect whatever the node's own
 *   name resolves to on the node itself (`127.0.1.1` on Debian and Raspberry Pi OS, which is where binding
 *   `<node host>:<port>` used to land); the node firewall (roles/firewall.ts) admits only the fleet's nodes.
 *   After the health check on loopback, templates/queue/reachable.sh checks `GET /healthz` on the address
 *   other nodes use.
 * - Database: `<stateDir>/queue/queue.db` (SQLite, WAL), owned by the node user; kept on uninstall.
 * - Tokens: `<configDir>/queue/nodes.json` (0644) holds the public facts of every node (os, arch, tags,
 *   budgetUsdPerSession, profile, roles and AgentAPI URL from fleet.yaml), the ntfy URL and topic, the queue's
 *   public URL, and every person's scope
 *   (fleet.yaml `people:`). The install merges the secrets from stdin into `<configDir>/queue/tokens.json`
 *   (0600, node user): `queueTokens` is the stack's one-line `node:sha256 node:sha256 …` and `peopleTokens`
 *   (when the fleet names people) `person:sha256 …` (stacks/secrets.ts formatQueueTokens: the SHA-256 of each
 *   token as 64 lower-case hex digits; a node without one is left out of the file); `ntfyToken` (`tk_` + 29
 *   lower-case letters/digits, the same value the ntfy role provisions) when the fleet has an ntfy server,
 *   handed to workers by `GET /v1/nodes/me`. The queue node so holds no usable token of any node or person:
 *   its own CLI uses its worker's token file, or a person's token (runtime/README.md). Secrets only ever pass
 *   through `printf` (a shell builtin) and stdin, never a command line.
 * - Health: the install waits (bounded, 60 s) for `GET /healthz`.
 */
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { nodeWithRole, queueUrl } from "../../model/fleet.js";
import { readTemplate, renderTemplate, sh, type RoleParts } from "../bundle.js";
import { platformFor, type PackageNames } from "../platform.js";
import { nodeJsBinDir } from "../claude/render.js";
import { tailscaleBinary } from "../tailscale/render.js";
import { ntfyUrl } from "../ntfy/render.js";
import { agentapiUrl } from "../agentapi/render.js";
import { runtimePayload } from "../runtime-dist.js";
import type { SecretName } from "../types.js";

/** Node.js and npm from the platform's package manager (Homebrew's `node` carries npm). */
export const NODEJS_PACKAGES: PackageNames = { apt: ["nodejs", "npm"], pacman: ["nodejs", "npm"], brew: ["node"] };

export { queueUrl };

/** Directory of the queue runtime on `node`. */
export function queueDir(node: FleetNode): string {
  return `${platformFor(node).binDir}/queue`;
}

/** Path of the tokens file (0600) on the queue node. */
export function queueTokensFile(node: FleetNode): string {
  return `${platformFor(node).configDir}/queue/tokens.json`;
}

/** Path of the GitHub token file (0600, the node user's) on the queue node (`services.queue.github`). */
export function queueGithubTokenFile(node: FleetNode): string {
  return `${platformFor(node).configDir}/queue/github.token`;
}

/**
 * Path of the GitHub App's private key file (PEM, 0600, the node user's) on the queue node
 * (`services.queue.github.app`): the queue reads it with `--github-app-key-file`.
 */
export function queueGithubAppKeyFile(node: FleetNode): string {
  return `${platformFor(node).configDir}/queue/github-app.pem`;
}

/** Path of the GitHub webhook secret file (0600, the node user's) on the queue node (`services.queue.github.webhook`). */
export function queueGithubWebhookFile(node: FleetNode): string {
  return `${platformFor(node).configDir}/queue/github-webhook.secret`;
}

/**
 * The public half of the tokens file (runtime/config.ts TokensFileSchema without `tokenSha256` values): every
 * node's os, arch, tags, budget cap (USD per session), profile, roles and AgentAPI URL (for the dashboard's
 * agent panel; null without role agentapi), every person's scope, how many days finished tasks are kept, the ntfy server (URL, topic;
 * token filled in on the node) or null, and the queue's public URL for links in notifications.
 */
export function queueFacts(fleet: Fleet): Record<string, unknown> {
  const ntfy = nodeWithRole(fleet, "ntfy");
  return {
    nodes: Object.fromEntries(
      fleet.nodes.map((n) => [
        n.name,
        {
          os: n.os,
          arch: n.arch,
          tags: n.tags,
          budgetUsdPerSession: n.budgetUsdPerSession ?? null,
          profile: n.profile ?? null,
          roles: n.roles,
          agentapi: n.roles.includes("agentapi") ? agentapiUrl(fleet, n) : null,
        },
      ]),
    ),
    people: Object.fromEntries(Object.entries(fleet.people).map(([name, scope]) => [name, { scope }])),
    ntfy: ntfy ? { url: ntfyUrl(fleet, ntfy), topic: fleet.services.ntfy.topic } : null,
    publicUrl: queueUrl(fleet),
    retentionDays: fleet.services.queue.retentionDays,
  };
}

/** Renders the queue role for one node (see the module docstring). Pure. */
export function renderQueue(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  const dir = queueDir(node);
  const stateDir = `${p.stateDir}/queue`;
  const configDir = `${p.configDir}/queue`;
  const facts = `${configDir}/nodes.json`;
  const tokens = queueTokensFile(node);
  const nodeBin = nodeJsBinDir(node);
  const url = queueUrl(fleet);
  const listen = `0.0.0.0:${fleet.services.queue.port}`;
  const hasNtfy = nodeWithRole(fleet, "ntfy") !== undefined;
  const hasPeople = Object.keys(fleet.people).length > 0;
  const github = fleet.services.queue.github;
  const secrets: SecretName[] = [
    "queueTokens",
    ...(hasPeople ? ["peopleTokens" as const] : []),
    ...(hasNtfy ? ["ntfyToken" as const] : []),
    ...(github ? [github.app ? ("githubAppPrivateKey" as const) : ("githubToken" as const)] : []),
    ...(github?.webhook ? ["githubWebhookSecret" as const] : []),
  ];
  // The dispatch label goes to the unit only where something reads it: the webhook or the poller.
  const githubView = github
    ? {
        tokenFile: queueGithubTokenFile(node),
        app: github.app ? { id: github.app.id, installationId: github.app.installationId, keyFile: queueGithubAppKeyFile(node) } : undefined,
        apiUrl: github.apiUrl.replace(/\/+$/, ""),
        webhook: github.webhook ? { secretFile: queueGithubWebhookFile(node) } : undefined,
        poll: github.poll ? { repos: github.poll.repos.map((repo) => ({ repo })), seconds: github.poll.intervalSeconds } : undefined,
        label: github.webhook || github.poll ? github.dispatchLabel : undefined,
      }
    : undefined;
  const payload = runtimePayload(node, "queue", dir);
  const group = p.userGroup;
  const unit = "/etc/systemd/system/fleet-queue.service";
  const runtime = renderTemplate("queue/runtime.sh", {
    verb: "queue",
    dir,
    nodeBin,
    stateDir: p.stateDir,
    minNodeMajor: payload.minNodeMajor,
    why: "better-sqlite3 and fastify",
    payload: payload.base64,
  }).trimEnd();
  const tokensStep = [
    "# Tokens: public facts + secrets from stdin -> 0600 file the server (running as the node user) reads.",
    sh`fk_tok_tmp=$(mktemp ${`${configDir}/.tokens.XXXXXX`})`,
    sh`printf '%s\\n%s\\n%s\\n' "\${FK_SECRET_queueTokens:-}" "\${FK_SECRET_ntfyToken:-}" "\${FK_SECRET_peopleTokens:-}" | ${`${nodeBin}/node`} ${`${dir}/tokens-file.mjs`} ${facts} > "$fk_tok_tmp" || { rm -f "$fk_tok_tmp"; exit 1; }`,
    sh`fk_put ${tokens} 0600 ${node.user} ${group} < "$fk_tok_tmp"`,
    'rm -f "$fk_tok_tmp"',
  ].join("\n");
  return {
    packages: p.packageList(NODEJS_PACKAGES),
    preInstall: [
      p.installPackages(NODEJS_PACKAGES),
      sh`mkdir -p ${stateDir} ${configDir}`,
      sh`chown ${node.user}:${group} ${stateDir}`,
      sh`chmod 0750 ${stateDir}`,
      runtime,
    ].filter(Boolean).join("\n"),
    files: [
      { path: `${dir}/tokens-file.mjs`, mode: 0o644, owner: "root", kind: "text", content: readTemplate("queue/tokens-file.mjs") },
      { path: facts, mode: 0o644, owner: "root", kind: "json", content: `${JSON.stringify(queueFacts(fleet), null, 2)}\n` },
      {
        path: unit,
        mode: 0o644,
        owner: "root",
        kind: "systemd",
        content: renderTemplate("queue/fleet-queue.service", { node: node.name, user: node.user, group, stateDir, nodeExe: `${nodeBin}/node`, entry: `${dir}/fleet.mjs`, listen, db: `${stateDir}/queue.db`, tokens, github: githubView }),
      },
    ],
    postInstall: [
      tokensStep,
      githubView ? renderTemplate("queue/github-secrets.sh", { ...githubView, configDir, user: node.user, group }).trimEnd() : "",
      "fk_systemd_unit fleet-queue.service",
      renderTemplate("queue/health.sh", { nodeBin, url, listen }).trimEnd(),
      renderTemplate("queue/reachable.sh", {
        nodeBin,
        host: node.host,
        port: fleet.services.queue.port,
        tailscale: node.roles.includes("tailscale") ? tailscaleBinary(node) : undefined,
      }).trimEnd(),
    ].filter(Boolean).join("\n"),
    preUninstall: sh`fk_systemd_remove fleet-queue.service ${unit}`,
    postUninstall: [github?.app ? sh`fk_rm ${tokens} ${queueGithubTokenFile(node)} ${queueGithubAppKeyFile(node)} ${queueGithubWebhookFile(node)}` : sh`fk_rm ${tokens} ${queueGithubTokenFile(node)} ${queueGithubWebhookFile(node)}`, sh`rm -rf ${dir}`, sh`fk_log "kept the task database in ${stateDir}"`].join("\n"),
    services: [{ name: "fleet-queue.service", manager: "systemd", scope: "system" }],
    secrets,
  };
}
