/**
 * The zod schema of `fleet.yaml`: the one typed description of a fleet. `fleet.schema.json` is generated
 * from {@link fleetFileSchema} (`npm run schema`), so editors complete the same fields this validates.
 *
 * Shapes only live here; cross-field rules (one scheduler, unique hosts, role allowed on an OS …) are in
 * `rules.ts`, and the resolved model every other layer reads is built by `load.ts`.
 */
import { z } from "zod";
import {
  artifactUrl,
  domainGlob,
  githubLabel,
  githubRepo,
  exactVersion,
  hostName,
  imageReference,
  localPath,
  nodeName,
  ntfyBaseUrl,
  ntfyTopic,
  ntfyUpstreamUrl,
  permissionRule,
  posixUser,
  reachSource,
  semanticVersion,
  tagKey,
  tagValue,
  tailnetName,
  wslDistroName,
} from "./grammar.js";

/** Operating-system families a node can run. `windows-wsl` = Windows host with a WSL2 Debian distro. */
export const OS_NAMES = ["macos", "debian", "raspios", "arch", "windows-wsl"] as const;
export type OsName = (typeof OS_NAMES)[number];

/** CPU architectures, as `uname -m` prints them on Linux (`arm64` on macOS is written `aarch64` here). */
export const ARCH_NAMES = ["x86_64", "aarch64"] as const;
export type ArchName = (typeof ARCH_NAMES)[number];

/**
 * Every role fleetkit can put on a node, in the order their components are created on a node (Tailscale
 * first; the scheduler before daemons; Claude before AgentAPI; the queue before workers).
 */
export const ROLE_NAMES = [
  "tailscale",
  "claude",
  "icecc-scheduler",
  "iceccd",
  "toolchains",
  "agentapi",
  "ntfy",
  "queue",
  "worker",
] as const;
/** A role fleetkit ships (roles/<role>/). */
export type BuiltinRoleName = (typeof ROLE_NAMES)[number];
/**
 * A role name as fleet.yaml writes it: a built-in one, or a user role from a folder fleet.yaml's
 * `roleSources:` names (a hostname label, like node names). Which user roles exist is known only once the
 * fleet file's role sources are loaded, so the type is open; the loader checks every name.
 */
export type RoleName = BuiltinRoleName | (string & {});

/** Operating systems each role supports; a role on any other OS is a validation error naming these. */
export const ROLE_SUPPORT: Record<BuiltinRoleName, readonly OsName[]> = {
  tailscale: OS_NAMES,
  claude: OS_NAMES,
  "icecc-scheduler": ["debian", "raspios", "arch"],
  iceccd: OS_NAMES,
  // icecc-create-env packs a Linux toolchain; builders are always-on Linux machines.
  toolchains: ["debian", "raspios", "arch"],
  agentapi: OS_NAMES,
  // ntfy runs as a Docker container, which fleetkit drives only on Linux engines.
  ntfy: ["debian", "raspios", "arch"],
  queue: ["debian", "raspios", "arch"],
  // On windows-wsl the worker runs in the distro; its install (the runtime, ~40 K characters packed) is over
  // a Windows command line's 8,191, so it travels on stdin (roles/bundle.ts remoteInvocation).
  worker: OS_NAMES,
};

/** Most nodes one fleet file may declare (checked before validation, so a huge file fails fast). */
export const MAX_NODES = 1000;
const usd = z.number().positive().max(10_000);
const port = z.number().int().min(1).max(65535);
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "64 lower-case hex digits (a sha256)");

/** Claude Code settings shared by every node (a node may not override them; budget caps are per node). */
export const claudeSettingsSchema = z
  .object({
    /** npm version of @anthropic-ai/claude-code to install, pinned (AgentAPI scrapes its UI). */
    version: exactVersion.describe("npm version of @anthropic-ai/claude-code to install, pinned (AgentAPI scrapes its UI)."),
    /** Claude Code permissions.defaultMode for headless nodes (claude-workers.md uses bypassPermissions). */
    defaultMode: z.enum(["default", "acceptEdits", "plan", "bypassPermissions"]).default("bypassPermissions").describe("Claude Code permissions.defaultMode for headless nodes (claude-workers.md uses bypassPermissions)."),
    /** Tools allowed without asking (settings.json permissions.allow). */
    allow: z.array(permissionRule).max(256).default(["Edit"]).describe("Tools allowed without asking (settings.json permissions.allow)."),
    /** OS-level sandbox (Seatbelt on macOS, bubblewrap on Linux) with autoAllowBashIfSandboxed. */
    sandbox: z.boolean().default(true).describe("OS-level sandbox (Seatbelt on macOS, bubblewrap on Linux) with autoAllowBashIfSandboxed."),
    /** Network domains the sandbox allows (settings.json sandbox.network.allowedDomains). */
    allowedDomains: z.array(domainGlob).max(256).default(["*.com", "*.io", "*.dev"]).describe("Network domains the sandbox allows (settings.json sandbox.network.allowedDomains)."),
  })
  .strict();

