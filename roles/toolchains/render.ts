/**
 * Role `toolchains`: icecc environment tarballs for the fleet's compile cluster, built on builder nodes and
 * copied to every Linux iceccd node, plus the `ICECC_VERSION` each node's compiles use.
 *
 * Build (this role's bundle, on each node with role `toolchains`): `<binDir>/icecc-env-build` runs
 * `icecc-create-env` for the node's gcc/g++ and clang (each when installed), and for each installed gcc cross
 * compiler to another arch (`<triple>-gcc`/`<triple>-g++`, {@link GNU_TRIPLES}; the role installs them, to every
 * other arch the fleet's Linux daemons run, {@link CROSS_PACKAGES}), and stores
 * `/opt/icecc-envs/<stem>-<md5>.tar.gz` ({@link tarballStem}: `<arch>-<compiler>` native,
 * `<arch>-gcc-<target>` cross), `<md5>` being icecc-create-env's content hash of the toolchain's files.
 * icecc-create-env's tarball bytes differ on every run (fresh mtimes), so an unchanged toolchain keeps the
 * existing file rather than the new bytes: same name, same sha256, never copied again. icecc-create-env
 * stores any gcc it packs as usr/bin/gcc and g++ (client/icecc-create-env.in), and iceccd runs
 * `/usr/bin/gcc`, `g++` or `clang` inside the environment whatever the client's compiler was called
 * (services/comm.cpp `remote_compiler_name`), so a packed cross compiler compiles for its target there.
 * A builder's tarballs run on its own arch; an arch the fleet's iceccd nodes run with no builder of that
 * arch is listed by {@link toolchainsPlan} as `missing` (a note, not an error: those nodes' icecc packs
 * their local compiler itself and compiles among nodes of their arch).
 *
 * Distribution (run by the Pulumi component or a zx script after the build, since the tarball names and
 * sha256s exist only then): read each builder's `/opt/icecc-envs/manifest-<arch>` ({@link parseManifest}),
 * then for every receiving node and tarball ask the node's receive program, `sudo <binDir>/fleetkit-toolchain-receive
 * ARCH COMPILER TARGET FILE SHA256 check`, whether it is there; only on `missing`, stream the file from the
 * builder into the same program without `check` ({@link toolchainReceiveProgram}: checks its arguments,
 * verifies the sha256 before anything is replaced, links `current-<stem>.tar.gz`, removes that stem's
 * superseded tarballs).
 *
 * Receiver files ({@link toolchainReceiverFiles}): the iceccd role installs the receive program and the
 * environment file on every Linux iceccd node of a fleet with a builder, so each distribution command
 * stays a short line (no script travels with each tarball) and the env file changes only with the fleet.
 *
 * Environment (`<configDir>/icecc-env.sh`, a sourced sh file, rendered purely from the fleet, described in
 * its header, templates/toolchains/icecc-env.sh): resolves the `current-*` links when sourced, so the bundle
 * never needs the deploy-time hashes. What icecc parses (icecream client/remote.cpp `parse_icecc_version`,
 * README "Cross-Compiling using icecream" and "... for multiple targets in the same environment"):
 * comma-separated entries `[<platform>:]<tarball>[=<prefix>]`; `<platform>` is where the tarball's compiler
 * runs (icecc's README: "you point out on which platforms your toolchain runs, you do not indicate for which
 * target code will be generated"), defaulting to the client machine's; once any entry has `=`, an entry
 * without one is used only by compilers without a prefix (`gcc`, `clang`), and one with `=<prefix>` only by
 * compilers named `<prefix>-…`; the first entry per platform wins. The scheduler sends a job only to a
 * daemon whose platform can run one of the job's tarballs (scheduler/scheduler.cpp `envs_match`).
 *
 * macOS iceccd nodes receive nothing: a Linux toolchain cannot run on a macOS daemon and builds no Mach-O.
 */
import type { ArchName, Fleet, FleetNode } from "../../model/fleet.js";
import { ARCH_NAMES } from "../../model/schema.js";
import { readTemplate, renderTemplate, sh, shQuote, type RoleParts } from "../bundle.js";
import { shWord } from "../escape.js";
import { iceccBinary } from "../iceccd/render.js";
import { platformFor } from "../platform.js";
import type { BundleFile } from "../types.js";

/** Where tarballs live on builders and receivers (the reference fleet's path). */
export const TOOLCHAIN_DIR = "/opt/icecc-envs";

