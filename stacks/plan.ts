/**
 * The plan: which Pulumi resources each node's roles become, with their bundle hashes and dependencies.
 * Pure; `fleet plan` prints it and the program tests check the program registers exactly this.
 */
import type { Fleet, FleetNode, RoleName } from "./model/fleet.js";
import { nodeWithRole } from "./model/fleet.js";
import { renderNodeBundles } from "../roles/index.js";

/** One resource the program registers: Pulumi type token, resource name, names it depends on. */
export interface PlannedResource {
  type: string;
  name: string;
  dependsOn: string[];
}

/** The whole plan; the JSON shape of `fleet plan --json`. */
export interface FleetPlan {
  fleet: string;
  nodes: {
    name: string;
    os: string;
    arch: string;
    host: string;
    roles: { role: RoleName; bundleHash: string; resources: PlannedResource[] }[];
  }[];
}

/** `fleetkit:role:IceccScheduler` for `icecc-scheduler`. */
export function roleTypeToken(role: RoleName): string {
  return `fleetkit:role:${role.split("-").map((w) => w[0].toUpperCase() + w.slice(1)).join("")}`;
}

/** Name of the role component of `role` on `node` (child resources are prefixed with it). */
export function roleResourceName(node: string, role: RoleName): string {
  return `${node}-${role}`;
}

/** The role components a role on `node` must wait for (explicit `dependsOn`, DESIGN layer 3). */
export function roleDependencies(fleet: Fleet, node: FleetNode, role: RoleName): string[] {
  const deps: string[] = [];
  const local = (r: RoleName) => node.roles.includes(r) && deps.push(roleResourceName(node.name, r));
  const remote = (r: RoleName) => {
    const holder = nodeWithRole(fleet, r);
    if (holder) deps.push(roleResourceName(holder.name, r));
  };
  if (role !== "tailscale") local("tailscale");
  if (role === "iceccd" || role === "toolchains") remote("icecc-scheduler");
  if (role === "agentapi") local("claude");
  if (role === "worker") {
    local("claude");
    remote("queue");
  }
  return [...new Set(deps)].filter((d) => d !== roleResourceName(node.name, role));
}

/** The plan of a whole fleet, nodes in file order, roles in canonical order. */
export function planFleet(fleet: Fleet): FleetPlan {
  return {
    fleet: fleet.name,
    nodes: fleet.nodes.map((node) => ({
      name: node.name,
      os: node.os,
      arch: node.arch,
      host: node.host,
      roles: renderNodeBundles(fleet, node).map((bundle) => {
        const name = roleResourceName(node.name, bundle.role);
        return {
          role: bundle.role,
          bundleHash: bundle.hash,
          resources: [
            { type: roleTypeToken(bundle.role), name, dependsOn: roleDependencies(fleet, node, bundle.role) },
            { type: "command:remote:Command", name: `${name}-install`, dependsOn: [] },
          ],
        };
      }),
    })),
  };
}