/** Per-fleet defaults a node inherits unless it sets the same field. */
export const defaultsSchema = z
  .object({
    /** SSH user on every node (the account that runs agents and workers). */
    user: posixUser.default("fleet").describe("SSH user on every node (the account that runs agents and workers)."),
    /** SSH port. */
    sshPort: port.default(22).describe("SSH port."),
    /** Path of the private key, on the machine that runs `pulumi up`, used to reach every node. */
    sshKeyPath: localPath.default("~/.ssh/id_ed25519").describe("Path of the private key, on the machine that runs `pulumi up`, used to reach every node."),
    /** Seconds one SSH dial may take before it counts as failed (@pulumi/command perDialTimeout). */
    perDialTimeoutSeconds: z.number().int().min(1).max(600).default(10).describe("Seconds one SSH dial may take before it counts as failed (@pulumi/command perDialTimeout)."),
    /** Failed dials before a node is given up on (@pulumi/command dialErrorLimit); keeps offline Pis fast. */
    dialErrorLimit: z.number().int().min(1).max(100).default(3).describe("Failed dials before a node is given up on (@pulumi/command dialErrorLimit); keeps offline Pis fast."),
    /** Claude budget cap in USD per session for nodes that set none. */
    budgetUsdPerSession: usd.optional().describe("Claude budget cap in USD per session for nodes that set none."),
    /** Claude Code settings of every node with role `claude`; required only when some node has that role. */
    claude: claudeSettingsSchema.optional(),
  })
  .strict();

/** Keys of per-platform artifact checksums: `<os>-<arch>` as the download names them. */
export const PLATFORM_KEYS = ["linux-x86_64", "linux-aarch64", "darwin-x86_64", "darwin-aarch64"] as const;
export type PlatformKey = (typeof PLATFORM_KEYS)[number];

/** One downloadable artifact, pinned by version and by sha256 per platform (`linux-x86_64`, `darwin-aarch64` …). */
export const artifactSchema = z
  .object({
    /** Semantic version, `v`-prefixed when the release tags are (`v0.10.0`); substituted for `{version}`. */
    version: semanticVersion.describe("Semantic version, `v`-prefixed when the release tags are (`v0.10.0`); substituted for `{version}`."),
    /**
     * Download URL template; `{version}`, `{os}` (linux|darwin), `{goarch}` (amd64|arm64) and `{arch}`
     * (x86_64|aarch64) are substituted per node.
     */
    url: artifactUrl.describe("Download URL template; {version}, {os} (linux|darwin), {goarch} (amd64|arm64) and {arch} (x86_64|aarch64) are substituted per node."),
    /** sha256 of the file each platform downloads; a platform without one cannot be installed. */
    sha256: z.partialRecord(z.enum(PLATFORM_KEYS), sha256Hex).default({}).describe("sha256 of the file each platform downloads; a platform without one cannot be installed."),
  })
  .strict();

