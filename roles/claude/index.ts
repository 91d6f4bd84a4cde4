/** Role `claude`: Claude Code at the pinned version for the node user, its settings, the node's budget cap and API key (0600). Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";
import { renderClaude } from "./render.js";

/** The `claude` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "claude",
  docs: "Claude Code at the pinned version for the node user, its settings, the node's budget cap and API key (0600)",
  os: ROLE_SUPPORT["claude"],
  after: [{ role: "tailscale", where: "local" }],
  render: renderClaude,
};
