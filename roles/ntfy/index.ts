/** Role `ntfy`: the fleet's self-hosted ntfy server, a Docker container publishing task notifications. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";
import { renderNtfy } from "./render.js";

/** The `ntfy` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "ntfy",
  docs: "the fleet's self-hosted ntfy server, a Docker container publishing task notifications",
  os: ROLE_SUPPORT["ntfy"],
  after: [{ role: "tailscale", where: "local" }],
  render: renderNtfy,
};