/** Compilers packed when installed on a builder. */
export const COMPILERS = ["gcc", "clang"] as const;
export type Compiler = (typeof COMPILERS)[number];

/**
 * The GNU triple of each arch's Linux toolchain: the prefix of its cross compilers' names (Debian's
 * `gcc-aarch64-linux-gnu` installs `aarch64-linux-gnu-gcc`, `gcc-x86-64-linux-gnu` installs
 * `x86_64-linux-gnu-gcc`; Arch Linux's `aarch64-linux-gnu-gcc` the same name). icecc takes a compiler's
 * prefix to be its name up to the last `-` (icecream services/util.cpp `find_prefix`), so
 * `aarch64-linux-gnu-gcc` selects the ICECC_VERSION entries ending in `=aarch64-linux-gnu`.
 */
export const GNU_TRIPLES: Readonly<Record<ArchName, string>> = { x86_64: "x86_64-linux-gnu", aarch64: "aarch64-linux-gnu" };

/**
 * The packages of the gcc cross compilers (gcc and g++) to `target`, per package manager: Debian's and Raspberry
 * Pi OS's `gcc-<triple>`/`g++-<triple>` (with `_` as `-`: `gcc-x86-64-linux-gnu`), Arch Linux's
 * `aarch64-linux-gnu-gcc` (x86_64 hosts only; Arch Linux ARM packages none to x86_64, so such a builder packs
 * no cross tarball and its nodes' x86_64-target compiles go to x86_64 daemons only).
 */
export const CROSS_PACKAGES: Readonly<Record<ArchName, { apt: string[]; pacman: string[] }>> = {
  aarch64: { apt: ["gcc-aarch64-linux-gnu", "g++-aarch64-linux-gnu"], pacman: ["aarch64-linux-gnu-gcc"] },
  x86_64: { apt: ["gcc-x86-64-linux-gnu", "g++-x86-64-linux-gnu"], pacman: [] },
};

/** One line of a builder's manifest: a current tarball. */
export interface ToolchainTarball {
  /** Where the toolchain runs (the builder's arch): the `platform` of its ICECC_VERSION entry. */
  arch: ArchName;
  compiler: Compiler;
  /** What the compiler makes code for: `arch` for a native compiler, another arch for a gcc cross compiler. */
  target: ArchName;
  /**
   * File name in {@link TOOLCHAIN_DIR}: `<stem>-<md5>.tar.gz`, the stem ({@link tarballStem}) being
   * `<arch>-<compiler>` (native) or `<arch>-<compiler>-<target>` (cross).
   */
  file: string;
  /** sha256 (hex) of the file. */
  sha256: string;
}

/** Who builds what, who receives what, and what cannot be built. */
export interface ToolchainsPlan {
  /** One entry per builder node (role toolchains): the arch it builds for. */
  builders: { node: string; arch: ArchName }[];
  /** Per arch with a builder: the Linux iceccd nodes that receive its tarballs (the builder itself excluded). */
  distribution: { arch: ArchName; from: string; to: string[] }[];
  /** Arches that Linux iceccd nodes run but no builder does: their tarballs cannot be built. */
  missing: { arch: ArchName; nodes: string[]; reason: string }[];
  /** iceccd nodes that receive no tarball, with the reason. */
  skipped: { node: string; reason: string }[];
}

const isLinux = (n: FleetNode) => n.os !== "macos";

/** The toolchains plan of `fleet`. Pure. */
export function toolchainsPlan(fleet: Fleet): ToolchainsPlan {
  const builders = fleet.nodes.filter((n) => n.roles.includes("toolchains"));
  const daemons = fleet.nodes.filter((n) => n.roles.includes("iceccd"));
  const receivers = daemons.filter(isLinux);
  const distribution: ToolchainsPlan["distribution"] = [];
  const missing: ToolchainsPlan["missing"] = [];
  for (const arch of ARCH_NAMES) {
    const from = builders.find((b) => b.arch === arch);
    const needing = receivers.filter((n) => n.arch === arch).map((n) => n.name);
    if (from) distribution.push({ arch, from: from.name, to: receivers.filter((n) => n.name !== from.name).map((n) => n.name) });
    else if (needing.length) {
      missing.push({
        arch,
        nodes: needing,
        reason: `no ${arch} builder: icecc-create-env packs the compilers of the machine it runs on; give one always-on ${arch} Linux node (e.g. ${needing[0]}) the role toolchains to build ${arch} tarballs`,
      });
    }
  }
  const skipped = daemons.filter((n) => !isLinux(n)).map((n) => ({ node: n.name, reason: "macOS: a Linux toolchain cannot run on a macOS iceccd and builds no Mach-O; its icecc packs its own compiler" }));
  return { builders: builders.map((b) => ({ node: b.name, arch: b.arch })), distribution, missing, skipped };
}

