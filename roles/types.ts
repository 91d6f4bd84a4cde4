/**
 * The role bundle: everything one role needs on one node, rendered as plain data by a pure function of the
 * fleet (no network, no clock), so the same fleet renders byte-identical bundles every time.
 *
 * Who reads a bundle:
 * - the Pulumi role component runs `install` over SSH (`remote.Command` create, re-run in place when it changes) with the
 *   role's secrets on stdin, and `uninstall` as the command's `delete`;
 * - the hosts tests run the very same scripts over SSH on real Debian nodes;
 * - the static tests feed `files` and the scripts to shellcheck, systemd-analyze and a plist parser;
 * - `fleet drift` compares the node's marker and files with a fresh render.
 */
import type { z } from "zod";
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import type { OsName, PlatformKey } from "../model/schema.js";
import type { RoleParts } from "./bundle.js";
import type { PlannedResource } from "./naming.js";

/** A file the role places on the node. Content is text and always ends with a newline. */
export interface BundleFile {
  /** Absolute path on the node (inside the WSL distro for windows-wsl Linux-side roles). */
  path: string;
  /** Permission bits, e.g. 0o644; secrets files are 0o600. */
  mode: number;
  /** Owning user name (`root` or the node user). */
  owner: string;
  /** Owning group; undefined = the owner's primary group. */
  group?: string;
  content: string;
  /** What checks this file statically: shell, systemd unit, launchd plist, json, yaml, or plain text. */
  kind: "shell" | "systemd" | "launchd" | "json" | "yaml" | "text";
  /**
   * A file two roles place (the node's `fleet` command: worker, or claude without a worker): uninstall leaves
   * it while this other role's marker (`<stateDir>/roles/<role>.hash`) is on the node.
   */
  keepWhile?: RoleName;
}

/** A long-running service the role manages. */
export interface BundleService {
  /** systemd unit name (`iceccd.service`), launchd label (`org.icecc.iceccd`) or container name. */
  name: string;
  manager: "systemd" | "launchd" | "docker";
  /** systemd: system unit or a --user unit; launchd: LaunchDaemon (system) or LaunchAgent (user). */
  scope: "system" | "user";
}

/** Where the scripts run on the node. */
export type ScriptTarget =
  /** The node's own shell (Linux, macOS). */
  | "node"
  /** A Windows node's WSL distro, as root (`wsl.exe -d <distro> -u root -- …`). */
  | "wsl"
  /** A Windows node's host side (PowerShell), for Tailscale and WSL settings only. */
  | "windows-host";

/**
 * A secret an install script reads from stdin, one `NAME=value` line each, in this order. `queueTokens` and
 * `peopleTokens` carry each token's SHA-256 (`name:hex` pairs), never a token: the queue node keeps hashes only.
 */
export type SecretName = "tailscaleAuthKey" | "anthropicApiKey" | "claudeOauthToken" | "queueToken" | "queueTokens" | "peopleTokens" | "ntfyToken" | "githubToken" | "githubAppPrivateKey" | "githubWebhookSecret";

/** One role rendered for one node. */
export interface Bundle {
  node: string;
  role: RoleName;
  target: ScriptTarget;
  files: BundleFile[];
  /**
   * Idempotent POSIX sh script (PowerShell for `windows-host`): installs packages, writes `files` only when
   * their content differs, (re)starts services only when something changed, writes the role marker, and
   * prints a last line `fleetkit: <role> changed` or `fleetkit: <role> unchanged`.
   */
  install: string;
  /** Removes the role's services, files and marker; succeeds when already removed. */
  uninstall: string;
  services: BundleService[];
  /** Secrets the install script expects on stdin (as `NAME=value` lines); empty = stdin unused. */
  secrets: SecretName[];
  /**
   * `any`: the install script needs at least one of `secrets` (pass whichever are configured), except those in
   * `requiredSecrets`; absent = all.
   */
  secretsMode?: "any";
  /** With `secretsMode: "any"`: secrets among `secrets` that are required all the same (e.g. the node's queueToken). */
  requiredSecrets?: SecretName[];
  /** sha256 (hex) over target, files (path, mode, owner, kind; their content is in the install script), the scripts, services and secret names. */
  hash: string;
  /** Pinned artifacts the install downloads (absent = none); what `fleet pin-artifacts` pins. */
  downloads?: BundleDownload[];
}

/** Names of fleet.yaml's `artifacts:` entries. */
export type ArtifactName = "agentapi" | "tailscale";

/**
 * One file an install downloads from fleet.yaml's `artifacts.<artifact>`: the URL for the node's platform
 * and the sha256 fleet.yaml pins for it (undefined = not pinned: the install stops and says how to pin it).
 */
export interface BundleDownload {
  artifact: ArtifactName;
  version: string;
  /** fleet.yaml's platform key, e.g. `linux-aarch64`. */
  platform: PlatformKey;
  url: string;
  sha256?: string;
}

