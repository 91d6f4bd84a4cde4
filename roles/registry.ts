/**
 * The role registry: every built-in role's definition (roles/<role>/index.ts), as a total record by name,
 * so a role without a renderer, OS list or dependencies does not compile; and the user roles a fleet's
 * `roleSources:` brought (roles/sources.ts registers them), looked up through the fleet that names them.
 */
import type { BuiltinRoleName, Fleet, RoleName } from "../model/fleet.js";
import type { RoleDefinition } from "./types.js";
import { definition as tailscale } from "./tailscale/index.js";
import { definition as claude } from "./claude/index.js";
import { definition as iceccScheduler } from "./icecc-scheduler/index.js";
import { definition as iceccd } from "./iceccd/index.js";
import { definition as toolchains } from "./toolchains/index.js";
import { definition as agentapi } from "./agentapi/index.js";
import { definition as ntfy } from "./ntfy/index.js";
import { definition as queue } from "./queue/index.js";
import { definition as worker } from "./worker/index.js";

/** Definition per role, in model/schema.ts `ROLE_NAMES` order. */
export const ROLES: Readonly<Record<BuiltinRoleName, RoleDefinition>> = Object.freeze({
  tailscale,
  claude,
  "icecc-scheduler": iceccScheduler,
  iceccd,
  toolchains,
  agentapi,
  ntfy,
  queue,
  worker,
});

/** User role definitions loaded so far, by the absolute path of their folder (model `UserRoleSpec.source`). */
const USER_ROLES = new Map<string, RoleDefinition>();

/** Records a user role's definition loaded from `source` (roles/sources.ts, after checking its contract). */
export function registerUserRole(source: string, definition: RoleDefinition): void {
  USER_ROLES.set(source, definition);
}

/** Whether `role` is a built-in role. */
export function isBuiltinRole(role: RoleName): role is BuiltinRoleName {
  return Object.hasOwn(ROLES, role);
}

/**
 * The definition of `role` in `fleet`: the built-in one, or the user role the fleet's `roleSources:` brought.
 * @throws Error when the fleet has no such role (a bug: the loader checked every role name).
 */
export function roleDefinition(fleet: Fleet, role: RoleName): RoleDefinition {
  if (isBuiltinRole(role)) return ROLES[role];
  const spec = fleet.userRoles?.find((r) => r.name === role);
  const def = spec && USER_ROLES.get(spec.source);
  if (!def) throw new Error(`role ${role} is neither built in nor loaded from the fleet's roleSources`);
  return def;
}

/** The validated `services.<role>` block of a user role's settings (undefined for built-in roles and roles without settings). */
export function roleSettings(fleet: Fleet, role: RoleName): unknown {
  return isBuiltinRole(role) ? undefined : fleet.services[role];
}
