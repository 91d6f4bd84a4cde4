/**
 * Role `icecc-scheduler`: the Icecream scheduler (TCP 8765, UDP 8765 discovery, TCP 8766 text interface) on
 * one always-on Linux node, run as a systemd unit that shadows the package's own. Packages, the icecc user
 * and the interface it binds are shared with role iceccd (roles/iceccd/render.ts).
 */
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { renderTemplate, sh, type RoleParts } from "../bundle.js";
import { ENSURE_ICECC_USER, ICECC_PACKAGES, iceccBinary, iceccInterface } from "../iceccd/render.js";
import { platformFor } from "../platform.js";

/** Renders the scheduler: package + `icecc-scheduler.service`. */
export function renderIceccScheduler(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  const unit = "/etc/systemd/system/icecc-scheduler.service";
  return {
    packages: p.packageList(ICECC_PACKAGES),
    preInstall: `${p.installPackages(ICECC_PACKAGES)}\n${ENSURE_ICECC_USER}`,
    files: [
      {
        path: unit,
        mode: 0o644,
        owner: "root",
        kind: "systemd",
        content: renderTemplate("icecc/icecc-scheduler.service", { node: node.name, scheduler: iceccBinary(node, "icecc-scheduler"), interface: iceccInterface(fleet, node) }),
      },
    ],
    postInstall: "fk_systemd_unit icecc-scheduler.service",
    preUninstall: sh`fk_systemd_remove icecc-scheduler.service ${unit}`,
    services: [{ name: "icecc-scheduler.service", manager: "systemd", scope: "system" }],
  };
}
