/** Role `icecc-scheduler`: the Icecream scheduler (icecc-scheduler.service) every iceccd reports to. Renderer in ./render.ts. */
import { ROLE_SUPPORT } from "../../model/schema.js";
import type { RoleDefinition } from "../types.js";
import { holders, ICECC_SCHEDULER_PORT, ICECC_SCHEDULER_TEXT_PORT } from "../reach.js";
import { renderIceccScheduler } from "./render.js";

/** The `icecc-scheduler` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition = {
  name: "icecc-scheduler",
  docs: "the Icecream scheduler (icecc-scheduler.service) every iceccd reports to",
  os: ROLE_SUPPORT["icecc-scheduler"],
  after: [{ role: "tailscale", where: "local" }],
  render: renderIceccScheduler,
  // Daemons and monitors on the compiling nodes (TCP, and UDP for broadcast discovery); the text interface stays on this node.
  listens: (fleet) => {
    const compilers = holders(fleet, "iceccd");
    return [
      { service: "icecc-scheduler", proto: "tcp", port: ICECC_SCHEDULER_PORT, fromNodes: compilers, why: "icecc daemons register and ask for compile hosts" },
      { service: "icecc-scheduler-discovery", proto: "udp", port: ICECC_SCHEDULER_PORT, fromNodes: compilers, why: "icecc daemons' scheduler discovery" },
      { service: "icecc-scheduler-text", proto: "tcp", port: ICECC_SCHEDULER_TEXT_PORT, fromNodes: [], why: "the scheduler's text interface: this node only" },
    ];
  },
};
