/** Role `toolchains`: builds icecc toolchain tarballs of the node's compilers for the fleet's other nodes (icecc-create-env). Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import { COMMAND_TYPE, installResourceName, roleResourceName, toolchainManifestResourceName } from "../naming.js";
import type { RoleDefinition } from "../types.js";
import { renderToolchains } from "./render.js";

/** The `toolchains` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "toolchains",
  docs: "builds icecc toolchain tarballs of the node's compilers for the fleet's other nodes (icecc-create-env)",
  os: ROLE_SUPPORT["toolchains"],
  after: [{ role: "tailscale", where: "local" }, { role: "icecc-scheduler", where: "fleet" }],
  render: renderToolchains,
  // After the install built the tarballs, a command reads the builder's manifest (what iceccd nodes fetch).
  children: (_fleet, node) => {
    const component = roleResourceName(node.name, "toolchains");
    return [{ type: COMMAND_TYPE, name: toolchainManifestResourceName(component), dependsOn: [installResourceName(component)] }];
  },
};
