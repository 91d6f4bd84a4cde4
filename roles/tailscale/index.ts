/** Role `tailscale`: Tailscale, pinned and sha256-checked, joined to the fleet's tailnet with an auth key read on stdin. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import { DEVICE_TAGS_TYPE, TAILNET_POLICY_NAME, deviceTagsResourceName, installResourceName, roleResourceName } from "../naming.js";
import type { RoleDefinition } from "../types.js";
import { probe } from "./probe.js";
import { renderTailscale } from "./render.js";

/** The `tailscale` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "tailscale",
  docs: "Tailscale, pinned and sha256-checked, joined to the fleet's tailnet with an auth key read on stdin",
  os: ROLE_SUPPORT["tailscale"],
  after: [],
  render: renderTailscale,
  probe: probe as RoleDefinition["probe"],
  // In a managed tailnet the component tags the node's device once it has joined (after the policy).
  children: (_fleet, node, options) => {
    if (!options.tailnetManaged) return [];
    const component = roleResourceName(node.name, "tailscale");
    return [{ type: DEVICE_TAGS_TYPE, name: deviceTagsResourceName(component), dependsOn: [installResourceName(component), TAILNET_POLICY_NAME] }];
  },
};
