/**
 * Platform adapters: the one place OS differences live (package manager, service manager, paths, how a
 * script is started over SSH). A role renderer asks its node's adapter instead of switching on `os`.
 *
 * Facts used: Homebrew is not on PATH in a non-login SSH shell, so brew is called by path (/usr/local/bin
 * on Intel, /opt/homebrew/bin on Apple silicon — FIELD-NOTES). Every script runs as root (`sudo -n` over
 * SSH; Windows roles inside the node's WSL distro with `wsl.exe -d <distro> -u root`); brew refuses to run
 * as root, so macOS scripts call it as the node user (`sudo -u <user> -H`).
 */
import type { FleetNode } from "../model/fleet.js";
import { osFamily } from "../model/fleet.js";
import type { Artifact, PlatformKey } from "../model/schema.js";
import type { ArtifactName, BundleDownload } from "./types.js";
import { sh } from "./escape.js";

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
  /** Primary group of the node user: `staff` on macOS (every account's default), the user's own elsewhere. */
  userGroup: string;
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
      userGroup: "staff",
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
    userGroup: node.user,
    packageList: (p) => (arch ? (p.pacman ?? []) : (p.apt ?? [])),
    installPackages: (p) => {
      const pkgs = arch ? (p.pacman ?? []) : (p.apt ?? []);
      if (pkgs.length === 0) return "";
      return arch ? `fk_pacman_install ${pkgs.join(" ")}` : `fk_apt_install ${pkgs.join(" ")}`;
    },
  };
}

/** The `<os>-<arch>` key of fleet.yaml artifact checksums for `node` (a WSL distro counts as Linux). */
export function platformKey(node: FleetNode): PlatformKey {
  return `${node.os === "macos" ? "darwin" : "linux"}-${node.arch}`;
}

/**
 * The download URL of `artifact` for `node`: `{version}`, `{os}` (linux|darwin), `{goarch}` (amd64|arm64)
 * and `{arch}` (x86_64|aarch64) substituted.
 */
export function artifactUrl(artifact: Artifact, node: FleetNode): string {
  const vars: Record<string, string> = {
    version: artifact.version,
    os: node.os === "macos" ? "darwin" : "linux",
    goarch: node.arch === "x86_64" ? "amd64" : "arm64",
    arch: node.arch,
  };
  return artifact.url.replace(/\{(version|os|goarch|arch)\}/g, (_, k: string) => vars[k]);
}

/** Whether fleet.yaml pins a sha256 of `artifact` for `node`'s platform (without one it cannot be installed). */
export function artifactPinned(artifact: Artifact, node: FleetNode): boolean {
  return artifact.sha256[platformKey(node)] !== undefined;
}

/** What {@link artifactFetch} downloads for `node`, for the bundle's `downloads` (`fleet pin-artifacts`). */
export function artifactDownload(name: ArtifactName, artifact: Artifact, node: FleetNode): BundleDownload {
  const platform = platformKey(node);
  const d: BundleDownload = { artifact: name, version: artifact.version, platform, url: artifactUrl(artifact, node) };
  const sum = artifact.sha256[platform];
  if (sum !== undefined) d.sha256 = sum;
  return d;
}

/**
 * Shell that downloads `artifact` for `node` to `dest` (mode `mode`) with sha256 verification (fk_download),
 * or, when fleet.yaml pins no sha256 for the node's platform, stops the install with a message saying how
 * to pin it. `name` is the key under `artifacts:` (e.g. `agentapi`). There is never a built-in checksum.
 */
export function artifactFetch(name: ArtifactName, artifact: Artifact, node: FleetNode, dest: string, mode: number): string {
  const key = platformKey(node);
  const url = artifactUrl(artifact, node);
  const sum = artifact.sha256[key];
  if (sum === undefined) {
    return sh`fk_die ${`no sha256 pinned for ${name} ${artifact.version} on ${key}: run npx fleet pin-artifacts where ${url} downloads (or download it, run sha256sum on it and add it to fleet.yaml as artifacts.${name}.sha256.${key})`}`;
  }
  return `${sh`fk_download ${url} ${sum} ${dest}`} ${mode.toString(8).padStart(4, "0")}`;
}