/** Human-readable lines of {@link toolchainsPlan} for the plan output. */
export function describeToolchainsPlan(fleet: Fleet): string[] {
  const plan = toolchainsPlan(fleet);
  return [
    ...plan.distribution.map((d) => `toolchains ${d.arch}: built on ${d.from}, copied to ${d.to.length ? d.to.join(", ") : "no other node"}`),
    ...plan.missing.map((m) => `toolchains ${m.arch}: not built (${m.reason}); ${m.nodes.join(", ")} compile with their local compiler`),
    ...plan.skipped.map((s) => `toolchains: ${s.node} receives none (${s.reason})`),
  ];
}

/** Path of the environment file on `node`. */
export function toolchainEnvPath(node: FleetNode): string {
  return `${platformFor(node).configDir}/icecc-env.sh`;
}

/** Arches that have a builder in `fleet`, in ARCH_NAMES order. */
function builtArches(fleet: Fleet): ArchName[] {
  return ARCH_NAMES.filter((a) => fleet.nodes.some((n) => n.roles.includes("toolchains") && n.arch === a));
}

/** Where the node-side scripts put things; defaults are the real paths, tests point them into a temp dir. */
export interface ToolchainPaths {
  /** Tarball directory (default {@link TOOLCHAIN_DIR}). */
  envDir?: string;
  /** Environment file (default {@link toolchainEnvPath}). */
  envFile?: string;
}

/**
 * The sourced environment file for a Linux iceccd node (templates/toolchains/icecc-env.sh, whose header says
 * what each variable holds): `ICECC_VERSION`, `FLEET_ICECC_VERSION_GCC`, `FLEET_ICECC_VERSION_CLANG` and one
 * `FLEET_ICECC_VERSION_<TARGET>` per other arch (`X86_64`, `AARCH64`) for `<triple>-gcc` cross compiles.
 * Depends only on the node (its name and arch); which tarballs exist is read from the links when sourced.
 */
export function toolchainEnvFile(node: FleetNode, paths: ToolchainPaths = {}): BundleFile {
  const envDir = paths.envDir ?? TOOLCHAIN_DIR;
  const path = paths.envFile ?? toolchainEnvPath(node);
  const others = ARCH_NAMES.filter((a) => a !== node.arch).map((other) => ({ other, triple: GNU_TRIPLES[other], upper: other.toUpperCase() }));
  return {
    path,
    mode: 0o644,
    owner: "root",
    kind: "shell",
    content: renderTemplate("toolchains/icecc-env.sh", { node: node.name, arch: node.arch, envDir, path, others }),
  };
}

/** The build command a builder runs (`<binDir>/icecc-env-build`). `envDir` is for tests. */
export function toolchainBuildScript(node: FleetNode, envDir = TOOLCHAIN_DIR): string {
  const crosses = ARCH_NAMES.filter((a) => a !== node.arch).map((target) => ({ target, triple: GNU_TRIPLES[target] }));
  return renderTemplate("toolchains/icecc-env-build.sh", { node: node.name, arch: node.arch, envDir, crosses, createEnv: iceccBinary(node, "icecc-create-env") });
}

const SHA_RE = /^[0-9a-f]{64}$/;
const MD5_RE = /^[0-9a-f]{32}$/;

/**
 * The name stem of a tarball (and of its `current-<stem>.tar.gz` link): `<arch>-<compiler>` for a native
 * compiler, `<arch>-<compiler>-<target>` for a cross compiler. No stem is a prefix of another's file name
 * followed by 32 hex digits, so pruning one stem's old files never touches another's.
 */
export function tarballStem(t: Pick<ToolchainTarball, "arch" | "compiler" | "target">): string {
  return t.target === t.arch ? `${t.arch}-${t.compiler}` : `${t.arch}-${t.compiler}-${t.target}`;
}

const MANIFEST_FORMAT = '"<arch> <compiler> <target> <stem>-<md5>.tar.gz <sha256>" (stem <arch>-<compiler>, or <arch>-gcc-<target> for a cross compiler; the older "<arch> <compiler> <file> <sha256>" means target = arch)';

