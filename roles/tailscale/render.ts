/**
 * Role `tailscale`: installs Tailscale and joins the node to the tailnet as `tailscale up --hostname <node>`.
 *
 * Per OS family:
 * - Debian / Raspberry Pi OS: the static tarball from `artifacts.tailscale` (version + sha256 per platform
 *   in fleet.yaml, verified by fk_download; no pinned sha256 = the install stops and says how to pin it),
 *   kept under a name derived from a hash of its URL ({@link tailscaleTarball}: no part of the URL becomes a path),
 *   binaries in /usr/local, a rendered `tailscaled.service` (the unit Tailscale ships in that tarball).
 * - Arch: `pacman -S tailscale` and the package's own `tailscaled.service`.
 * - macOS: the Homebrew formula `tailscale` (not the cask the reference used): the cask is the GUI app,
 *   whose network extension runs per logged-in user and needs sudo/GUI approval to install, so a headless
 *   node reached over SSH cannot use it (FIELD-NOTES). The formula's `tailscaled` runs as a root
 *   LaunchDaemon — the `homebrew.mxcl.tailscale` job `sudo brew services start tailscale` writes.
 * - Windows (`windows-wsl`): on the Windows host (target `windows-host`, PowerShell): `winget install --id
 *   Tailscale.Tailscale -e` pinned to the same version, `tailscale up --unattended` (keeps running with no one
 *   logged in), then the WSL2 host setup of roles/wsl.ts. WSL shares the host's network, so the distro
 *   needs no Tailscale of its own.
 *
 * The auth key (secret `tailscaleAuthKey`) arrives on stdin and reaches tailscale only as a 0600 temp file
 * named by `--auth-key=file:PATH` (tailscale cmd/tailscale/cli/up.go: "if it begins with "file:", then
 * it's a path to a file containing the authkey"), removed right after. Idempotent: when
 * `tailscale status --json --peers=false` shows BackendState Running with Self.HostName = the node name,
 * nothing is re-authenticated; Running under another name is renamed with `tailscale set --hostname`.
 * Uninstall: `tailscale logout` (best effort), then the service and binaries go.
 *
 * Caveat: when a node is reached over its tailnet name, a run that changes tailscaled (new version or
 * unit) restarts the daemon under the SSH session that runs the script; WireGuard sessions usually
 * survive the short restart, but a version bump is safest run with the node's `bootstrapHost` (LAN).
 */
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { renderTemplate, sh, type RoleParts } from "../bundle.js";
import { launchdPlist } from "../launchd.js";
import { createHash } from "node:crypto";
import { artifactDownload, artifactFetch, artifactPinned, artifactUrl, platformFor, platformKey } from "../platform.js";
import { wslHostSetup } from "../wsl.js";
import { windowsHostFirewall } from "../firewall.js";

const PACKAGES = { pacman: ["tailscale"], brew: ["tailscale"] };

/** Debian minimal images may lack curl; it is a prerequisite, not a role package (never released on uninstall). */
export const ENSURE_CURL = "command -v curl >/dev/null 2>&1 || fk_apt_install curl ca-certificates";

/** Absolute path of the `tailscale` CLI on `node` (Windows: on the host). */
export function tailscaleBinary(node: FleetNode): string {
  const p = platformFor(node);
  if (node.os === "windows-wsl") return "C:\\Program Files\\Tailscale\\tailscale.exe";
  if (p.family === "macos") return `${p.brew!.replace(/\/bin\/brew$/, "")}/opt/tailscale/bin/tailscale`;
  if (p.family === "arch") return "/usr/bin/tailscale";
  return "/usr/local/bin/tailscale";
}

/**
 * Where the Debian tarball is kept on `node`: `<stateDir>/downloads/tailscale-<os>-<arch>-<12 hex>.tgz`,
 * the hex digits from the sha256 of the download URL. No fleet.yaml text becomes part of the path (a URL
 * ending in `..` or holding `$(…)` names no other file), and a new URL (a new version) is a new file, so
 * fk_download fetches and checks it instead of finding the old tarball already in place.
 */
export function tailscaleTarball(fleet: Fleet, node: FleetNode): string {
  const url = artifactUrl(fleet.artifacts.tailscale, node);
  return `${platformFor(node).stateDir}/downloads/tailscale-${platformKey(node)}-${createHash("sha256").update(url).digest("hex").slice(0, 12)}.tgz`;
}

