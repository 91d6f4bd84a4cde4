/** Role `ntfy`: the fleet's self-hosted ntfy server, a Docker container publishing task notifications. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import { DOCKER_CONTAINER_TYPE, DOCKER_IMAGE_TYPE, DOCKER_PROVIDER_TYPE, installResourceName, ntfyResourceNames, roleResourceName } from "../naming.js";
import type { RoleDefinition } from "../types.js";

import { renderNtfy } from "./render.js";

/** The `ntfy` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "ntfy",
  docs: "the fleet's self-hosted ntfy server, a Docker container publishing task notifications",
  os: ROLE_SUPPORT["ntfy"],
  after: [{ role: "tailscale", where: "local" }],
  render: renderNtfy,
  listens: (fleet) => {
    const from = fleet.services.ntfy.allowFrom;
    return [{ service: "ntfy", proto: "tcp", port: fleet.services.ntfy.port, from, why: `services.ntfy.allowFrom: ${from.join(", ")}` }];
  },
  // The container through a Docker provider on the node (ssh://), after the install wrote its config.
  children: (_fleet, node) => {
    const component = roleResourceName(node.name, "ntfy");
    const install = installResourceName(component);
    const n = ntfyResourceNames(component);
    return [
      { type: DOCKER_PROVIDER_TYPE, name: n.provider, dependsOn: [install] },
      { type: DOCKER_IMAGE_TYPE, name: n.image, dependsOn: [install] },
      { type: DOCKER_CONTAINER_TYPE, name: n.container, dependsOn: [n.image, install] },
    ];
  },
};
