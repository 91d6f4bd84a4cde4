/**
 * How a role's bundle reaches its node. Linux and macOS nodes get it as files, content-addressed: the
 * install and uninstall scripts are copied once per bundle hash (a `remote.CopyToRemote` of the directory
 * `<role>.<hash>`, SFTP into the node user's `~/.fleetkit/bundles/`), and the install command is a short
 * line naming that directory and the scripts' sha256, so it changes exactly when the bundle does, the stack
 * state holds hashes instead of scripts, and a preview diff shows which role's hash changed. Windows nodes
 * keep the bundle inline in the command (roles/bundle.ts `remoteInvocation`): their SFTP lands on the host,
 * not in the WSL distro.
 *
 * On the node, the install line (as root, through `sudo -n`, in the node user's home, where the SSH
 * session starts and SFTP's relative paths begin):
 * 1. copies the two scripts into `<stateDir>/bundles/<role>.<hash>/` (mode 0700, root's) unless a copy whose
 *    sha256 match is already there, and checks the sha256 of the copy, not of the user's files, so nothing
 *    the node user's processes write between check and use can run as root; a mismatch runs nothing;
 * 2. removes the node user's copy, runs the install script (secrets on stdin, as before), and on success
 *    removes the role's other bundle versions.
 * A re-run (a failed install retried, the same hash) finds the root copy and needs no new copy. The
 * uninstall line runs the root copy's uninstall script after checking its sha256 and removes the copy; with
 * no copy and no role marker (`<stateDir>/roles/<role>.hash`) the role is already gone and it says so, as
 * an uninstall script run twice does; with a marker but no whole copy it removes nothing and says why.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { FleetNode } from "../model/fleet.js";
import type { Bundle } from "./types.js";
import { readTemplate, remoteCommand, remoteInvocation, sha256Hex, shQuote } from "./bundle.js";
import { platformFor } from "./platform.js";

/** Where the copies land on a node, relative to the node user's home (SFTP's starting directory). */
export const NODE_BUNDLE_DIR = ".fleetkit/bundles";

/** The commands (and files) that deliver one bundle. */
export interface BundleShipping {
  /**
   * The files to copy before `create` runs, or undefined when the bundle travels inline (Windows):
   * `dir` is `<role>.<hash>`, the directory name locally and on the node; `install.sh` and `uninstall.sh`
   * are the bundle's scripts.
   */
  files?: { dir: string; "install.sh": string; "uninstall.sh": string };
  /** The install command line (`remote.Command` create). */
  create: string;
  /** The uninstall command line (`remote.Command` delete). */
  delete: string;
  /** Text that must come first on the install command's stdin, before the secrets ("" = none). */
  stdinPrefix: string;
}

/** Every text a shipping sends to its node: command lines, stdin prefix and file contents (for leak checks). */
export function shippedTexts(shipping: BundleShipping): string[] {
  return [shipping.create, shipping.delete, shipping.stdinPrefix, ...(shipping.files ? [shipping.files["install.sh"], shipping.files["uninstall.sh"]] : [])];
}

/** True when `node`'s bundles travel as files (Linux and macOS); Windows nodes' travel inline. */
export function shipsBundleFiles(node: FleetNode): boolean {
  return node.os !== "windows-wsl";
}

/**
 * The prelude's `fk_sha256` (templates/common/prelude.sh: GNU `sha256sum` on Linux, `shasum -a 256` on macOS),
 * the one definition of a file's sha256: the short lines run before any script, so they define it themselves.
 * @throws Error when the prelude no longer defines it as one `fk_sha256() {` … `}` block (a packaging bug).
 */
function sha256Function(): string {
  const m = /^fk_sha256\(\) \{\n[^\n]*\n\}$/m.exec(readTemplate("common/prelude.sh"));
  if (!m) throw new Error("templates/common/prelude.sh defines no fk_sha256() { … } block of three lines");
  return m[0];
}

/**
 * The install and uninstall commands of `bundle` on `node`, and the files they need (see the module doc).
 * Pure: the same bundle always gives the same text.
 * @throws Error for {@link remoteInvocation}'s reasons on Windows nodes.
 */