export const servicesSchema = z
  .object({
    ntfy: z
      .object({
        /** Host port the ntfy container publishes (remote-tasks.md uses 8091). */
        port: port.default(8091).describe("Host port the ntfy container publishes (remote-tasks.md uses 8091)."),
        /** Topic workers publish task results to. */
        topic: ntfyTopic.default("fleet-tasks").describe("Topic workers publish task results to."),
        /** Pinned ntfy image (2.14 or newer: server.yml declares the publisher with auth-users/auth-access/auth-tokens); pin a digest for reproducible deploys. */
        image: imageReference.default("binwiederhier/ntfy:v2.14.0").describe("Pinned ntfy image (2.14 or newer: server.yml declares the publisher with auth-users/auth-access/auth-tokens); pin a digest for reproducible deploys."),
        /** Public base URL clients use (ntfy `base-url`; needed for iOS push with upstream-base-url). */
        baseUrl: ntfyBaseUrl.optional().describe("Public base URL clients use (ntfy `base-url`; needed for iOS push with upstream-base-url)."),
        /**
         * Who may connect to the ntfy port, enforced by the node firewall and the tailnet policy: `fleet` (the
         * fleet's nodes), `tailnet` (any tailnet device, e.g. phones with the ntfy app), `anywhere`, or CIDR
         * blocks like `192.168.1.0/24`.
         */
        allowFrom: z
          .array(reachSource)
          .min(1)
          .max(64)
          .default(["fleet", "tailnet"])
          .describe("Who may connect to the ntfy port (node firewall and tailnet policy): fleet, tailnet, anywhere, or CIDR blocks like 192.168.1.0/24."),
        /** Forward poll requests to ntfy.sh so iOS gets instant pushes (ntfy `upstream-base-url`). */
        upstreamBaseUrl: ntfyUpstreamUrl.optional().describe("Forward poll requests to ntfy.sh so iOS gets instant pushes (ntfy `upstream-base-url`)."),
      })
      .strict()
      .prefault({}),
    queue: z
      .object({
        /** TCP port of the queue server's HTTP API, bound on the queue node's host address. */
        port: port.default(8787).describe("TCP port of the queue server's HTTP API, bound on the queue node's host address."),
        /**
         * Who may connect to the queue's port (its API and the dashboard) besides the fleet's own nodes,
         * enforced by the node firewall and the tailnet policy: `tailnet` (every tailnet device: people's
         * laptops and phones), `anywhere`, or CIDR blocks. Every request still needs a token or a session.
         */
        allowFrom: z
          .array(reachSource)
          .max(64)
          .default([])
          .describe("Who may reach the queue's API and dashboard besides the fleet's nodes (node firewall and tailnet policy): tailnet, anywhere or CIDR blocks like 192.168.1.0/24."),
        /**
         * GitHub issues to pull requests (kind `github-issue`, runtime/github.ts): set to let the queue take such
         * tasks with the token in secret config `fleetkit:githubToken`, or as the GitHub App of `app` (its key in
         * secret config `fleetkit:githubAppPrivateKey`; exactly one of the two); `webhook: true` also receives GitHub's
         * webhook (secret `fleetkit:githubWebhookSecret`) and turns an issue labelled `dispatchLabel` into a task;
         * `poll` finds such issues by polling instead (a queue GitHub cannot reach).
         */
        github: z
          .object({
            apiUrl: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }).default("https://api.github.com").describe("GitHub REST base URL (GitHub Enterprise: https://HOST/api/v3)."),
            /**
             * A GitHub App instead of a token (runtime/github-app.ts): each task gets a fresh installation token
             * restricted to its repository, so no long-lived token reaches a worker. The App's private key is the
             * secret `fleetkit:githubAppPrivateKey`.
             */
            app: z
              .object({
                id: z.number().int("expected the App's numeric ID").min(1).max(Number.MAX_SAFE_INTEGER).describe("The App's ID (its settings page, \"App ID\")."),
                installationId: z
                  .number()
                  .int("expected a numeric installation ID")
                  .min(1)
                  .max(Number.MAX_SAFE_INTEGER)
                  .optional()
                  .describe("The installation to mint tokens from (the number at the end of its settings URL); unset: looked up per repository."),
              })
              .strict()
              .optional()
              .describe("Sign in as a GitHub App (private key in secret config fleetkit:githubAppPrivateKey) instead of the token fleetkit:githubToken."),
            webhook: z.boolean().default(false).describe("Receive GitHub's webhook at POST /v1/github/webhook (secret fleetkit:githubWebhookSecret); the queue must then be reachable from GitHub (allowFrom)."),
            dispatchLabel: githubLabel
              .default("fleet:dispatch")
              .describe("The issue label that dispatches an issue to the fleet (webhook or poll)."),
            /**
             * For a queue GitHub's webhooks cannot reach (tailnet only): the queue polls these repositories for
             * open issues labelled `dispatchLabel` (conditional requests: an unchanged list costs no rate limit;
             * runtime/github-poller.ts), turns each into one task and removes the label once it has it.
             */
            poll: z
              .object({
                repos: z.array(githubRepo).min(1).max(100).describe("Repositories (owner/repo) whose open issues labelled dispatchLabel become tasks."),
                /** Seconds between polls (GitHub answers an unchanged list with a free 304). */
                intervalSeconds: z
                  .number()
                  .int("expected a whole number of seconds")
                  .min(10)
                  .max(86400)
                  .default(60)
                  .describe("Seconds between polls (an unchanged list is a 304, which costs no rate limit)."),
              })
              .strict()
              .optional()
              .describe("Poll GitHub for issues labelled dispatchLabel (for a queue GitHub's webhooks cannot reach)."),
          })
          .strict()
          .optional()
          .describe("Let the queue take GitHub issue tasks (token in secret config fleetkit:githubToken, or a GitHub App: app)."),
        /** Days a completed, failed or cancelled task is kept before the queue purges it (0 keeps every task); counts stay right. */
        retentionDays: z
          .number()
          .int("expected a whole number of days")
          .min(0)
          .max(36500)
          .default(30)
          .describe("Days a completed, failed or cancelled task is kept before the queue purges it (0 keeps every task); task counts and spend stay right."),
      })
      .strict()
      .prefault({}),
    agentapi: z
      .object({
        /** AgentAPI's HTTP port (its default is 3284). */
        port: port.default(3284).describe("AgentAPI's HTTP port (its default is 3284)."),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const artifactsSchema = z
  .object({
    agentapi: artifactSchema.default({
      version: "v0.10.0",
      url: "https://github.com/coder/agentapi/releases/download/{version}/agentapi-{os}-{goarch}",
      sha256: {},
    }),
    tailscale: artifactSchema.default({
      version: "1.90.6",
      url: "https://pkgs.tailscale.com/stable/tailscale_{version}_{goarch}.tgz",
      sha256: {},
    }),
  })
  .strict();

/** The roles fleet.yaml may name: the built-in ones, then the user roles its `roleSources:` bring. */
function roleListOf(names: readonly string[]) {
  return z.array(z.enum(names as [string, ...string[]]));
}
type RoleList = ReturnType<typeof roleListOf>;
const roleList = roleListOf(ROLE_NAMES);

/**
 * A user role as the fleet model sees it: plain data (its `RoleDefinition` lives in roles/, loaded from the
 * folder by roles/sources.ts). The model checks names, OS support and the role's settings with it.
 */
export interface UserRoleSpec {
  /** The role's name (its folder's name; a hostname label that is not a built-in role). */
  name: string;
  /** OS families it runs on. */
  os: readonly OsName[];
  /** Absolute path of the role's folder. */
  source: string;
  /** zod schema of the role's settings under `services.<name>` (absent = the role takes none). */
  settings?: z.ZodType;
}

function nodeSchemaOf(roles: RoleList) {
  return z
  .object({
    /** SSH address: a Tailscale (MagicDNS) name, DNS name or IP. Also the address services use. */
    host: hostName.describe("SSH address: a Tailscale (MagicDNS) name, DNS name or IP. Also the address services use."),
    /** Address for the first `pulumi up`, before the node has joined the tailnet (e.g. a LAN IP). */
    bootstrapHost: hostName.optional().describe("Address for the first `pulumi up`, before the node has joined the tailnet (e.g. a LAN IP)."),
    os: z.enum(OS_NAMES),
    arch: z.enum(ARCH_NAMES),
    /** SSH user; defaults to `defaults.user`. */
    user: posixUser.optional().describe("SSH user; defaults to `defaults.user`."),
    sshPort: port.optional(),
    /** Name of a profile under `profiles:` whose roles this node gets. */
    profile: z.string().optional().describe("Name of a profile under `profiles:` whose roles this node gets."),
    /** Roles in addition to the profile's. */
    roles: roles.optional().describe("Roles in addition to the profile's."),
    /** Claude budget cap in USD per session (and per task; a day's cap for workers). */
    budgetUsdPerSession: usd.optional().describe("Claude budget cap in USD per session (and per task; a day's cap for workers)."),
    /** iceccd `--max-processes`: parallel compile jobs this node accepts (default: its CPU count). */
    iceccMaxJobs: z.number().int().min(1).max(256).optional().describe("iceccd `--max-processes`: parallel compile jobs this node accepts (default: its CPU count)."),
    /** WSL distribution that runs the Linux side of a `windows-wsl` node (e.g. Debian). */
    wslDistro: wslDistroName.optional().describe("WSL distribution that runs the Linux side of a `windows-wsl` node (e.g. Debian)."),
    /** The node has a Docker engine the SSH user may drive (required to host ntfy). */
    docker: z.boolean().optional().describe("The node has a Docker engine the SSH user may drive (required to host ntfy)."),
    /** The node builds icecc toolchain tarballs (the scheduler node always does). */
    builder: z.boolean().optional().describe("The node builds icecc toolchain tarballs (the scheduler node always does)."),
    /** Free labels (`gpu: "true"`, `site: home`); tasks can require them. */
    tags: z.record(tagKey, tagValue).optional().describe("Free labels (`gpu: \"true\"`, `site: home`); tasks can require them."),
  })
  .strict();
}

/** One node (a machine) of the fleet, keyed by its name under `nodes:`. */
export const nodeSchema = nodeSchemaOf(roleList);

/** What a person's queue token may do: `operator` every task (no worker calls), `viewer` read only. */
export const PERSON_SCOPES = ["operator", "viewer"] as const;
export type PersonScope = (typeof PERSON_SCOPES)[number];

/** Most folders `roleSources:` may name. */
export const MAX_ROLE_SOURCES = 32;

const servicesWithDefaults = servicesSchema.prefault({});

function fleetFileSchemaOf(roles: RoleList, services: typeof servicesWithDefaults) {
  return z
  .object({
    /** Fleet name; also the Pulumi stack name users pick for it. */
    fleet: nodeName.describe("Fleet name; also the Pulumi stack name users pick for it."),
    /** Tailnet DNS suffix (MagicDNS), e.g. `tail1234.ts.net`. */
    tailnet: tailnetName.optional().describe("Tailnet DNS suffix (MagicDNS), e.g. `tail1234.ts.net`."),
    defaults: defaultsSchema,
    services: services,
    artifacts: artifactsSchema.prefault({}),
    /** Named role sets (like inventory groups) nodes refer to with `profile:`. */
    profiles: z.record(nodeName, roles).default({}).describe("Named role sets (like inventory groups) nodes refer to with `profile:`."),
    /** People who use the task queue with a token of their own (minted by the stack), by name: operator or viewer. */
    people: z
      .record(nodeName, z.enum(PERSON_SCOPES))
      .default({})
      .describe("People who use the task queue with their own token (stack output peopleTokens), by name: operator (every task) or viewer (read only)."),
    /**
     * Folders of user roles, relative to the fleet file: a folder with an `index.ts` is one role, any other
     * folder holds role folders (README "Writing a role").
     */
    roleSources: z
      .array(localPath)
      .max(MAX_ROLE_SOURCES)
      .default([])
      .describe("Folders of user roles, relative to the fleet file: a folder with an index.ts is one role, any other folder holds role folders (README \"Writing a role\")."),
    nodes: z.record(nodeName, nodeSchemaOf(roles)).meta({ maxProperties: MAX_NODES }),
  })
  .strict();
}

/** The whole `fleet.yaml` (built-in roles only; {@link fleetFileSchemaFor} adds a fleet's user roles). */
export const fleetFileSchema = fleetFileSchemaOf(roleList, servicesWithDefaults);

/**
 * The schema of a fleet file whose `roleSources:` bring `userRoles`: their names become valid roles (after
 * the built-in ones, so an unknown name lists and suggests them too) and each role's settings schema
 * validates `services.<name>` (an absent block gets the settings' defaults). With no user roles it is
 * {@link fleetFileSchema} itself.
 */
export function fleetFileSchemaFor(userRoles: readonly UserRoleSpec[]): typeof fleetFileSchema {
  if (userRoles.length === 0) return fleetFileSchema;
  const roles = roleListOf([...ROLE_NAMES, ...userRoles.map((r) => r.name)]);
  const extra = Object.fromEntries(userRoles.filter((r) => r.settings).map((r) => [r.name, r.settings!.prefault({})]));
  return fleetFileSchemaOf(roles, servicesSchema.extend(extra).prefault({}) as unknown as typeof servicesWithDefaults);
}

/** `fleet.yaml` as written (before defaults). */
export type FleetFileInput = z.input<typeof fleetFileSchema>;
/** `fleet.yaml` after zod parsing (defaults applied), before cross-field resolution. */
export type FleetFile = z.output<typeof fleetFileSchema>;
export type NodeInput = z.output<typeof nodeSchema>;
export type ClaudeSettings = z.output<typeof claudeSettingsSchema>;
export type Artifact = z.output<typeof artifactSchema>;
export type Services = z.output<typeof servicesSchema>;
