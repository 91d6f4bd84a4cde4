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
import { remoteCommand, remoteInvocation, sha256Hex, shQuote } from "./bundle.js";
import { platformFor, type Platform } from "./platform.js";

/** A word POSIX sh takes as it is, unquoted: what every value in the shipping lines must be. */
const PLAIN_WORD = /^[A-Za-z0-9_./-]+$/;

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
 * The command that prints a file's sha256 read from stdin as `<hex>  -`: GNU coreutils' `sha256sum` on Linux
 * (Debian, Raspberry Pi OS, Arch), `shasum -a 256` on macOS (Perl's shasum, in the base system; coreutils is
 * not). Both print the same line for stdin (sha256sum(1), shasum(1)), so one comparison serves both.
 */
function sha256Command(platform: Platform): string {
  return platform.family === "macos" ? "shasum -a 256" : "sha256sum";
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
  const platform = platformFor(node);
  const bundles = `${platform.stateDir}/bundles`;
  const sum = sha256Command(platform);
  const install = sha256Hex(bundle.install);
  const uninstall = sha256Hex(bundle.uninstall);
  // The lines use no single quotes, so `sh -c '…'` adds no escapes, and leave plain words unquoted: they
  // are every role's state and diff (issue 15), each byte counted 2,000 times at 500 nodes. So every value
  // must be a plain word: the role a hostname label (the loader checks it), the hashes hex, the paths fixed.
  for (const word of [dir, bundles]) {
    if (!PLAIN_WORD.test(word)) throw new Error(`bundleShipping: ${JSON.stringify(word)} is not a plain sh word (a fleetkit bug: role names are hostname labels)`);
  }
  const vars = `n=${dir};d=${bundles}/$n`;
  // k DIR: both scripts there and their sha256 as rendered (a missing file is a mismatch, quietly).
  const ok = `k(){ [ "$(${sum} <"$1/install.sh")" = "${install}  -" ]&&[ "$(${sum} <"$1/uninstall.sh")" = "${uninstall}  -" ];} 2>/dev/null`;
  const create = [
    `set -e;${vars};s=${NODE_BUNDLE_DIR}/$n`,
    ok,
    `if ! k $d;then [ -d $s ]||{ echo "fleetkit: bundle $n is not in ~/$s on this node; the copy before this command did not happen (pulumi up --replace the -bundle resource of this role)">&2;exit 1;}`,
    `mkdir -p ${bundles};umask 077;rm -rf $d.new;mkdir $d.new;cp $s/install.sh $s/uninstall.sh $d.new/`,
    `k $d.new||{ rm -rf $d.new;echo "fleetkit: bundle $n in ~/$s does not match its sha256; nothing was run">&2;exit 1;};rm -rf $d;mv $d.new $d;fi`,
    `rm -rf $s;sh $d/install.sh`,
    `for o in ${bundles}/${bundle.role}.*;do [ "$o" = $d ]||rm -rf "$o";done`,
  ].join("\n");
  const marker = `${platform.stateDir}/roles/${bundle.role}.hash`;
  const del = [
    `set -e;${vars}`,
    `if { [ "$(${sum} <$d/uninstall.sh)" = "${uninstall}  -" ];} 2>/dev/null;then sh $d/uninstall.sh;rm -rf $d`,
    // No script and no role marker: the role is not installed (an uninstall that already ran); as the scripts do.
    `elif ! [ -e ${marker} ];then echo "fleetkit: ${bundle.role} removed"`,
    `else echo "fleetkit: the uninstall script of bundle $n is not whole in $d on this node; nothing was removed (README: forgetting a node)">&2;exit 1;fi`,
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
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    // Another run renamed the same content into place first.
    if (!existsSync(target)) throw err;
  }
  return target;
}

/** What a role's resources run once its bundle is shipped: the command lines and where its files are. */
export interface ShippedCommands {
  /** The install command line (`remote.Command` create). */
  create: string;
  /** The uninstall command line (`remote.Command` delete). */
  delete: string;
  /** Text that must come first on the install command's stdin, before the secrets ("" = none). */
  stdinPrefix: string;
  /** The local directory `<role>.<hash>` to copy before `create` runs (written); undefined = inline (Windows). */
  localDir?: string;
}

/**
 * A bundle as the Pulumi program holds it once its files are written ({@link shipBundle}): what its
 * resources need, none of its texts (scripts and file contents), which are garbage from then on.
 */
export type ShippedBundle = Pick<Bundle, "node" | "role" | "target" | "secrets" | "secretsMode" | "requiredSecrets" | "hash"> & { shipping: ShippedCommands };

/**
 * Ships `bundle` of `node`: its commands ({@link bundleShipping}) and, when it travels as files, the files
 * written under `localDir` ({@link writeBundleFiles}). The program ships each node's bundles as soon as they
 * are rendered, so only one node's scripts are alive at a time (at 500 nodes the whole fleet's are
 * 124 MB of text, bench/program.bench.ts).
 * @throws Error for {@link bundleShipping}'s and {@link writeBundleFiles}'s reasons.
 */
export function shipBundle(node: FleetNode, bundle: Bundle, localDir: string): ShippedBundle {
  const shipping = bundleShipping(node, bundle);
  const { role, target, secrets, secretsMode, requiredSecrets, hash } = bundle;
  return {
    node: bundle.node,
    role,
    target,
    secrets,
    ...(secretsMode ? { secretsMode } : {}),
    ...(requiredSecrets ? { requiredSecrets } : {}),
    hash,
    shipping: {
      create: shipping.create,
      delete: shipping.delete,
      stdinPrefix: shipping.stdinPrefix,
      ...(shipping.files ? { localDir: writeBundleFiles(localDir, shipping) } : {}),
    },
  };
}