/**
 * A role another role waits for: on the same node (`local`, when the node runs it) or wherever the fleet
 * runs it (`fleet`, the one node holding it, e.g. the scheduler or the queue).
 */
export interface RoleDependency {
  role: RoleName;
  where: "local" | "fleet";
}

/**
 * What `fleet status` and `fleet drift` ask a node about one role beyond its marker, files and services
 * (which every role gets from its bundle), and how `fleet status` judges the answer. The probe script
 * (cli/probe.ts) runs every role's lines in one SSH round trip; each role prints at most one record
 * `TAG<TAB>field<TAB>…`, parsed back by the same role.
 */
export interface RoleProbe<Fact = unknown> {
  /** The record's first field; default: the role's name. */
  record?: string;
  /**
   * POSIX sh lines, run as root on the node (inside the WSL distro on windows-wsl nodes: `target` `wsl`),
   * that print the record with `echo "TAG\t…"` (`$T` holds a TAB). [] = nothing to ask on this target.
   * Values from fleet.yaml go through roles/escape.ts `sh`.
   */
  script: (fleet: Fleet, node: FleetNode, target: "node" | "wsl") => string[];
  /** PowerShell lines for a Windows node's host side (`$T` holds a TAB), for roles with a host-side bundle. */
  windowsHostScript?: (fleet: Fleet, node: FleetNode) => string[];
  /** The record's fields after the tag as this role's fact; undefined = malformed (kept as unparsed). */
  parse: (fields: string[]) => Fact | undefined;
  /** Problems in the fact, one phrase each (`tailscale is Stopped`); undefined fact = not reported. */
  judge: (fact: Fact | undefined) => string[];
}

/**
 * One port a role's service listens on and who may reach it, turned into the node firewall and the tailnet
 * policy (roles/reach.ts `ReachRule`). `from` uses the grammar of `services.ntfy.allowFrom`: `fleet` (the
 * fleet's nodes), `tailnet`, `anywhere`, or CIDR blocks; or a list of node names with `fromNodes`.
 */
export interface RoleListen {
  /** Short service name for rule comments and reports, e.g. `node-exporter`. */
  service: string;
  proto: "tcp" | "udp";
  port: number;
  /** Sources by keyword or CIDR (see above). */
  from?: readonly string[];
  /** Fleet nodes allowed by name. */
  fromNodes?: readonly string[];
  /** One line for plans and reports: who, and why. */
  why: string;
}

/**
 * Everything fleetkit knows about one role, in the role's own folder (`roles/<role>/index.ts`, or a user
 * role's folder named by fleet.yaml `roleSources:`); roles/registry.ts holds the built-in ones as a total
 * record and looks user roles up. The Pulumi side (which component a role becomes) is roles/<role>/component.ts
 * where the role has Pulumi children of its own; every other role is its install command only.
 *
 * `Settings` is the type of the role's block under fleet.yaml `services.<role>` (user roles; built-in roles
 * read `fleet.services` directly).
 */
export interface RoleDefinition<Settings = unknown> {
  /** The role's name as fleet.yaml writes it under `roles:` (a user role: its folder's name). */
  name: RoleName;
  /** One line for docs and messages: what the role puts on a node. */
  docs: string;
  /** OS families the role runs on (built-in roles: model/schema.ts `ROLE_SUPPORT`), which the fleet model checks. */
  os: readonly OsName[];
  /**
   * Roles whose component this role's install waits for (explicit `dependsOn`, DESIGN layer 3), in order.
   * A local dependency the node does not run, or a fleet one nobody runs, is skipped.
   */
  after: readonly RoleDependency[];
  /**
   * zod schema of the role's settings under fleet.yaml `services.<role>` (user roles only): validated by
   * the loader with located errors, defaults applied; absent = the role takes no settings.
   */
  settings?: z.ZodType<Settings>;
  /**
   * Renders the role for one node (files, scripts, services, packages, secrets it reads on stdin). Pure:
   * same fleet, same bytes. `settings` is the role's validated `services.<role>` block (undefined without
   * a settings schema). Throws only on a bug (the fleet model is already valid).
   */
  render: (fleet: Fleet, node: FleetNode, settings: Settings) => RoleParts;
  /** What `fleet status` / `fleet drift` ask the node about this role (absent = marker, files and services only). */
  probe?: RoleProbe;
  /** The ports the role's services listen on and who may reach them (absent = none): the node firewall and tailnet policy. */
  listens?: (fleet: Fleet, node: FleetNode, settings: Settings) => RoleListen[];
  /**
   * The Pulumi resources the role's component creates besides its install command, in creation order, with
   * the dependencies the engine is told of (roles/naming.ts names them). Absent = the install command only
   * (always so for user roles). The program tests compare the registrations with the plan.
   */
  children?: (fleet: Fleet, node: FleetNode, options: { tailnetManaged?: boolean }) => PlannedResource[];
}
