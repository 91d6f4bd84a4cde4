/** Role `queue`: the fleet's task queue server (HTTP API, SQLite) and its tokens file. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";

import { renderQueue } from "./render.js";

/** The `queue` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "queue",
  docs: "the fleet's task queue server (HTTP API, SQLite) and its tokens file",
  os: ROLE_SUPPORT["queue"],
  after: [{ role: "tailscale", where: "local" }],
  render: renderQueue,
  listens: (fleet) => [{ service: "queue", proto: "tcp", port: fleet.services.queue.port, from: ["fleet"], why: "every fleet node submits and claims tasks (each with its own token)" }],
};
