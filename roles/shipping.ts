/**
 * How a role's bundle reaches its node. Linux and macOS nodes get it as files, content-addressed: each role's
 * install and uninstall scripts are written locally as the directory `<role>.<hash>`, and one
 * `remote.CopyToRemote` per node (`<node>-bundles`, {@link writeNodeBundles}) copies all of the node's role
 * directories over SFTP into the node user's `~/.fleetkit/bundles/` whenever one of them changes; the install
 * command is a short line naming its directory and the scripts' sha256, so it changes exactly when the
 * bundle does, the stack state holds hashes instead of scripts, and a preview diff shows which role's hash
 * changed. One exception: the tailscale role of a node joined through `bootstrapHost` has a copy of its own,
 * dialled to that address ({@link ownsBundleCopy}). Windows nodes keep the bundle inline in the command
 * (roles/bundle.ts `remoteInvocation`): their SFTP lands on the host, not in the WSL distro.
 *
 * On the node (as root, through `sudo -n`, in the node user's home, where the SSH session starts and SFTP's
 * relative paths begin), each line first makes sure root's copy of the platform's shipping helper
 * ({@link shipHelper}, sent in the same copy) is in `<stateDir>/`, copied and checked against its sha256 on
 * first use; the helper then does the rest. An install:
 * 1. copies the two scripts into `<stateDir>/bundles/<role>.<hash>/` (mode 0700, root's) unless a copy whose
 *    sha256 match is already there, and checks the sha256 of the copy, not of the user's files, so nothing
 *    the node user's processes write between check and use can run as root; a mismatch runs nothing;
 * 2. removes the node user's copies of the role (every version: the node's copy sends the directories of
 *    unchanged roles too, which stay until their role next installs), runs the install script (secrets on
 *    stdin), and on success removes root's copies of the role's other versions.
 * A re-run (a failed install retried, the same hash) finds the root copy and needs no new copy. An
 * uninstall runs the root copy's uninstall script (checked when it was placed) and removes the copy; with
 * no copy and no role marker (`<stateDir>/roles/<role>.hash`) the role is already gone and it says so, as
 * an uninstall script run twice does; with a marker but no copy (or no helper) it removes nothing and says why.
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { FleetNode, RoleName } from "../model/fleet.js";
import type { Bundle } from "./types.js";
import { remoteCommand, remoteInvocation, sha256Hex, shQuote } from "./bundle.js";
import { platformFor, type Platform } from "./platform.js";
import { bundleResourceName, nodeBundlesResourceName, roleResourceName } from "./naming.js";

/** A word POSIX sh takes as it is, unquoted: what every value in the shipping lines must be. */
const PLAIN_WORD = /^[A-Za-z0-9_./-]+$/;

/**
 * Where a node's copy is sent, relative to the node user's home (SFTP's starting directory): the local
 * directory it sends is named `bundles` and has no trailing slash, so it lands as `.fleetkit/bundles`, merged
 * into what is there (pulumi-command 1.2.1 provider/pkg/provider/remote/copyController.go `sftpCopy`).
 */
export const NODE_COPY_REMOTE_PATH = ".fleetkit";

/** Where the role directories land on a node, relative to the node user's home. */
export const NODE_BUNDLE_DIR = `${NODE_COPY_REMOTE_PATH}/bundles`;

/** The commands (and files) that deliver one bundle. */
export interface BundleShipping {
  /**
   * The files to copy before `create` runs, or undefined when the bundle travels inline (Windows):
   * `dir` is `<role>.<hash>`, the directory name locally and on the node; `install.sh` and `uninstall.sh`
   * are the bundle's scripts; `helper` the platform's {@link shipHelper}, sent beside the role directories.
   */
  files?: { dir: string; "install.sh": string; "uninstall.sh": string; helper: { name: string; content: string } };
  /** The install command line (`remote.Command` create). */
  create: string;
  /** The uninstall command line (`remote.Command` delete). */
  delete: string;
  /** Text that must come first on the install command's stdin, before the secrets ("" = none). */
  stdinPrefix: string;
}

/** Every text a shipping sends to its node: command lines, stdin prefix and file contents (for leak checks). */
export function shippedTexts(shipping: BundleShipping): string[] {
  const f = shipping.files;
  return [shipping.create, shipping.delete, shipping.stdinPrefix, ...(f ? [f["install.sh"], f["uninstall.sh"], f.helper.content] : [])];
}

/** True when `node`'s bundles travel as files (Linux and macOS); Windows nodes' travel inline. */
export function shipsBundleFiles(node: { os: string }): boolean {
  return node.os !== "windows-wsl";
}

