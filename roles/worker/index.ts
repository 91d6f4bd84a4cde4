/** Role `worker`: the worker daemon: claims tasks from the queue and runs them through Claude as the slot's own user. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";
import { renderWorker } from "./render.js";

/** The `worker` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "worker",
  docs: "the worker daemon: claims tasks from the queue and runs them through Claude as the slot's own user",
  os: ROLE_SUPPORT["worker"],
  after: [{ role: "tailscale", where: "local" }, { role: "claude", where: "local" }, { role: "queue", where: "fleet" }],
  render: renderWorker,
};
