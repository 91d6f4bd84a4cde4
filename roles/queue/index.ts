/** Role `queue`: the fleet's task queue server (HTTP API, SQLite) and its tokens file. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";
import { probe } from "./probe.js";

import { renderQueue } from "./render.js";

/** The `queue` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "queue",
  docs: "the fleet's task queue server (HTTP API, SQLite) and its tokens file",
  os: ROLE_SUPPORT["queue"],
  after: [{ role: "tailscale", where: "local" }],
  render: renderQueue,
  probe: probe as RoleDefinition["probe"],
  // Every fleet node, plus whoever services.queue.allowFrom names (people reaching the dashboard).
  listens: (fleet) => {
    const extra = fleet.services.queue.allowFrom;
    const why = "every fleet node submits and claims tasks (each with its own token)";
    return [{ service: "queue", proto: "tcp", port: fleet.services.queue.port, from: ["fleet", ...extra], why: extra.length ? `${why}; services.queue.allowFrom: ${extra.join(", ")}` : why }];
  },
};