/**
 * True when `role`'s bundle on `node` has a copy of its own instead of travelling in the node's copy: the
 * tailscale role of a Linux or macOS node joined through `bootstrapHost`. Its copy dials that address like
 * its install; the node's copy dials the node's tailnet name, which answers only once that role is installed.
 */
export function ownsBundleCopy(node: FleetNode, role: RoleName): boolean {
  return shipsBundleFiles(node) && role === "tailscale" && node.bootstrapHost !== undefined;
}

/**
 * True when `node`'s own copy (`<node>-bundles`) must wait for its tailscale role's install: that role has a
 * copy of its own ({@link ownsBundleCopy}), and the node's copy dials the tailnet name.
 */
export function nodeCopyAwaitsTailscale(node: FleetNode): boolean {
  return node.roles.includes("tailscale") && ownsBundleCopy(node, "tailscale");
}

/** Name of the `remote.CopyToRemote` that carries `role`'s bundle to `node` (Linux and macOS). */
export function bundleCopyName(node: FleetNode, role: RoleName): string {
  return ownsBundleCopy(node, role) ? bundleResourceName(roleResourceName(node.name, role)) : nodeBundlesResourceName(node.name);
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
 * The shipping helper of a platform: the sh program that does, as root, what each role's install and uninstall
 * line asks (so each line only names its bundle and hashes, and the stack state holds the procedure once per
 * node instead of once per role): `sh HELPER i <role>.<hash> INSTALL_SHA256 UNINSTALL_SHA256 COPY` and
 * `sh HELPER u <role>.<hash>`, in the node user's home (see the module doc for what each does).
 * It travels in the node's copy as `~/.fleetkit/bundles/_ship.<first 16 hex of its sha256>` (`_` is in no role
 * name: those are hostname labels) and each line copies it into `<stateDir>/` and checks its sha256 there
 * before first use. Pure.
 */
export function shipHelper(platform: Platform): ShipHelper {
  const key = `${platform.family}\0${platform.stateDir}`;
  let helper = shipHelpers.get(key);
  if (!helper) shipHelpers.set(key, (helper = renderShipHelper(platform)));
  return helper;
}

/** The shipping helper: its file name on the node, its text and the text's sha256 (hex). */
export interface ShipHelper {
  name: string;
  content: string;
  sha256: string;
}

/** {@link shipHelper}'s renders by platform family and state directory (the only facts the text depends on). */
const shipHelpers = new Map<string, ShipHelper>();

/** Renders {@link shipHelper}'s text for `platform`. Pure. */
function renderShipHelper(platform: Platform): ShipHelper {
  const sum = sha256Command(platform);
  const state = platform.stateDir;
  const content = [
    "# fleetkit shipping helper (roles/shipping.ts), run as root in the node user's home:",
    "#   sh HELPER i DIR INSTALL_SHA256 UNINSTALL_SHA256 COPY   install the bundle DIR (<role>.<hash>) copied by COPY",
    "#   sh HELPER u DIR                                        uninstall it",
    "set -e",
    `b=${state}/bundles u=${NODE_BUNDLE_DIR} n=$2`,
    // The lines pass plain words; anything else (a path, an empty name) is refused before it is used.
    `case $n in "" | .* | *[!a-z0-9.-]*) echo "fleetkit: shipping helper: bad bundle name $n" >&2; exit 2 ;; esac`,
    `d="$b/$n" s="$u/$n" r="\${n%%.*}"`,
    // Root's copy was checked when it was placed, whole (by one rename), in a directory only root writes.
    "if [ \"$1\" = u ]; then",
    '  if [ -f "$d/uninstall.sh" ]; then sh "$d/uninstall.sh"; rm -rf "$d"',
    // No script and no role marker: the role is not installed (an uninstall that already ran); as the scripts do.
    `  elif ! [ -e "${state}/roles/$r.hash" ]; then echo "fleetkit: $r removed"`,
    `  else echo "fleetkit: the uninstall script of bundle $n is not in $d on this node; nothing was removed (README: forgetting a node)" >&2; exit 1; fi`,
    "  exit 0",
    "fi",
    `i=$3 x=$4 c=$5`,
    // k DIR: both scripts there and their sha256 as rendered (a missing file is a mismatch, quietly).
    `k() { [ "$(${sum} <"$1/install.sh")" = "$i  -" ] && [ "$(${sum} <"$1/uninstall.sh")" = "$x  -" ]; } 2>/dev/null`,
    // Root's copy is checked, not the user's files, so nothing the user's processes write between check and use runs.
    'if ! k "$d"; then',
    `  [ -d "$s" ] || { echo "fleetkit: bundle $n is not in ~/$s on this node; the copy before this command did not happen (pulumi up --replace the URN of $c)" >&2; exit 1; }`,
    '  mkdir -p "$b"; umask 077; rm -rf "$d.new"; mkdir "$d.new"; cp "$s/install.sh" "$s/uninstall.sh" "$d.new/"',
    `  k "$d.new" || { rm -rf "$d.new"; echo "fleetkit: bundle $n in ~/$s does not match its sha256; nothing was run" >&2; exit 1; }`,
    '  rm -rf "$d"; mv "$d.new" "$d"',
    "fi",
    // The node's copy sends unchanged roles' directories too: every user copy of this role goes.
    'rm -rf "$u/$r."*',
    'sh "$d/install.sh"',
    'for o in "$b/$r."*; do [ "$o" = "$d" ] || rm -rf "$o"; done',
    "",
  ].join("\n");
  const sha256 = sha256Hex(content);
  return { name: `_ship.${sha256.slice(0, 16)}`, content, sha256 };
}