export function bundleShipping(node: FleetNode, bundle: Bundle): BundleShipping {
  if (!shipsBundleFiles(node)) {
    const inv = remoteInvocation(node, bundle.target, bundle.install);
    return { create: inv.command, delete: remoteCommand(node, bundle.target, bundle.uninstall), stdinPrefix: inv.stdinPrefix };
  }
  const dir = `${bundle.role}.${bundle.hash}`;
  const stateDir = platformFor(node).stateDir;
  const bundles = `${stateDir}/bundles`;
  const sum = sha256Function();
  const install = sha256Hex(bundle.install);
  const uninstall = sha256Hex(bundle.uninstall);
  // The role name is a hostname label (the loader checks it); quoted all the same, as every fleet.yaml value is.
  const vars = `n=${shQuote(dir)}; d=${shQuote(bundles)}/$n`;
  const ok = `fk_ok() { [ -f "$1/install.sh" ] && [ -f "$1/uninstall.sh" ] && [ "$(fk_sha256 "$1/install.sh")" = ${install} ] && [ "$(fk_sha256 "$1/uninstall.sh")" = ${uninstall} ]; }`;
  const create = [
    `set -e; ${vars}; s=${NODE_BUNDLE_DIR}/$n`,
    sum,
    ok,
    `if ! fk_ok "$d"; then`,
    `[ -d "$s" ] || { echo "fleetkit: bundle $n is not in ~/$s on this node; the copy before this command did not happen (pulumi up --replace the role's -bundle resource)" >&2; exit 1; }`,
    `mkdir -p ${shQuote(bundles)}; umask 077; rm -rf "$d.new"; mkdir "$d.new"; cp "$s/install.sh" "$s/uninstall.sh" "$d.new/"`,
    `fk_ok "$d.new" || { rm -rf "$d.new"; echo "fleetkit: bundle $n in ~/$s does not match its sha256; nothing was run" >&2; exit 1; }`,
    `rm -rf "$d"; mv "$d.new" "$d"; fi`,
    `rm -rf "$s"; sh "$d/install.sh"`,
    `for o in ${shQuote(bundles)}/${shQuote(bundle.role)}.*; do [ "$o" = "$d" ] || rm -rf "$o"; done`,
  ].join("\n");
  const marker = shQuote(`${stateDir}/roles/${bundle.role}.hash`);
  const del = [
    `set -e; ${vars}`,
    sum,
    `if [ -f "$d/uninstall.sh" ] && [ "$(fk_sha256 "$d/uninstall.sh")" = ${uninstall} ]; then sh "$d/uninstall.sh"; rm -rf "$d"`,
    // No script and no role marker: the role is not installed (an uninstall that already ran); as the scripts do.
    `elif ! [ -e ${marker} ]; then echo ${shQuote(`fleetkit: ${bundle.role} removed`)}`,
    `else echo "fleetkit: the uninstall script of bundle $n is not whole in $d on this node; nothing was removed (README: forgetting a node)" >&2; exit 1; fi`,
  ].join("\n");
  return {
    files: { dir, "install.sh": bundle.install, "uninstall.sh": bundle.uninstall },
    create: `sudo -n sh -c ${shQuote(create)}`,
    delete: `sudo -n sh -c ${shQuote(del)}`,
    stdinPrefix: "",
  };
}

/**
 * Writes a shipping's files under `localDir` as `<dir>/install.sh` and `<dir>/uninstall.sh` (directories
 * 0700, files 0600) and returns the absolute path of `<dir>`. Content-addressed: when `<dir>` exists it is
 * left as it is (it appeared whole, by one rename, and its name is its content's hash); otherwise the files
 * are written into a fresh temporary directory renamed into place, so a crash or a parallel run never leaves
 * half a bundle. (A changed file there is caught on the node: the command checks the sha256 of what arrives.)
 * @throws Error when `shipping` has no files (an inline bundle), or the directory cannot be written.
 */
export function writeBundleFiles(localDir: string, shipping: BundleShipping): string {
  const files = shipping.files;
  if (!files) throw new Error("writeBundleFiles: this bundle travels inline, it has no files");
  const target = join(localDir, files.dir);
  if (existsSync(target)) return target;
  mkdirSync(localDir, { recursive: true, mode: 0o700 });
  const tmp = mkdtempSync(join(localDir, `.${files.dir}.`));
  try {
    writeFileSync(join(tmp, "install.sh"), files["install.sh"], { mode: 0o600 });
    writeFileSync(join(tmp, "uninstall.sh"), files["uninstall.sh"], { mode: 0o600 });
    try {
      renameSync(tmp, target);
    } catch (err) {
      // Another run renamed the same content into place first.
      if (!existsSync(target)) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return target;
}
