/**
 * The role registry: which renderer makes each role's bundle, and the entry points every consumer uses
 * (`renderNodeBundles` for one node, `renderFleetBundles` for all). Pure: same fleet, same bytes.
 */
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import type { Bundle } from "./types.js";
import { assembleBundle, type RoleParts } from "./bundle.js";
import { renderIceccd, renderIceccScheduler } from "./icecc.js";
import { renderTailscale } from "./tailscale.js";
import { renderClaude } from "./claude.js";
import { renderAgentapi } from "./agentapi.js";
import { renderNtfy } from "./ntfy.js";
import { renderQueue } from "./queue.js";
import { renderWorker } from "./worker.js";
import { renderToolchains } from "./toolchains.js";
import { withFirewall } from "./firewall.js";

type Renderer = (fleet: Fleet, node: FleetNode) => RoleParts;

/** Renderer per role. A role missing here cannot be planned (the plan says so). */
export const RENDERERS: Partial<Record<RoleName, Renderer>> = {
  "icecc-scheduler": renderIceccScheduler,
  iceccd: renderIceccd,
  tailscale: renderTailscale,
  claude: renderClaude,
  agentapi: renderAgentapi,
  ntfy: renderNtfy,
  queue: renderQueue,
  worker: renderWorker,
  toolchains: renderToolchains,
};

/**
 * Renders one role for one node, with the node firewall rules of the ports it listens on (roles/firewall.ts).
 * @throws Error when no renderer exists for the role (a fleetkit bug).
 */
export function renderBundle(fleet: Fleet, node: FleetNode, role: RoleName): Bundle {
  const render = RENDERERS[role];
  if (!render) throw new Error(`no renderer for role ${role}`);
  return assembleBundle(fleet, node, role, withFirewall(fleet, node, role, render(fleet, node)));
}

/** Every bundle of one node, in the node's canonical role order. */
export function renderNodeBundles(fleet: Fleet, node: FleetNode): Bundle[] {
  return node.roles.map((role) => renderBundle(fleet, node, role));
}

/** Every node's bundles, keyed by node name, in fleet order. */
export function renderFleetBundles(fleet: Fleet): Map<string, Bundle[]> {
  return new Map(fleet.nodes.map((n) => [n.name, renderNodeBundles(fleet, n)]));
}