/**
 * The install and uninstall commands of `bundle` on `node`, and the files they need (see the module doc):
 * on Linux and macOS each line makes sure root's copy of the platform's {@link shipHelper} is there and whole,
 * then hands it the bundle directory, the scripts' sha256 and the name of the copy to replace when the files
 * did not arrive. Pure: the same bundle always gives the same text.
 * @throws Error for {@link remoteInvocation}'s reasons on Windows nodes, or when a value is not a plain sh word.
 */
export function bundleShipping(node: FleetNode, bundle: Bundle): BundleShipping {
  if (!shipsBundleFiles(node)) {
    const inv = remoteInvocation(node, bundle.target, bundle.install);
    return { create: inv.command, delete: remoteCommand(node, bundle.target, bundle.uninstall), stdinPrefix: inv.stdinPrefix };
  }
  const dir = `${bundle.role}.${bundle.hash}`;
  const platform = platformFor(node);
  const state = platform.stateDir;
  const helper = shipHelper(platform);
  const install = sha256Hex(bundle.install);
  const uninstall = sha256Hex(bundle.uninstall);
  const copy = bundleCopyName(node, bundle.role);
  // The lines use no single quotes, so `sh -c '…'` adds no escapes, and leave plain words unquoted: they
  // are every role's state and diff (issue 15), each byte counted 2,000 times at 500 nodes. So every value
  // must be a plain word: the role and node hostname labels (the loader checks them), the hashes hex, the paths fixed.
  for (const word of [dir, state, copy]) {
    if (!PLAIN_WORD.test(word)) throw new Error(`bundleShipping: ${JSON.stringify(word)} is not a plain sh word (a fleetkit bug: role names are hostname labels)`);
  }
  const h = `h=${state}/${helper.name}`;
  // Root's copy of the helper, from the node's copy ($u), checked; then the helper does the rest. The
  // temporary name is this shell's ($$): Pulumi runs a node's independent installs at the same time.
  const fetch =
    `[ -f $h ]||{ u=${NODE_BUNDLE_DIR}/\${h##*/};t=$h.$$;mkdir -p \${h%/*};umask 077;cp $u $t 2>/dev/null&&[ "$(${sha256Command(platform)} <$t)" = "${helper.sha256}  -" ]&&mv $t $h` +
    `||{ rm -f $t;echo "fleetkit: no whole ~/$u on this node; nothing was run (pulumi up --replace the URN of ${copy})">&2;exit 1;};}`;
  const create = `${h};${fetch};sh $h i ${dir} ${install} ${uninstall} ${copy}`;
  // An uninstall needs root's helper, there since this role's install ran; without it and without the role's marker the role is gone.
  const del =
    `${h};[ -f $h ]&&exec sh $h u ${dir};[ -e \${h%/*}/roles/${bundle.role}.hash ]&&{ echo "fleetkit: no $h on this node; nothing was removed (README: forgetting a node)">&2;exit 1;};` +
    `echo "fleetkit: ${bundle.role} removed"`;
  return {
    files: { dir, "install.sh": bundle.install, "uninstall.sh": bundle.uninstall, helper: { name: helper.name, content: helper.content } },
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
  return placeWhole(localDir, files.dir, (tmp) => {
    writeFileSync(join(tmp, "install.sh"), files["install.sh"], { mode: 0o600 });
    writeFileSync(join(tmp, "uninstall.sh"), files["uninstall.sh"], { mode: 0o600 });
  });
}

/**
 * The content-addressed directory `<parent>/<name>` (mode 0700), made whole: left as it is when it exists (its
 * name is its content's hash), else `fill` writes a fresh temporary directory beside it that is renamed into
 * place, so a crash or a parallel run never leaves half of one. Returns its absolute path.
 * @throws what `fill` or the file system throws, after removing the temporary directory (unless another run
 *   renamed the same content into place first).
 */
function placeWhole(parent: string, name: string, fill: (tmp: string) => void): string {
  const target = join(parent, name);
  if (existsSync(target)) return target;
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  const tmp = mkdtempSync(join(parent, `.${name}.`));
  try {
    fill(tmp);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
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
  /** The local directory `<role>.<hash>` its files were written to; undefined = inline (Windows). */
  localDir?: string;
  /**
   * For a role with a copy of its own ({@link ownsBundleCopy}), the local `bundles` directory that copy sends
   * ({@link writeNodeBundles} of this role alone); undefined for the others, whose files travel in the node's copy.
   */
  copyDir?: string;
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
  const files = shipping.files;
  const dir = files ? writeBundleFiles(localDir, shipping) : undefined;
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
      ...(dir ? { localDir: dir } : {}),
      ...(files && ownsBundleCopy(node, role) ? { copyDir: writeNodeBundles(localDir, [files.dir], files.helper) } : {}),
    },
  };
}