/**
 * Parses a builder's `manifest-<arch>`: `arch compiler target file sha256` per line (what
 * templates/toolchains/icecc-env-build.sh writes), or the older `arch compiler file sha256` (target = arch).
 * Only gcc has cross tarballs (target ≠ arch): one clang binary already targets every arch.
 * @throws Error naming the line when a field is malformed (the values end up inside scripts).
 */
export function parseManifest(text: string): ToolchainTarball[] {
  const isArch = (v: string | undefined): v is ArchName => (ARCH_NAMES as readonly string[]).includes(v ?? "");
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((line, i) => {
      const fields = line.trim().split(/\s+/);
      const [arch, compiler, target, file, sha256] = fields.length === 4 ? [fields[0], fields[1], fields[0], fields[2], fields[3]] : fields;
      const known = fields.length <= 5 && isArch(arch) && isArch(target) && (COMPILERS as readonly string[]).includes(compiler!) && (target === arch || compiler === "gcc");
      const stem = known ? tarballStem({ arch, compiler: compiler as Compiler, target }) : "";
      const md5 = known && file?.startsWith(`${stem}-`) && file.endsWith(".tar.gz") ? file.slice(stem.length + 1, -".tar.gz".length) : "";
      if (!known || !MD5_RE.test(md5) || !SHA_RE.test(sha256 ?? "")) throw new Error(`toolchain manifest line ${i + 1}: expected ${MANIFEST_FORMAT}, got "${line.slice(0, 200)}"`);
      return { arch: arch as ArchName, compiler: compiler as Compiler, target: target as ArchName, file: file!, sha256: sha256! };
    });
}

function checkTarball(t: ToolchainTarball): void {
  parseManifest(`${t.arch} ${t.compiler} ${t.target} ${t.file} ${t.sha256}`);
}

/** The prelude helpers the receive program uses (templates/common/prelude.sh). */
const RECEIVE_HELPERS = ["fk_log", "fk_die", "fk_rm", "fk_sha256"];

/**
 * The prelude's opening settings (`set -eu`, umask, `FK_CHANGED=0`: its lines before the first function) and
 * the definitions of the helper functions `names`, copied from templates/common/prelude.sh. The receive
 * program carries only these, not the whole prelude: the iceccd bundle travels inline on a Windows command
 * line (roles/bundle.ts WINDOWS_COMMAND_LINE_LIMIT), where 8 KB more would not fit.
 * @throws Error when the prelude defines a name not as `name() { … }` on one line or up to a line `}`.
 */
