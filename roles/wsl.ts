/**
 * The Windows host side of a `windows-wsl` node: make sure WSL2 and the node's distro exist, the node user
 * exists inside it, `/etc/wsl.conf` boots systemd (`[boot] systemd=true`), and the SSH user's
 * `%USERPROFILE%\.wslconfig` sets `[wsl2] networkingMode=mirrored` (the distro then shares the host's
 * interfaces, Tailscale's included, so iceccd/AgentAPI/worker inside WSL are reachable from the tailnet;
 * NAT mode would hide them). WSL is restarted (`wsl.exe --shutdown`) only when one of the two changed.
 *
 * How it is carried out: this is not a role of its own. The `tailscale` role's Windows variant (target
 * `windows-host`, PowerShell) runs these steps after installing Tailscale, because
 * - every other role of a Windows node runs inside the distro (target `wsl`, the Debian bundles) and needs
 *   the distro, the user and systemd to exist first, and `tailscale` is the role every node's other roles
 *   already depend on (`dependsOn`: Tailscale before everything), so the ordering comes for free;
 * - only the host can restart WSL: a script inside the distro would kill itself with `wsl.exe --shutdown`;
 * - no role name outside ROLE_NAMES is needed, so the fleet model, plan and components stay unchanged.
 * Tailscale goes first in that script so that a machine that must reboot to finish enabling WSL is
 * already on the tailnet when it comes back. Uninstalling `tailscale` never disables WSL or touches the
 * distro (that would destroy the user's Linux files).
 *
 * Facts used: `wsl.exe --install --no-distribution` enables WSL2 (a reboot may be needed);
 * `[boot] systemd=true` needs WSL 0.67.6+ and takes effect after `wsl.exe --shutdown` (Microsoft's "wsl.conf"
 * docs); `WSL_UTF8=1` makes wsl.exe print UTF-8 instead of UTF-16.
 */
import type { Fleet, FleetNode } from "../model/fleet.js";
import { readTemplate, renderTemplate, sh } from "./bundle.js";
import { scanContexts } from "./escape.js";

/**
 * The POSIX sh script run as root inside the distro: ensures the node user and the wsl.conf setting;
 * prints `FLEETKIT_WSL_CONF_CHANGED` when /etc/wsl.conf changed (the env var `FK_WSL_CONF` overrides the
 * path, for tests). Pure.
 */
export function wslDistroSetupScript(node: FleetNode): string {
  return [
    "#!/bin/sh",
    sh`# fleetkit: prepares WSL distro ${node.wslDistro ?? ""} of node ${node.name} (run as root by the Windows host script).`,
    "set -eu",
    renderTemplate("wsl/ensure-user.sh", { user: node.user }).trimEnd(),
    readTemplate("wsl/wsl-conf.sh").trimEnd(),
  ].join("\n") + "\n";
}

/**
 * `script` without its comment-only lines (the shebang stays). The distro script travels base64-encoded
 * inside a PowerShell script that itself travels UTF-16 + base64 encoded on one Windows command line
 * (32,767 characters at most), so the comments nobody can read there are left out. A line counts as a
 * comment only where sh would read one (roles/escape.ts scanContexts): a line of a quoted value that
 * happens to start with `#` stays, so no value can lose part of itself here.
 */
export function withoutCommentLines(script: string): string {
  const lines = script.split("\n");
  const starts: number[] = [];
  let at = 0;
  for (const l of lines) {
    starts.push(at);
    at += l.length + 1;
  }
  const contexts = scanContexts("sh", script, starts.map((s) => ({ start: s, end: s })));
  return lines.filter((l, i) => i === 0 || !(/^\s*#/.test(l) && contexts.get(starts[i]!)?.kind === "word")).join("\n");
}

/**
 * PowerShell lines (for a `windows-host` install script, after the PowerShell prelude) that prepare WSL2
 * and the node's distro. @throws Error when `node` is not a windows-wsl node with a distro (a caller bug).
 */
export function wslHostSetup(fleet: Fleet, node: FleetNode): string {
  if (node.os !== "windows-wsl" || !node.wslDistro) throw new Error(`node ${node.name} is not a windows-wsl node with a wslDistro`);
  return renderTemplate("wsl/host-setup.ps1", {
    node: node.name,
    distro: node.wslDistro,
    setupB64: Buffer.from(withoutCommentLines(wslDistroSetupScript(node)), "utf8").toString("base64"),
  }).trimEnd();
}