/**
 * Writes the directory a node's copy sends: `<localDir>/nodes/<id>/bundles/` holding the platform's shipping
 * `helper` ({@link shipHelper}, named by its hash) and `<role>.<hash>/` for each of `dirs` (directory names
 * already written by {@link writeBundleFiles} under `localDir`), whose files are hard links to those (a copy
 * where the file system refuses a link). `<id>` is the sha256 of the helper's and the sorted directories'
 * names, so the directory is content-addressed like the role directories: when it exists it is left as it
 * is, otherwise it is built in a temporary directory renamed into place (never half a directory).
 * @returns the absolute path of its `bundles` directory (the copy's source; named `bundles` so that it lands
 *   as {@link NODE_BUNDLE_DIR} when sent to {@link NODE_COPY_REMOTE_PATH}).
 * @throws Error when a role directory is missing or the directory cannot be written.
 */
export function writeNodeBundles(localDir: string, dirs: readonly string[], helper: Pick<ShipHelper, "name" | "content">): string {
  const names = [...dirs].sort();
  const id = sha256Hex([helper.name, ...names].join("\n"));
  const target = placeWhole(join(localDir, "nodes"), id, (tmp) => {
    mkdirSync(join(tmp, "bundles"), { mode: 0o700 });
    writeFileSync(join(tmp, "bundles", helper.name), helper.content, { mode: 0o600 });
    for (const dir of names) {
      mkdirSync(join(tmp, "bundles", dir), { mode: 0o700 });
      for (const file of ["install.sh", "uninstall.sh"]) {
        const from = join(localDir, dir, file);
        const to = join(tmp, "bundles", dir, file);
        try {
          linkSync(from, to);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") throw err;
          copyFileSync(from, to);
        }
      }
    }
  });
  return join(target, "bundles");
}

/** A node's bundles once shipped ({@link shipNode}). */
export interface ShippedNode {
  /** Each role's shipped bundle, in the order rendered. */
  bundles: ShippedBundle[];
  /**
   * The local directory the node's copy (`<node>-bundles`) sends ({@link writeNodeBundles}): every role's
   * files but those with a copy of their own ({@link ownsBundleCopy}); undefined when there is none to send
   * (a Windows node, or no such role).
   */
  copyDir?: string;
}

/**
 * Ships a node's rendered bundles ({@link shipBundle} each) and writes the directory its copy sends.
 * @throws Error for {@link shipBundle}'s and {@link writeNodeBundles}'s reasons.
 */
export function shipNode(node: FleetNode, bundles: readonly Bundle[], localDir: string): ShippedNode {
  const shipped = bundles.map((b) => shipBundle(node, b, localDir));
  const dirs = shipped.filter((b) => b.shipping.localDir !== undefined && !ownsBundleCopy(node, b.role)).map((b) => basename(b.shipping.localDir!));
  return dirs.length ? { bundles: shipped, copyDir: writeNodeBundles(localDir, dirs, shipHelper(platformFor(node))) } : { bundles: shipped };
}
