/**
 * The resolved fleet model: what every other layer (role bundles, Pulumi components, scripts, the worker
 * runtime's config) reads. Built from a validated `fleet.yaml` by `load.ts`; plain data, no I/O.
 */
import type { Artifact, ArchName, ClaudeSettings, OsName, PersonScope, RoleName, Services } from "./schema.js";
import { ROLE_NAMES } from "./schema.js";

export type { ArchName, OsName, RoleName } from "./schema.js";

/** How a node's roles are carried out: the service manager and package manager family. */
export type OsFamily = "macos" | "linux" | "windows-wsl";

/** One node with every default applied and its profile expanded. */
export interface FleetNode {
  /** Node name (a hostname label), unique in the fleet; also its Tailscale hostname. */
  name: string;
  /** SSH address and the address other nodes use for this node's services. */
  host: string;
  /** Address for the first `pulumi up`, before Tailscale is up; undefined = use `host`. */
  bootstrapHost?: string;
  os: OsName;
  arch: ArchName;
  /** SSH user (and the user agents and workers run as). */
  user: string;
  sshPort: number;
  /** Private key path on the machine running `pulumi up` (`~` not yet expanded). */
  sshKeyPath: string;
  /** The profile named in fleet.yaml, if any. */
  profile?: string;
  /** Profile roles ∪ node roles, in {@link ROLE_NAMES} order (the order components are created). */
  roles: RoleName[];
  /** Claude budget cap in USD per session (per task and per day for workers); undefined = no Claude spend. */
  budgetUsdPerSession?: number;
  /** iceccd max parallel jobs; undefined = iceccd's default (CPU count). */
  iceccMaxJobs?: number;
  /** WSL distribution name; set exactly when `os` is `windows-wsl`. */
  wslDistro?: string;
  docker: boolean;
  /** Builds icecc toolchain tarballs (true for the node with the `toolchains` role). */
  builder: boolean;
  tags: Record<string, string>;
  /** Seconds per SSH dial before giving up (@pulumi/command perDialTimeout). */
  perDialTimeoutSeconds: number;
  /** Failed dials before giving up (@pulumi/command dialErrorLimit). */
  dialErrorLimit: number;
}

/** A whole validated fleet. */
export interface Fleet {
  /** Fleet name from fleet.yaml. */
  name: string;
  /** Path of the file it was read from (as given), used in messages. */
  file: string;
  tailnet?: string;
  /** `defaults.claude`: set whenever some node runs role claude (model/rules.ts), else possibly absent. */
  claude?: ClaudeSettings;
  services: Services;
  artifacts: { agentapi: Artifact; tailscale: Artifact };
  profiles: Record<string, RoleName[]>;
  /** People with a queue token of their own, by name (fleet.yaml `people:`, sorted by name). */
  people: Record<string, PersonScope>;
  /** Nodes in file order. */
  nodes: FleetNode[];
}

/** The OS family that decides package manager, service manager and paths for `os`. */
export function osFamily(os: OsName): OsFamily {
  if (os === "macos") return "macos";
  if (os === "windows-wsl") return "windows-wsl";
  return "linux";
}

/** Sorts and de-duplicates roles into the canonical creation order. */
export function canonicalRoles(roles: Iterable<RoleName>): RoleName[] {
  const set = new Set(roles);
  return ROLE_NAMES.filter((r) => set.has(r));
}

/** The node that runs `role`, or undefined (for single-instance roles: icecc-scheduler, ntfy, queue). */
export function nodeWithRole(fleet: Fleet, role: RoleName): FleetNode | undefined {
  return fleet.nodes.find((n) => n.roles.includes(role));
}
