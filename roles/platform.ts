/**
 * Platform adapters: the one place OS differences live (package manager, service manager, paths, how a
 * script is started over SSH). A role renderer asks its node's adapter instead of switching on `os`.
 *
 * Facts used: Homebrew is not on PATH in a non-login SSH shell, so brew is called by path (/usr/local/bin
 * on Intel, /opt/homebrew/bin on Apple silicon — FIELD-NOTES). Every script runs as root (`sudo -n` over
 * SSH; Windows roles inside the node's WSL distro with `wsl.exe -d <distro> -u root`); brew refuses to run
 * as root, so macOS scripts call it as the node user (`sudo -u <user> -H`).
 */
import type { FleetNode } from "../stacks/model/fleet.js";
import { osFamily } from "../stacks/model/fleet.js";

/** Package names per package manager for one piece of software. */
export interface PackageNames {
  apt?: string[];
  pacman?: string[];
  brew?: string[];
}

/** The adapter for one node. All returned strings are POSIX sh fragments for the install/uninstall scripts. */
export interface Platform {
  /** Which family decides the rest. windows-wsl behaves as Debian inside the distro. */
  family: "debian" | "arch" | "macos";
  /** Service manager of the Linux side or macOS. */
  serviceManager: "systemd" | "launchd";
  /** Where fleetkit keeps role markers and state on the node. */
  stateDir: string;
  /** Where fleetkit's own config files go (`/etc/fleetkit`, macOS `/usr/local/etc/fleetkit`). */
  configDir: string;
  /** Directory for binaries fleetkit installs itself (AgentAPI, the worker runtime launcher). */
  binDir: string;
  /** Home directory of the node user. */
  home: string;
  /** Absolute path of brew on macOS (by arch); undefined elsewhere. */
  brew?: string;
  /** Shell lines that install `pkgs` when missing and set FK_CHANGED=1 when they did. */
  installPackages(pkgs: PackageNames): string;
  /** Package names this platform uses from `pkgs` (for markers and uninstall). */
  packageList(pkgs: PackageNames): string[];
  /** Group of root-owned files (`root` on Linux, `wheel` on macOS). */
  rootGroup: string;
}

function homeOf(node: FleetNode): string {
  if (node.os === "macos") return `/Users/${node.user}`;
  return node.user === "root" ? "/root" : `/home/${node.user}`;
}

/** The adapter for `node`. Pure. */
export function platformFor(node: FleetNode): Platform {
  const family = osFamily(node.os);
  if (family === "macos") {
    const brew = node.arch === "aarch64" ? "/opt/homebrew/bin/brew" : "/usr/local/bin/brew";
    return {
      family: "macos",
      serviceManager: "launchd",
      stateDir: "/usr/local/var/fleetkit",
      configDir: "/usr/local/etc/fleetkit",
      binDir: "/usr/local/libexec/fleetkit",
      home: homeOf(node),
      brew,
      rootGroup: "wheel",
      packageList: (p) => p.brew ?? [],
      installPackages: (p) =>
        (p.brew ?? [])
          .map((pkg) => `fk_brew_install ${pkg}`)
          .join("\n"),
    };
  }
  const arch = node.os === "arch";
  return {
    family: arch ? "arch" : "debian",
    serviceManager: "systemd",
    stateDir: "/var/lib/fleetkit",
    configDir: "/etc/fleetkit",
    binDir: "/usr/local/lib/fleetkit",
    home: homeOf(node),
    rootGroup: "root",
    packageList: (p) => (arch ? (p.pacman ?? []) : (p.apt ?? [])),
    installPackages: (p) => {
      const pkgs = arch ? (p.pacman ?? []) : (p.apt ?? []);
      if (pkgs.length === 0) return "";
      return arch ? `fk_pacman_install ${pkgs.join(" ")}` : `fk_apt_install ${pkgs.join(" ")}`;
    },
  };
}