/** Renders the tailscale role for one node (see the module docstring). Pure. */
export function renderTailscale(fleet: Fleet, node: FleetNode): RoleParts {
  if (node.os === "windows-wsl") return renderWindowsHost(fleet, node);
  const p = platformFor(node);
  const ts = tailscaleBinary(node);
  const logHint = p.family === "macos" ? "/usr/local/var/log/tailscaled.log" : "journalctl -u tailscaled";
  const up = renderTemplate("tailscale/up.sh", { tailscale: ts, hostname: node.name, logHint }).trimEnd();
  const logout = renderTemplate("tailscale/logout.sh", { tailscale: ts, hostname: node.name }).trimEnd();

  if (p.family === "macos") {
    const prefix = p.brew!.replace(/\/bin\/brew$/, "");
    const plist = "/Library/LaunchDaemons/homebrew.mxcl.tailscale.plist";
    const log = `${prefix}/var/log/tailscaled.log`;
    return {
      packages: p.packageList(PACKAGES),
      preInstall: p.installPackages(PACKAGES),
      files: [
        {
          path: plist,
          mode: 0o644,
          owner: "root",
          kind: "launchd",
          content: launchdPlist(
            [
              `Rendered by fleetkit for node ${node.name}: tailscaled from the Homebrew formula as a system LaunchDaemon,`,
              "the job `sudo brew services start tailscale` would write (so `brew services` still sees it).",
            ],
            { Label: "homebrew.mxcl.tailscale", ProgramArguments: [`${prefix}/opt/tailscale/bin/tailscaled`], RunAtLoad: true, KeepAlive: true, StandardOutPath: log, StandardErrorPath: log },
          ),
        },
      ],
      postInstall: [sh`fk_launchd_daemon homebrew.mxcl.tailscale ${plist} system`, up].join("\n"),
      preUninstall: [logout, sh`fk_launchd_remove homebrew.mxcl.tailscale ${plist} system`].join("\n"),
      services: [{ name: "homebrew.mxcl.tailscale", manager: "launchd", scope: "system" }],
      secrets: ["tailscaleAuthKey"],
    };
  }

  if (p.family === "arch") {
    return {
      packages: p.packageList(PACKAGES),
      preInstall: p.installPackages(PACKAGES),
      files: [],
      postInstall: ["fk_systemd_unit tailscaled.service", up].join("\n"),
      preUninstall: [logout, "systemctl disable --now --quiet tailscaled.service 2>/dev/null || true"].join("\n"),
      services: [{ name: "tailscaled.service", manager: "systemd", scope: "system" }],
      secrets: ["tailscaleAuthKey"],
    };
  }

  // Debian and Raspberry Pi OS: the static tarball.
  const art = fleet.artifacts.tailscale;
  const tarball = tailscaleTarball(fleet, node);
  const unit = "/etc/systemd/system/tailscaled.service";
  // An unpinned platform stops before anything changes; curl (for fk_download) only when it will be used.
  const fetch = artifactFetch("tailscale", art, node, tarball, 0o644);
  return {
    packages: [],
    preInstall: [artifactPinned(art, node) ? ENSURE_CURL : "", fetch, renderTemplate("tailscale/tarball.sh", { version: art.version, tarball }).trimEnd()].filter(Boolean).join("\n"),
    downloads: [artifactDownload("tailscale", art, node)],
    files: [
      { path: unit, mode: 0o644, owner: "root", kind: "systemd", content: renderTemplate("tailscale/tailscaled.service", { node: node.name, version: art.version }) },
    ],
    postInstall: ["fk_systemd_unit tailscaled.service", up].join("\n"),
    preUninstall: [logout, sh`fk_systemd_remove tailscaled.service ${unit}`].join("\n"),
    postUninstall: sh`fk_rm /usr/local/bin/tailscale /usr/local/sbin/tailscaled ${tarball}`,
    services: [{ name: "tailscaled.service", manager: "systemd", scope: "system" }],
    secrets: ["tailscaleAuthKey"],
  };
}

/** The Windows host variant: PowerShell, Tailscale via winget, then WSL2 + the node's distro (roles/wsl.ts). */
function renderWindowsHost(fleet: Fleet, node: FleetNode): RoleParts {
  const version = fleet.artifacts.tailscale.version;
  return {
    target: "windows-host",
    packages: [],
    files: [],
    preInstall: renderTemplate("tailscale/windows-install.ps1", { version, hostname: node.name }).trimEnd(),
    // The host side of the node firewall for its WSL services (roles/firewall.ts) goes with the WSL setup.
    postInstall: [wslHostSetup(fleet, node), windowsHostFirewall(fleet, node).install].join("\n"),
    preUninstall: [renderTemplate("tailscale/windows-uninstall.ps1", { hostname: node.name }).trimEnd(), windowsHostFirewall(fleet, node).uninstall].join("\n"),
    // The Tailscale Windows service belongs to its installer; fleetkit does not manage it directly.
    services: [],
    secrets: ["tailscaleAuthKey"],
  };
}
