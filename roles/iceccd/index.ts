/** Role `iceccd`: the Icecream compile daemon, pointed at the fleet's scheduler, with the toolchain tarballs it may use. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import { LOCAL_COMMAND_TYPE, installResourceName, roleResourceName, toolchainManifestResourceName, toolchainReceiveResourceName } from "../naming.js";
import { toolchainSources } from "../toolchains/render.js";
import type { RoleDefinition } from "../types.js";
import { holders, ICECCD_PORT } from "../reach.js";
import { renderIceccd } from "./render.js";

/** The `iceccd` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "iceccd",
  docs: "the Icecream compile daemon, pointed at the fleet's scheduler, with the toolchain tarballs it may use",
  os: ROLE_SUPPORT["iceccd"],
  after: [{ role: "tailscale", where: "local" }, { role: "icecc-scheduler", where: "fleet" }],
  render: renderIceccd,
  listens: (fleet) => [{ service: "iceccd", proto: "tcp", port: ICECCD_PORT, fromNodes: holders(fleet, "iceccd"), why: "icecc clients on compiling nodes send jobs here" }],
  // One local command per builder streams its tarballs of one architecture to this node (after both the
  // install here and the builder's manifest).
  children: (fleet, node) => {
    const component = roleResourceName(node.name, "iceccd");
    return toolchainSources(fleet, node).map((source) => ({
      type: LOCAL_COMMAND_TYPE,
      name: toolchainReceiveResourceName(component, source.arch),
      dependsOn: [installResourceName(component), toolchainManifestResourceName(roleResourceName(source.from, "toolchains"))].sort(),
    }));
  },
};
