/**
 * The resolved fleet model: what every other layer (role bundles, Pulumi components, scripts, the worker
 * runtime's config) reads. Built from a validated `fleet.yaml` by `load.ts`; plain data, no I/O.
 */
import type { Artifact, ClaudeSettings, NodeInput, OsName, PersonScope, RoleName, Services, UserRoleSpec } from "./schema.js";
import { ROLE_NAMES } from "./schema.js";

export type { ArchName, BuiltinRoleName, OsName, RoleName, UserRoleSpec } from "./schema.js";

/** How a node's roles are carried out: the service manager and package manager family. */
export type OsFamily = "macos" | "linux" | "windows-wsl";

/** The fleet.yaml fields a node keeps as written (optional ones may stay undefined); documented in model/schema.ts `nodeSchema`. */
type NodeFields = "host" | "bootstrapHost" | "os" | "arch" | "profile" | "budgetUsdPerSession" | "iceccMaxJobs" | "wslDistro";
/** The fleet.yaml fields the loader always resolves (from `defaults`, or false / {} when unset). */
type ResolvedNodeFields = "user" | "sshPort" | "docker" | "builder" | "tags";

/**
 * One node with every default applied and its profile expanded: the node's fields as fleet.yaml declares
 * them (model/schema.ts `nodeSchema`, so each is declared once), with `user`, `sshPort`, `docker`, `builder`
 * and `tags` always set, plus what the loader adds.
 */
export interface FleetNode extends Pick<NodeInput, NodeFields>, Required<Pick<NodeInput, ResolvedNodeFields>> {
  /** Node name (its key under `nodes:`, a hostname label), unique in the fleet; also its Tailscale hostname. */
  name: string;
  /** Private key path on the machine running `pulumi up` (`defaults.sshKeyPath`, `~` not yet expanded). */
  sshKeyPath: string;
  /**
   * Profile roles ∪ node roles, in {@link ROLE_NAMES} order then the fleet's user roles in `roleSources`
   * order (the order components are created).
   */
  roles: RoleName[];
  /** Seconds per SSH dial before giving up (`defaults.perDialTimeoutSeconds`, @pulumi/command perDialTimeout). */
  perDialTimeoutSeconds: number;
  /** Failed dials before giving up (`defaults.dialErrorLimit`, @pulumi/command dialErrorLimit). */
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
  /**
   * Role settings under `services:`: the built-in roles' blocks, plus one per user role that declares
   * settings (validated by that role's schema, typed by it: roles/types.ts `RoleDefinition.settings`).
   */
  services: Services & Record<string, unknown>;
  artifacts: { agentapi: Artifact; tailscale: Artifact };
  profiles: Record<string, RoleName[]>;
  /** People with a queue token of their own, by name (fleet.yaml `people:`, sorted by name). */
  people: Record<string, PersonScope>;
  /** Nodes in file order. */
  nodes: FleetNode[];
  /**
   * The user roles fleet.yaml's `roleSources:` brought, in their order; absent when it names none (most
   * fleets). Their definitions are looked up by roles/registry.ts `roleDefinition`.
   */
  userRoles?: UserRoleSpec[];
}

/** The OS family that decides package manager, service manager and paths for `os`. */
export function osFamily(os: OsName): OsFamily {
  if (os === "macos") return "macos";
  if (os === "windows-wsl") return "windows-wsl";
  return "linux";
}

/**
 * Sorts and de-duplicates roles into the canonical creation order: built-in roles in {@link ROLE_NAMES}
 * order, then `userRoles` (names) in their order. A name in neither is dropped (the loader reports it).
 */
export function canonicalRoles(roles: Iterable<RoleName>, userRoles: readonly string[] = []): RoleName[] {
  const set = new Set(roles);
  return [...ROLE_NAMES, ...userRoles].filter((r) => set.has(r));
}

/** The node that runs `role`, or undefined (for single-instance roles: icecc-scheduler, ntfy, queue). */
export function nodeWithRole(fleet: Fleet, role: RoleName): FleetNode | undefined {
  return fleet.nodes.find((n) => n.roles.includes(role));
}

/**
 * The queue's base URL as every node reaches it: `http://<queue node host>:<services.queue.port>`.
 * @throws Error when no node runs the queue (callers check, or the model guarantees one: workers need it).
 */
export function queueUrl(fleet: Fleet): string {
  const q = nodeWithRole(fleet, "queue");
  if (!q) throw new Error("no node runs the queue: the fleet model should have rejected workers without one");
  return `http://${q.host}:${fleet.services.queue.port}`;
}

/** The queue's base URL ({@link queueUrl}) when some node runs the queue, else undefined: what `fleet status` and `fleet task --fleet` ask. */
export function fleetQueueUrl(fleet: Fleet): string | undefined {
  return nodeWithRole(fleet, "queue") ? queueUrl(fleet) : undefined;
}
