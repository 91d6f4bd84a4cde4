/**
 * Role `iceccd` (and what role `icecc-scheduler`, roles/icecc-scheduler/render.ts, shares with it): the Icecream compile cluster. One scheduler (TCP 8765) on an
 * always-on Linux node; a daemon (TCP 10245) on every compiling node, pointed at the scheduler's host
 * explicitly because scheduler discovery is UDP broadcast, which Tailscale does not carry (FIELD-NOTES).
 * Daemons run as root so they can install compiler environments; jobs run as the `icecc` user.
 *
 * Packages: Debian/Raspberry Pi OS/WSL `icecc` (binaries in /usr/sbin), Arch `icecream` (/usr/bin),
 * Homebrew `icecream` (sbin under the brew prefix). Services: systemd units that shadow the package's own
 * (same name under /etc/systemd/system), a LaunchDaemon `org.icecc.iceccd` on macOS.
 *
 * Who can connect (upstream: "never use icecream in untrusted environments"; both run as root): the node
 * firewall of each role admits only the compiling nodes (roles/reach.ts, roles/firewall.ts), and on Linux
 * nodes reached over the tailnet both bind the Tailscale interface ({@link iceccInterface}). Local `icecc`
 * clients reach their daemon through its unix socket (/var/run/icecc/iceccd.socket) or loopback, which a bound
 * daemon keeps listening on (icecream daemon/main.cpp `setup_listen_fds`).
 */
import { isIP } from "node:net";
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { nodeWithRole } from "../../model/fleet.js";
import { renderTemplate, sh, type RoleParts } from "../bundle.js";
import { launchdPlist } from "../launchd.js";
import { platformFor } from "../platform.js";
import { reachedOverTailnet } from "../reach.js";
import { toolchainReceiverFiles } from "../toolchains/render.js";

/** The icecc packages per package manager (both icecc roles install them; the last role to leave removes them). */
export const ICECC_PACKAGES = { apt: ["icecc"], pacman: ["icecream"], brew: ["icecream"] };

/** Absolute path of an icecc program (`iceccd`, `icecc-scheduler`) on `node`'s platform. */
export function iceccBinary(node: FleetNode, program: "iceccd" | "icecc-scheduler" | "icecc-create-env"): string {
  const p = platformFor(node);
  if (p.family === "macos") return `${p.brew!.replace(/\/bin\/brew$/, "")}/${program === "icecc-create-env" ? "bin" : "sbin"}/${program}`;
  if (p.family === "arch") return `/usr/bin/${program}`;
  return program === "icecc-create-env" ? "/usr/bin/icecc-create-env" : `/usr/sbin/${program}`;
}

/** Creates the `icecc` system user jobs run as, and its cache directory (both icecc roles). */
export const ENSURE_ICECC_USER = [
  "if ! id icecc >/dev/null 2>&1; then",
  "  useradd --system --home-dir /var/cache/icecc --shell /usr/sbin/nologin icecc",
  "  FK_CHANGED=1",
  "fi",
  "mkdir -p /var/cache/icecc",
].join("\n");

/** The Tailscale interface on Linux: tailscaled's default `--tun` (tailscale.com/kb/1080/cli, "tailscaled"). */
export const TAILSCALE_INTERFACE = "tailscale0";

/**
 * The interface iceccd or icecc-scheduler on `node` listens on (`-i/--interface`, iceccd(1), icecc-scheduler(1);
 * icecream binds that interface's IPv4 address, and the daemon also its loopback), or undefined = every
 * interface. `tailscale0` on a Linux node (not WSL) the fleet reaches over the tailnet
 * (roles/reach.ts `reachedOverTailnet`) when the scheduler is reached over the tailnet too: the scheduler
 * tells clients to connect to a daemon at the address that daemon's scheduler connection came from, so
 * daemons bound to the tailnet must also register over it. Unbound elsewhere, where the node firewall is
 * the only guard: macOS names its Tailscale interface `utun<N>` with N picked when tailscaled starts
 * (`--tun=utun`), and a WSL distro in mirrored mode sees the host's adapters under its own names.
 */
export function iceccInterface(fleet: Fleet, node: FleetNode): string | undefined {
  const scheduler = nodeWithRole(fleet, "icecc-scheduler");
  const linux = node.os !== "macos" && node.os !== "windows-wsl";
  return linux && scheduler && reachedOverTailnet(fleet, node) && reachedOverTailnet(fleet, scheduler) ? TAILSCALE_INTERFACE : undefined;
}

/**
 * The address the scheduler node's own daemon gives as `--scheduler-host`: with the scheduler bound to the
 * Tailscale interface, the node's tailnet address or MagicDNS name (the scheduler no longer listens on
 * loopback, and registering over the tailnet makes the scheduler hand other nodes that address for this
 * daemon); else 127.0.0.1.
 */
export function localSchedulerHost(fleet: Fleet, scheduler: FleetNode): string {
  if (!iceccInterface(fleet, scheduler)) return "127.0.0.1";
  return isIP(scheduler.host) !== 0 || scheduler.host.includes(".") ? scheduler.host : `${scheduler.name}.${fleet.tailnet}`;
}

/** Renders a compile daemon pointed at the fleet's scheduler. */
export function renderIceccd(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  const scheduler = nodeWithRole(fleet, "icecc-scheduler");
  if (!scheduler) throw new Error("iceccd without an icecc-scheduler node: the fleet model should have rejected this");
  // The scheduler node's daemon talks to its own scheduler locally (over the tailnet when it is bound there).
  const schedulerHost = scheduler.name === node.name ? localSchedulerHost(fleet, scheduler) : scheduler.host;
  const view = { node: node.name, schedulerHost, maxJobs: node.iceccMaxJobs, iceccd: iceccBinary(node, "iceccd"), interface: iceccInterface(fleet, node) };
  if (p.family === "macos") {
    const plist = "/Library/LaunchDaemons/org.icecc.iceccd.plist";
    return {
      packages: p.packageList(ICECC_PACKAGES),
      preInstall: p.installPackages(ICECC_PACKAGES),
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
    packages: p.packageList(ICECC_PACKAGES),
    preInstall: `${p.installPackages(ICECC_PACKAGES)}\n${ENSURE_ICECC_USER}`,
    // With toolchain builders in the fleet: the root receive program the distribution runs by path, and the
    // sourced ICECC_VERSION file (roles/toolchains/render.ts toolchainReceiverFiles).
    files: [{ path: unit, mode: 0o644, owner: "root", kind: "systemd", content: renderTemplate("icecc/iceccd.service", view) }, ...toolchainReceiverFiles(fleet, node)],
    postInstall: "fk_systemd_unit iceccd.service",
    preUninstall: sh`fk_systemd_remove iceccd.service ${unit}`,
    services: [{ name: "iceccd.service", manager: "systemd", scope: "system" }],
  };
}
