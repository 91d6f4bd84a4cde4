/**
 * Roles `icecc-scheduler` and `iceccd`: the Icecream compile cluster. One scheduler (TCP 8765) on an
 * always-on Linux node; a daemon (TCP 10245) on every compiling node, pointed at the scheduler's host
 * explicitly because scheduler discovery is UDP broadcast, which Tailscale does not carry (FIELD-NOTES).
 * Daemons run as root so they can install compiler environments; jobs run as the `icecc` user.
 *
 * Packages: Debian/Raspberry Pi OS/WSL `icecc` (binaries in /usr/sbin), Arch `icecream` (/usr/bin),
 * Homebrew `icecream` (sbin under the brew prefix). Services: systemd units that shadow the package's own
 * (same name under /etc/systemd/system), a LaunchDaemon `org.icecc.iceccd` on macOS.
 */
import type { Fleet, FleetNode } from "../stacks/model/fleet.js";
import { nodeWithRole } from "../stacks/model/fleet.js";
import { renderTemplate, sh, type RoleParts } from "./bundle.js";
import { launchdPlist } from "./launchd.js";
import { platformFor } from "./platform.js";

const PACKAGES = { apt: ["icecc"], pacman: ["icecream"], brew: ["icecream"] };

/** Absolute path of an icecc program (`iceccd`, `icecc-scheduler`) on `node`'s platform. */
export function iceccBinary(node: FleetNode, program: "iceccd" | "icecc-scheduler" | "icecc-create-env"): string {
  const p = platformFor(node);
  if (p.family === "macos") return `${p.brew!.replace(/\/bin\/brew$/, "")}/${program === "icecc-create-env" ? "bin" : "sbin"}/${program}`;
  if (p.family === "arch") return `/usr/bin/${program}`;
  return program === "icecc-create-env" ? "/usr/bin/icecc-create-env" : `/usr/sbin/${program}`;
}

const ENSURE_ICECC_USER = [
  "if ! id icecc >/dev/null 2>&1; then",
  "  useradd --system --home-dir /var/cache/icecc --shell /usr/sbin/nologin icecc",
  "  FK_CHANGED=1",
  "fi",
  "mkdir -p /var/cache/icecc",
].join("\n");

/** Renders the scheduler: package + `icecc-scheduler.service`. */
export function renderIceccScheduler(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  const unit = "/etc/systemd/system/icecc-scheduler.service";
  return {
    packages: p.packageList(PACKAGES),
    preInstall: `${p.installPackages(PACKAGES)}\n${ENSURE_ICECC_USER}`,
    files: [
      {
        path: unit,
        mode: 0o644,
        owner: "root",
        kind: "systemd",
        content: renderTemplate("icecc/icecc-scheduler.service", { node: node.name, scheduler: iceccBinary(node, "icecc-scheduler") }),
      },
    ],
    postInstall: "fk_systemd_unit icecc-scheduler.service",
    preUninstall: sh`fk_systemd_remove icecc-scheduler.service ${unit}`,
    services: [{ name: "icecc-scheduler.service", manager: "systemd", scope: "system" }],
  };
}

/** Renders a compile daemon pointed at the fleet's scheduler. */
export function renderIceccd(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  const scheduler = nodeWithRole(fleet, "icecc-scheduler");
  if (!scheduler) throw new Error("iceccd without an icecc-scheduler node: the fleet model should have rejected this");
  // The scheduler node's daemon talks to its own scheduler locally.
  const schedulerHost = scheduler.name === node.name ? "127.0.0.1" : scheduler.host;
  const view = { node: node.name, schedulerHost, maxJobs: node.iceccMaxJobs, iceccd: iceccBinary(node, "iceccd") };
  if (p.family === "macos") {
    const plist = "/Library/LaunchDaemons/org.icecc.iceccd.plist";
    return {
      packages: p.packageList(PACKAGES),
      preInstall: p.installPackages(PACKAGES),
      files: [
        {
          path: plist,
          mode: 0o644,
          owner: "root",
          kind: "launchd",
          content: launchdPlist([`Rendered by fleetkit for node ${node.name}: Icecream compile daemon (root LaunchDaemon).`], {
            Label: "org.icecc.iceccd",
            ProgramArguments: [view.iceccd, "--scheduler-host", schedulerHost, "-N", node.name, ...(node.iceccMaxJobs ? ["--max-processes", String(node.iceccMaxJobs)] : [])],
            RunAtLoad: true,
            KeepAlive: true,
            StandardErrorPath: "/var/log/iceccd.log",
          }),
        },
        {
          // Apple clang cannot preprocess remotely (FIELD-NOTES); compiling shells source this file.
          path: `${p.configDir}/icecc.env`,
          mode: 0o644,
          owner: "root",
          kind: "shell",
          content: "# Rendered by fleetkit: source from shells that compile with icecc.\nexport ICECC_CLANG_REMOTE_CPP=0\n",
        },
      ],
      postInstall: sh`fk_launchd_daemon org.icecc.iceccd ${plist} system`,
      preUninstall: sh`fk_launchd_remove org.icecc.iceccd ${plist} system`,
      services: [{ name: "org.icecc.iceccd", manager: "launchd", scope: "system" }],
    };
  }
  const unit = "/etc/systemd/system/iceccd.service";
  return {
    packages: p.packageList(PACKAGES),
    preInstall: `${p.installPackages(PACKAGES)}\n${ENSURE_ICECC_USER}`,
    files: [{ path: unit, mode: 0o644, owner: "root", kind: "systemd", content: renderTemplate("icecc/iceccd.service", view) }],
    postInstall: "fk_systemd_unit iceccd.service",
    preUninstall: sh`fk_systemd_remove iceccd.service ${unit}`,
    services: [{ name: "iceccd.service", manager: "systemd", scope: "system" }],
  };
}