function preludePart(names: string[]): string {
  const lines = readTemplate("common/prelude.sh").split("\n");
  const head = lines.slice(0, lines.findIndex((l) => /^fk_\w+\(\) \{/.test(l))).filter((l) => l.trim() !== "" && !l.startsWith("#"));
  const defs = names.map((name) => {
    const start = lines.findIndex((l) => l.startsWith(`${name}() {`));
    const end = start < 0 ? -1 : lines[start]!.trimEnd().endsWith("}") ? start : lines.indexOf("}", start);
    if (end < 0) throw new Error(`templates/common/prelude.sh defines no ${name}() { … } block (the toolchain receive program needs it)`);
    return lines.slice(start, end + 1).join("\n");
  });
  return ["# --- from the fleetkit prelude ---", ...head, ...defs].join("\n");
}

/** Path of the receive program on `node` (`<binDir>/fleetkit-toolchain-receive`, installed by the iceccd role). */
export function toolchainReceivePath(node: FleetNode): string {
  return `${platformFor(node).binDir}/fleetkit-toolchain-receive`;
}

/**
 * The receive program of a Linux iceccd node (a root-owned 0755 sh file with the prelude helpers it uses, rendered from the
 * fleet only): `fleetkit-toolchain-receive ARCH COMPILER TARGET FILE SHA256`, run as root with the tarball on
 * stdin. It refuses arguments that {@link parseManifest} would refuse (they come from a builder's manifest over
 * SSH), verifies the sha256 before anything is replaced, links `current-<stem>.tar.gz` ({@link tarballStem}),
 * removes that stem's superseded tarballs, and prints `fleetkit: toolchains changed|unchanged` (templates/toolchains/receive.sh).
 * `paths` is for tests (a temp tarball directory and program path). Pure.
 */
export function toolchainReceiveProgram(node: FleetNode, paths: ToolchainPaths & { program?: string } = {}): BundleFile {
  const path = paths.program ?? toolchainReceivePath(node);
  const view = {
    path,
    envDir: paths.envDir ?? TOOLCHAIN_DIR,
    archNames: [...ARCH_NAMES],
    archList: ARCH_NAMES.join(", "),
    compilers: [...COMPILERS],
    compilerList: COMPILERS.join(", "),
  };
  return {
    path,
    mode: 0o755,
    owner: "root",
    kind: "shell",
    content: [
      "#!/bin/sh",
      sh`# fleetkit toolchain receive program of node ${node.name}. Rendered by fleetkit; do not edit.`,
      preludePart(RECEIVE_HELPERS),
      renderTemplate("toolchains/receive.sh", view).trimEnd(),
      "",
    ].join("\n"),
  };
}

/**
 * What the iceccd role installs on a Linux node of a fleet that builds toolchains: the receive program
 * ({@link toolchainReceiveProgram}) and the environment file ({@link toolchainEnvFile}); none on macOS or in
 * a fleet without a builder. Pure.
 */
export function toolchainReceiverFiles(fleet: Fleet, node: FleetNode): BundleFile[] {
  if (!isLinux(node) || builtArches(fleet).length === 0) return [];
  return [toolchainReceiveProgram(node), toolchainEnvFile(node)];
}

/**
 * The root command line (for roles/bundle.ts `remoteCommand`) that runs the receive program at `program` for
 * tarball `t` (`<program> ARCH COMPILER TARGET FILE SHA256`), each word quoted where sh needs it (roles/escape.ts
 * `shWord`: the fields passed {@link parseManifest}, so they are plain words; a test path with spaces is quoted).
 * @throws Error when `t` is malformed (see {@link parseManifest}).
 */
export function toolchainReceiveCommand(t: ToolchainTarball, program: string): string {
  return [program, ...receiveArguments(t)].map(shWord).join(" ");
}

/**
 * The receive program's arguments for tarball `t`: ARCH COMPILER TARGET FILE SHA256, plain words (checked).
 * @throws Error when `t` is malformed (see {@link parseManifest}).
 */
export function receiveArguments(t: ToolchainTarball): string[] {
  checkTarball(t);
  return [t.arch, t.compiler, t.target, t.file, t.sha256];
}

/** Renders the toolchains role (the builder side) for one node. Pure. */
export function renderToolchains(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  // The cross compilers to every other arch the fleet's Linux daemons run, so this builder packs those
  // tarballs too (and its own compiles can target them).
  const targets = ARCH_NAMES.filter((a) => a !== node.arch && fleet.nodes.some((n) => n.roles.includes("iceccd") && isLinux(n) && n.arch === a));
  const pkgs = {
    apt: ["icecc", "gcc", "g++", ...targets.flatMap((t) => CROSS_PACKAGES[t].apt)],
    pacman: ["icecream", "gcc", ...(node.arch === "x86_64" ? targets.flatMap((t) => CROSS_PACKAGES[t].pacman) : [])],
  };
  const build = `${p.binDir}/icecc-env-build`;
  const plan = toolchainsPlan(fleet);
  const notes = plan.missing.map((m) => `fk_log ${shQuote(`note: ${m.arch} toolchains are not built: ${m.reason}`)}`);
  return {
    packages: p.packageList(pkgs),
    preInstall: p.installPackages(pkgs),
    files: [
      { path: build, mode: 0o755, owner: "root", kind: "shell", content: toolchainBuildScript(node) },
    ],
    postInstall: [
      sh`fk_tc_out=$(${build})`,
      `printf '%s\\n' "$fk_tc_out" | sed 's/^/fleetkit: toolchain /' >&2`,
      'case $fk_tc_out in *"built "*) FK_CHANGED=1 ;; esac',
      ...notes,
    ].join("\n"),
    // The tarballs stay: other nodes may still compile with them; `rm -rf /opt/icecc-envs` frees the space.
    postUninstall: `fk_log ${shQuote(`kept the toolchain tarballs in ${TOOLCHAIN_DIR}`)}`,
    services: [],
  };
}


/** The builders `node` receives toolchain tarballs from (none for macOS and for builders themselves). */
export function toolchainSources(fleet: Fleet, node: FleetNode): { from: string; arch: ArchName }[] {
  return toolchainsPlan(fleet)
    .distribution.filter((d) => d.to.includes(node.name))
    .map((d) => ({ from: d.from, arch: d.arch }));
}
