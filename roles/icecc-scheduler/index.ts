/** Role `icecc-scheduler`: the Icecream scheduler (icecc-scheduler.service) every iceccd reports to. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";
import { renderIceccScheduler } from "./render.js";

/** The `icecc-scheduler` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "icecc-scheduler",
  docs: "the Icecream scheduler (icecc-scheduler.service) every iceccd reports to",
  os: ROLE_SUPPORT["icecc-scheduler"],
  after: [{ role: "tailscale", where: "local" }],
  render: renderIceccScheduler,
};
