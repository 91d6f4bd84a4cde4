/** Role `toolchains`: builds icecc toolchain tarballs of the node's compilers for the fleet's other nodes (icecc-create-env). Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";
import { renderToolchains } from "./render.js";

/** The `toolchains` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "toolchains",
  docs: "builds icecc toolchain tarballs of the node's compilers for the fleet's other nodes (icecc-create-env)",
  os: ROLE_SUPPORT["toolchains"],
  after: [{ role: "tailscale", where: "local" }, { role: "icecc-scheduler", where: "fleet" }],
  render: renderToolchains,
};
