/** Role `tailscale`: Tailscale, pinned and sha256-checked, joined to the fleet's tailnet with an auth key read on stdin. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";
import { renderTailscale } from "./render.js";

/** The `tailscale` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "tailscale",
  docs: "Tailscale, pinned and sha256-checked, joined to the fleet's tailnet with an auth key read on stdin",
  os: ROLE_SUPPORT["tailscale"],
  after: [],
  render: renderTailscale,
};
