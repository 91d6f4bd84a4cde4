/** Role `agentapi`: AgentAPI (HTTP :3284) driving the node's Claude Code headless, reachable only from the queue node. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";
import { holders } from "../reach.js";
import { probe } from "./probe.js";
import { renderAgentapi } from "./render.js";

/** The `agentapi` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "agentapi",
  docs: "AgentAPI (HTTP :3284) driving the node's Claude Code headless, reachable only from the queue node",
  os: ROLE_SUPPORT["agentapi"],
  after: [{ role: "tailscale", where: "local" }, { role: "claude", where: "local" }],
  render: renderAgentapi,
  listens: (fleet) => [
    { service: "agentapi", proto: "tcp", port: fleet.services.agentapi.port, fromNodes: holders(fleet, "queue"), why: "AgentAPI has no authentication: only the queue node (the dashboard's agent proxy) drives it" },
  ],
  probe: probe as RoleDefinition["probe"],
};
