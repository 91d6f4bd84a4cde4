/**
 * Rendering roles: the entry points every consumer uses
 * (`renderNodeBundles` for one node, `renderFleetBundles` for all). Pure: same fleet, same bytes.
 */
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import type { Bundle } from "./types.js";
import { assembleBundle } from "./bundle.js";
import { withFirewall } from "./firewall.js";
import { roleDefinition, roleSettings } from "./registry.js";

export { ROLES, roleDefinition } from "./registry.js";

/**
 * Renders one role for one node, with the node firewall rules of the ports it listens on (roles/firewall.ts).
 * The renderer is the role definition's (roles/registry.ts), given the role's settings.
 */
export function renderBundle(fleet: Fleet, node: FleetNode, role: RoleName): Bundle {
  return assembleBundle(fleet, node, role, withFirewall(fleet, node, role, roleDefinition(fleet, role).render(fleet, node, roleSettings(fleet, role))));
}

/** Every bundle of one node, in the node's canonical role order. */
export function renderNodeBundles(fleet: Fleet, node: FleetNode): Bundle[] {
  return node.roles.map((role) => renderBundle(fleet, node, role));
}

/** Every node's bundles, keyed by node name, in fleet order. */
export function renderFleetBundles(fleet: Fleet): Map<string, Bundle[]> {
  return new Map(fleet.nodes.map((n) => [n.name, renderNodeBundles(fleet, n)]));
}
