/**
 * The role registry: every built-in role's definition (roles/<role>/index.ts), as a total record by name,
 * so a role without a renderer, OS list or dependencies does not compile.
 */
import type { RoleName } from "../model/fleet.js";
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
export const ROLES: Readonly<Record<RoleName, RoleDefinition>> = Object.freeze({
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
