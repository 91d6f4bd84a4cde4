/** Role `iceccd`: the Icecream compile daemon, pointed at the fleet's scheduler, with the toolchain tarballs it may use. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";
import { renderIceccd } from "./render.js";

/** The `iceccd` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "iceccd",
  docs: "the Icecream compile daemon, pointed at the fleet's scheduler, with the toolchain tarballs it may use",
  os: ROLE_SUPPORT["iceccd"],
  after: [{ role: "tailscale", where: "local" }, { role: "icecc-scheduler", where: "fleet" }],
  render: renderIceccd,
};
