// @needs icecc-create-env gcc g++ clang aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ chroot file
/**
 * Role toolchains: the plan (who builds, who receives, what cannot be built) for the real fleets, the
 * builder bundle per OS, and the real thing on this machine: icecc-create-env packs the installed gcc and
 * clang through the rendered build command, a rebuild keeps the tarballs byte-identical, the rendered
 * receive script installs them on a "node" directory (verified by sha256, skipped when present), and the
 * rendered environment file yields the platform-mapped ICECC_VERSION.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { linkSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { renderBundle } from "../../roles/index.js";
import { rootArgvCommand, sha256Hex } from "../../roles/bundle.js";
import {
  describeToolchainsPlan,
  parseManifest,
  toolchainBuildScript,
  toolchainEnvFile,
  toolchainReceiveCommand,
  toolchainReceiveProgram,
  toolchainReceiverFiles,
  toolchainsPlan,
  tarballStem,
  type ToolchainTarball,
} from "../../roles/toolchains/render.js";

const mesh = loadFleet("fleet.yaml");
const remote = loadFleet("examples/remote-tasks.fleet.yaml");
const shared = loadFleet("examples/shared-fs-queue.fleet.yaml");
const node = (fleet: Fleet, name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;
/** The mesh without rpi1's toolchains role: no aarch64 builder. */
const meshX86: Fleet = { ...mesh, nodes: mesh.nodes.map((n) => (n.name === "rpi1" ? { ...n, roles: n.roles.filter((r) => r !== "toolchains"), builder: false } : n)) };
const fleets = { mesh, meshX86 };

const NO_ARM =
  "no aarch64 builder: icecc-create-env packs the compilers of the machine it runs on; give one always-on aarch64 Linux node (e.g. rpi1) the role toolchains to build aarch64 tarballs";
const MANIFEST_FORMAT =
  '"<arch> <compiler> <target> <stem>-<md5>.tar.gz <sha256>" (stem <arch>-<compiler>, or <arch>-gcc-<target> for a cross compiler; the older "<arch> <compiler> <file> <sha256>" means target = arch)';
const md5 = "a".repeat(32);
const sha = "b".repeat(64);

describe("toolchains plan", () => {
  it("nine-machine fleet: x86_64 built on the orchestrator, aarch64 on rpi1, each copied to every other Linux daemon", () => {
    expect(toolchainsPlan(mesh)).toEqual({
      builders: [{ node: "arch-orchestrator", arch: "x86_64" }, { node: "rpi1", arch: "aarch64" }],
      distribution: [
        { arch: "x86_64", from: "arch-orchestrator", to: ["rpi1", "rpi2", "rpi3", "windows-desktop", "windows-laptop"] },
        { arch: "aarch64", from: "rpi1", to: ["arch-orchestrator", "rpi2", "rpi3", "windows-desktop", "windows-laptop"] },
      ],
      missing: [],
      skipped: ["macbook1", "imac", "macbook2"].map((n) => ({ node: n, reason: "macOS: a Linux toolchain cannot run on a macOS iceccd and builds no Mach-O; its icecc packs its own compiler" })),
    });
    expect(describeToolchainsPlan(mesh).slice(0, 2)).toEqual([
      "toolchains x86_64: built on arch-orchestrator, copied to rpi1, rpi2, rpi3, windows-desktop, windows-laptop",
      "toolchains aarch64: built on rpi1, copied to arch-orchestrator, rpi2, rpi3, windows-desktop, windows-laptop",
    ]);
  });

  it("without an aarch64 builder, aarch64 is listed as not built, with the fix", () => {
    const plan = toolchainsPlan(meshX86);
    expect([plan.distribution, plan.missing]).toEqual([
      [{ arch: "x86_64", from: "arch-orchestrator", to: ["rpi1", "rpi2", "rpi3", "windows-desktop", "windows-laptop"] }],
      [{ arch: "aarch64", nodes: ["rpi1", "rpi2", "rpi3"], reason: NO_ARM }],
    ]);
    expect(describeToolchainsPlan(meshX86)[1]).toBe(`toolchains aarch64: not built (${NO_ARM}); rpi1, rpi2, rpi3 compile with their local compiler`);
  });

  it.each([["remote-tasks"], ["shared-fs-queue"]])("%s: no icecc, nothing to build", (label) => {
    expect(toolchainsPlan(label === "remote-tasks" ? remote : shared)).toEqual({ builders: [], distribution: [], missing: [], skipped: [] });
  });
});

describe("role toolchains: the builder bundle", () => {
  it.each([
    ["mesh", "arch-orchestrator", "fk_pacman_install icecream gcc aarch64-linux-gnu-gcc", false],
    ["mesh", "rpi1", "fk_apt_install icecc gcc g++ gcc-x86-64-linux-gnu g++-x86-64-linux-gnu", false],
    ["meshX86", "arch-orchestrator", "fk_pacman_install icecream gcc aarch64-linux-gnu-gcc", true],
  ] as const)("%s fleet: %s", (label, name, pkgLine, noteArm) => {
    const fleet = fleets[label];
    const b = renderBundle(fleet, node(fleet, name), "toolchains");
    const lines = b.install.split("\n");
    expect([b.target, b.secrets, b.services]).toEqual(["node", [], []]);
    expect(lines).toContain(pkgLine);
    expect(b.files.map((f) => [f.path, f.mode, f.kind])).toEqual([["/usr/local/lib/fleetkit/icecc-env-build", 0o755, "shell"]]);
    expect(b.files[0].content).toContain(`  if ! (cd "$work" && '/usr/bin/icecc-create-env' "$@") > "$work/$stem.log" 2>&1; then`);
    // The cross compiler to the other arch, packed when installed.
    const [other, triple] = name === "rpi1" ? ["x86_64", "x86_64-linux-gnu"] : ["aarch64", "aarch64-linux-gnu"];
    expect(b.files[0].content).toContain(`  build gcc '${other}' --gcc "$(command -v '${triple}'-gcc)" "$(command -v '${triple}'-g++)"\n`);
    expect(lines).toContain("fk_tc_out=$('/usr/local/lib/fleetkit/icecc-env-build')");
    expect(lines.includes(`fk_log 'note: aarch64 toolchains are not built: ${NO_ARM}'`)).toBe(noteArm);
  });

  it("adding a node changes neither the builder's bundle nor a receiver's toolchain files; an aarch64 builder drops the note", () => {
    const h = (f: Fleet) => renderBundle(f, node(f, "arch-orchestrator"), "toolchains").hash;
    // (A new node does change every iceccd bundle: its firewall admits the new daemon.)
    const tcFiles = (f: Fleet, name: string) => toolchainReceiverFiles(f, node(f, name));
    const rpi4: FleetNode = { ...node(mesh, "rpi3"), name: "rpi4", host: "rpi4" };
    const more = { ...mesh, nodes: [...mesh.nodes, rpi4] };
    expect(h(more)).toBe(h(mesh));
    expect([tcFiles(more, "rpi1"), tcFiles(more, "windows-desktop")]).toEqual([tcFiles(mesh, "rpi1"), tcFiles(mesh, "windows-desktop")]);
    expect(h(meshX86)).not.toBe(h(mesh));
    // The env file reads which tarballs exist when sourced: the same with or without an aarch64 builder.
    expect(tcFiles(meshX86, "windows-desktop")).toEqual(tcFiles(mesh, "windows-desktop"));
  });
});

describe("role iceccd: the receiver files", () => {
  it.each([
    ["arch-orchestrator", true],
    ["rpi1", true],
    ["windows-desktop", true],
    ["macbook1", false],
  ] as const)("fleet.yaml, %s: receive program and env file: %s", (name, has) => {
    const n = node(mesh, name);
    const b = renderBundle(mesh, n, "iceccd");
    const files = b.files.filter((f) => f.path.includes("toolchain-receive") || f.path.endsWith("icecc-env.sh"));
    expect(files).toEqual(has ? [toolchainReceiveProgram(n), toolchainEnvFile(n)] : []);
    if (has) expect(files.map((f) => [f.path, f.mode, f.owner])).toEqual([["/usr/local/lib/fleetkit/fleetkit-toolchain-receive", 0o755, "root"], ["/etc/fleetkit/icecc-env.sh", 0o644, "root"]]);
  });

  it("a fleet without a builder installs neither (nothing to receive)", () => {
    const noBuilder: Fleet = { ...mesh, nodes: mesh.nodes.map((n) => ({ ...n, roles: n.roles.filter((r) => r !== "toolchains") })) };
    expect(renderBundle(noBuilder, node(noBuilder, "rpi1"), "iceccd").files.map((f) => f.path).filter((p) => !p.includes("firewall"))).toEqual(["/etc/systemd/system/iceccd.service"]);
  });

  it("the receive command is the program's path and the five manifest fields, each a checked plain word (a path with a space is quoted)", () => {
    const t: ToolchainTarball = { arch: "x86_64", compiler: "gcc", target: "aarch64", file: `x86_64-gcc-aarch64-${md5}.tar.gz`, sha256: sha };
    expect(toolchainReceiveCommand(t, "/usr/local/lib/fleetkit/fleetkit-toolchain-receive")).toBe(
      `/usr/local/lib/fleetkit/fleetkit-toolchain-receive x86_64 gcc aarch64 x86_64-gcc-aarch64-${md5}.tar.gz ${sha}`,
    );
    expect(toolchainReceiveCommand(t, "/tmp/a b/receive")).toBe(`'/tmp/a b/receive' x86_64 gcc aarch64 x86_64-gcc-aarch64-${md5}.tar.gz ${sha}`);
    expect(() => toolchainReceiveCommand({ ...t, file: "../x" }, "/p")).toThrow(`toolchain manifest line 1: expected ${MANIFEST_FORMAT}`);
  });
});

describe("manifest", () => {
  it.each([
    ["a native tarball", `x86_64 gcc x86_64 x86_64-gcc-${md5}.tar.gz ${sha}`, { arch: "x86_64", compiler: "gcc", target: "x86_64", file: `x86_64-gcc-${md5}.tar.gz`, sha256: sha }],
    ["a cross tarball", `x86_64 gcc aarch64 x86_64-gcc-aarch64-${md5}.tar.gz ${sha}`, { arch: "x86_64", compiler: "gcc", target: "aarch64", file: `x86_64-gcc-aarch64-${md5}.tar.gz`, sha256: sha }],
    ["an aarch64 clang", `aarch64 clang aarch64 aarch64-clang-${md5}.tar.gz ${sha}`, { arch: "aarch64", compiler: "clang", target: "aarch64", file: `aarch64-clang-${md5}.tar.gz`, sha256: sha }],
    ["an older four-field line (target = arch)", `x86_64 gcc x86_64-gcc-${md5}.tar.gz ${sha}`, { arch: "x86_64", compiler: "gcc", target: "x86_64", file: `x86_64-gcc-${md5}.tar.gz`, sha256: sha }],
  ] as const)("parses %s", (_label, line, tarball) => {
    expect(parseManifest(`${line}\n\n`)).toEqual([tarball]);
  });
  it.each([
    ["an unknown arch", `armv7 gcc armv7 armv7-gcc-${md5}.tar.gz ${sha}`],
    ["an unknown target", `x86_64 gcc riscv64 x86_64-gcc-riscv64-${md5}.tar.gz ${sha}`],
    ["a file of another compiler", `x86_64 gcc x86_64 x86_64-clang-${md5}.tar.gz ${sha}`],
    ["a native file for a cross line", `x86_64 gcc aarch64 x86_64-gcc-${md5}.tar.gz ${sha}`],
    ["a cross file for a native line", `x86_64 gcc x86_64 x86_64-gcc-aarch64-${md5}.tar.gz ${sha}`],
    ["a cross file in an older line", `x86_64 gcc x86_64-gcc-aarch64-${md5}.tar.gz ${sha}`],
    ["a clang cross tarball", `x86_64 clang aarch64 x86_64-clang-aarch64-${md5}.tar.gz ${sha}`],
    ["a path in the name", `x86_64 gcc x86_64 ../x86_64-gcc-${md5}.tar.gz ${sha}`],
    ["a short sha256", `x86_64 gcc x86_64 x86_64-gcc-${md5}.tar.gz ${"b".repeat(63)}`],
    ["a shell word", `x86_64 gcc x86_64 x86_64-gcc-${md5}.tar.gz ${sha} ;rm`],
  ])("rejects %s", (_label, line) => {
    expect(() => parseManifest(line)).toThrow(`toolchain manifest line 1: expected ${MANIFEST_FORMAT}, got "${line}"`);
  });
});

// ---- real build, distribution and environment ------------------------------------------------------------

const root = mkdtempSync(join(tmpdir(), "fk-toolchains-"));
const builderDir = join(root, "builder");
const nodeDir = join(root, "node");
let built: ToolchainTarball[] = [];
let firstOut = "";
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The receive program as the iceccd bundle installs it, pointed at the temp "node" directory. */
const program = join(root, "fleetkit-toolchain-receive");
writeFileSync(program, toolchainReceiveProgram(node(mesh, "rpi1"), { envDir: nodeDir, program }).content, { mode: 0o755 });
/** Runs the program as the distribution does (`sh -c '<path> ARCH COMPILER TARGET FILE SHA256'`), `input` on stdin. */
const receive = (t: ToolchainTarball, input: string | Buffer) => spawnSync("sh", ["-c", toolchainReceiveCommand(t, program)], { input, encoding: "utf8" });

const runBuild = () => {
  const script = join(root, "icecc-env-build");
  writeFileSync(script, toolchainBuildScript(node(mesh, "arch-orchestrator"), builderDir), { mode: 0o755 });
  return execFileSync("sh", [script], { encoding: "utf8" });
};

describe("on this machine: icecc-create-env for real", () => {
  beforeAll(() => {
    firstOut = runBuild();
    built = parseManifest(readFileSync(join(builderDir, "manifest-x86_64"), "utf8"));
  }, 120_000);

  it("builds one content-named tarball per installed compiler, the aarch64 cross gcc included, and links each as current", () => {
    expect(built.map((t) => [t.compiler, t.target])).toEqual([["gcc", "x86_64"], ["clang", "x86_64"], ["gcc", "aarch64"]]);
    expect(firstOut).toBe(built.map((t) => `built ${t.file}\n`).join(""));
    for (const t of built) {
      expect(t.file).toMatch(new RegExp(`^${tarballStem(t)}-[0-9a-f]{32}\\.tar\\.gz$`));
      expect(sha256Hex(readFileSync(join(builderDir, t.file)))).toBe(t.sha256);
      expect(readlinkSync(join(builderDir, `current-${tarballStem(t)}.tar.gz`))).toBe(t.file);
    }
    expect(built.map(tarballStem)).toEqual(["x86_64-gcc", "x86_64-clang", "x86_64-gcc-aarch64"]);
    const listing = execFileSync("tar", ["-tzf", join(builderDir, built[0]!.file)], { encoding: "utf8" }).split("\n");
    expect(listing).toContain("usr/bin/gcc");
  });

  it("the cross tarball is a working aarch64 compiler: in a chroot of it, usr/bin/gcc makes an aarch64 object (icecc README's own check)", () => {
    const cross = built.find((t) => t.target === "aarch64")!;
    const tree = join(root, "cross-env");
    mkdirSync(tree);
    execFileSync("tar", ["-xzf", join(builderDir, cross.file), "-C", tree]);
    writeFileSync(join(tree, "x.c"), "int answer(void) { return 6 * 7; }\n");
    expect(execFileSync("chroot", [tree, "/usr/bin/gcc", "-dumpmachine"], { encoding: "utf8" })).toBe("aarch64-linux-gnu\n");
    // As iceccd runs it: no headers in the tree (the client sends preprocessed source) and no /tmp (-pipe).
    execFileSync("chroot", [tree, "/usr/bin/gcc", "-nostdinc", "-pipe", "-O2", "-c", "/x.c", "-o", "/x.o"]);
    expect(execFileSync("file", ["-b", join(tree, "x.o")], { encoding: "utf8" })).toMatch(/^ELF 64-bit LSB relocatable, ARM aarch64/);
  });

  it("a rebuild of unchanged compilers keeps every tarball byte-identical (so it is never copied again)", () => {
    const before = built.map((t) => statSync(join(builderDir, t.file)).mtimeMs);
    expect(runBuild()).toBe(built.map((t) => `unchanged ${t.file}\n`).join(""));
    expect(parseManifest(readFileSync(join(builderDir, "manifest-x86_64"), "utf8"))).toEqual(built);
    expect(built.map((t) => statSync(join(builderDir, t.file)).mtimeMs)).toEqual(before);
  }, 120_000);

  it("distribution: the program's check says missing, the receive program installs and verifies, then check says present and a resend is a no-op", () => {
    const check = (t: ToolchainTarball) => execFileSync("sh", ["-c", `${toolchainReceiveCommand(t, program)} check`], { encoding: "utf8" });
    for (const t of built) {
      expect(check(t)).toBe("missing\n");
      const r = receive(t, readFileSync(join(builderDir, t.file)));
      expect([r.status, r.stdout, r.stderr]).toEqual([0, "fleetkit: toolchains changed\n", `fleetkit: received toolchain ${t.file}\n`]);
      expect(check(t)).toBe("present\n");
      const again = receive(t, "");
      expect([again.status, again.stdout]).toEqual([0, "fleetkit: toolchains unchanged\n"]);
      expect(readlinkSync(join(nodeDir, `current-${tarballStem(t)}.tar.gz`))).toBe(t.file);
    }
  });

  it("a newer tarball of the same compiler replaces the link and removes only that stem's superseded file", () => {
    const t = built[0]!;
    const cross = built.find((b) => b.target === "aarch64")!;
    const bytes = Buffer.from("a newer toolchain\n");
    const newer: ToolchainTarball = { ...t, file: `x86_64-${t.compiler}-${"9".repeat(32)}.tar.gz`, sha256: sha256Hex(bytes) };
    expect([receive(newer, bytes).status, readlinkSync(join(nodeDir, `current-x86_64-${t.compiler}.tar.gz`))]).toEqual([0, newer.file]);
    // x86_64-gcc-aarch64-<md5> also starts with "x86_64-gcc-": it stays.
    expect(spawnSync("ls", [nodeDir], { encoding: "utf8" }).stdout.split("\n").filter((f) => f.startsWith(`x86_64-${t.compiler}-`))).toEqual([cross.file, newer.file].sort());
    // Back to the built one (the tests below expect it).
    const r = receive(t, readFileSync(join(builderDir, t.file)));
    expect([r.status, r.stdout, readlinkSync(join(nodeDir, `current-x86_64-${t.compiler}.tar.gz`))]).toEqual([0, "fleetkit: toolchains changed\n", t.file]);
    expect(readlinkSync(join(nodeDir, "current-x86_64-gcc-aarch64.tar.gz"))).toBe(cross.file);
  });

  const file = `x86_64-gcc-${md5}.tar.gz`;
  it.each([
    // label, argv after the program, the refusal
    ["too few arguments", ["x86_64", "gcc", file, sha], "expected 5 arguments and an optional check, got 4"],
    ["a sixth argument that is not check", ["x86_64", "gcc", "x86_64", file, sha, "rm"], "expected 5 arguments and an optional check, got 6"],
    ["check with a bad argument", ["x86_64", "gcc", "x86_64", "../x", sha, "check"], "FILE must be x86_64-gcc-<32 hex digits>.tar.gz"],
    ["a path as the arch", ["../x", "gcc", "x86_64", file, sha], "ARCH must be one of x86_64, aarch64"],
    ["a command substitution as the compiler", ["x86_64", "$(id)", "x86_64", file, sha], "COMPILER must be one of gcc, clang"],
    ["a command substitution as the target", ["x86_64", "gcc", "`id`", file, sha], "TARGET must be one of x86_64, aarch64"],
    ["a clang cross tarball", ["x86_64", "clang", "aarch64", `x86_64-clang-aarch64-${md5}.tar.gz`, sha], "only gcc tarballs are cross compilers: TARGET must be ARCH for clang"],
    ["a path as the file", ["x86_64", "gcc", "x86_64", "../x", sha], "FILE must be x86_64-gcc-<32 hex digits>.tar.gz"],
    ["a file of another arch and compiler", ["x86_64", "gcc", "x86_64", `aarch64-clang-${md5}.tar.gz`, sha], "FILE must be x86_64-gcc-<32 hex digits>.tar.gz"],
    ["a native file for a cross target", ["x86_64", "gcc", "aarch64", file, sha], "FILE must be x86_64-gcc-aarch64-<32 hex digits>.tar.gz"],
    ["a cross file for a native target", ["x86_64", "gcc", "x86_64", `x86_64-gcc-aarch64-${md5}.tar.gz`, sha], "FILE must be x86_64-gcc-<32 hex digits>.tar.gz"],
    ["a file with a path inside", ["x86_64", "gcc", "x86_64", `x86_64-gcc-${"a".repeat(31)}/.tar.gz`, sha], "FILE must be x86_64-gcc-<32 hex digits>.tar.gz"],
    ["a command substitution in the file", ["x86_64", "gcc", "x86_64", `x86_64-gcc-$(id)${"a".repeat(27)}.tar.gz`, sha], "FILE must be x86_64-gcc-<32 hex digits>.tar.gz"],
    ["an upper-case sha256", ["x86_64", "gcc", "x86_64", file, "B".repeat(64)], "SHA256 must be 64 lowercase hex digits"],
    ["a short sha256", ["x86_64", "gcc", "x86_64", file, "b".repeat(63)], "SHA256 must be 64 lowercase hex digits"],
  ])("the receive program refuses %s, changing nothing", (_label, args, why) => {
    const before = spawnSync("ls", ["-lA", "--time-style=full-iso", nodeDir], { encoding: "utf8" }).stdout;
    const r = spawnSync("sh", [program, ...args], { input: "x", encoding: "utf8" });
    expect([r.status, r.stdout, r.stderr]).toEqual([1, "", `fleetkit: error: toolchain receive: ${why}; nothing was changed (usage: ${program} ARCH COMPILER TARGET FILE SHA256 [check])\n`]);
    expect(spawnSync("ls", ["-lA", "--time-style=full-iso", nodeDir], { encoding: "utf8" }).stdout).toBe(before);
  });

  it("a corrupted transfer is refused and replaces nothing", () => {
    const t = built[0]!;
    const other: ToolchainTarball = { ...t, file: `x86_64-${t.compiler}-${"0".repeat(32)}.tar.gz` };
    const r = receive(other, "not a tarball");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`fleetkit: error: toolchain ${other.file} arrived with sha256 [0-9a-f]{64}, expected ${t.sha256}; nothing was replaced, send it again\n$`));
    expect(spawnSync("ls", ["-A", nodeDir], { encoding: "utf8" }).stdout.split("\n").filter((f) => f.includes("0".repeat(32)))).toEqual([]);
    expect(readlinkSync(join(nodeDir, `current-x86_64-${t.compiler}.tar.gz`))).toBe(t.file);
  });

  // The environment file with the tarballs this machine built (x86_64: gcc, clang, gcc cross to aarch64), and with
  // those an aarch64 builder would have sent too (aarch64: gcc, clang, gcc cross to x86_64; contents do not matter).
  // Expected values name tarballs by {stem}; the cross variable is FLEET_ICECC_VERSION_<the other arch>.
  const ARM_STEMS = ["aarch64-gcc", "aarch64-clang", "aarch64-gcc-x86_64"];
  it.each([
    // node, tarballs present, [ICECC_VERSION, GCC, CLANG, cross]
    ["windows-desktop", "x86_64 only", ["{x86_64-clang},{x86_64-gcc-aarch64}=aarch64-linux-gnu", "{x86_64-gcc}", "{x86_64-clang}", "{x86_64-gcc-aarch64}=aarch64-linux-gnu"]],
    [
      "windows-desktop",
      "both arches",
      [
        "{x86_64-clang},aarch64:{aarch64-clang},{x86_64-gcc-aarch64}=aarch64-linux-gnu,aarch64:{aarch64-gcc}=aarch64-linux-gnu",
        "{x86_64-gcc},aarch64:{aarch64-gcc-x86_64}",
        "{x86_64-clang},aarch64:{aarch64-clang}",
        "{x86_64-gcc-aarch64}=aarch64-linux-gnu,aarch64:{aarch64-gcc}=aarch64-linux-gnu",
      ],
    ],
    // No aarch64 tarball: ICECC_VERSION stays unset (icecc packs the local compiler), the cross value still works.
    ["rpi1", "x86_64 only", ["unset", "", "", "x86_64:{x86_64-gcc}=x86_64-linux-gnu"]],
    [
      "rpi1",
      "both arches",
      [
        "{aarch64-clang},x86_64:{x86_64-clang},{aarch64-gcc-x86_64}=x86_64-linux-gnu,x86_64:{x86_64-gcc}=x86_64-linux-gnu",
        "{aarch64-gcc},x86_64:{x86_64-gcc-aarch64}",
        "{aarch64-clang},x86_64:{x86_64-clang}",
        "{aarch64-gcc-x86_64}=x86_64-linux-gnu,x86_64:{x86_64-gcc}=x86_64-linux-gnu",
      ],
    ],
  ] as const)("environment file on %s with %s tarballs", (name, present, expected) => {
    const dir = join(root, `env-${name}-${present.replace(/ /g, "-")}`);
    mkdirSync(dir);
    const files = new Map<string, string>();
    for (const t of built) {
      linkSync(join(builderDir, t.file), join(dir, t.file));
      files.set(tarballStem(t), t.file);
    }
    if (present === "both arches") {
      for (const [i, stem] of ARM_STEMS.entries()) {
        files.set(stem, `${stem}-${String(i).repeat(32)}.tar.gz`);
        writeFileSync(join(dir, files.get(stem)!), "x");
      }
    }
    for (const [stem, f] of files) symlinkSync(f, join(dir, `current-${stem}.tar.gz`));
    const n = node(mesh, name);
    writeFileSync(join(dir, "icecc-env.sh"), toolchainEnvFile(n, { envDir: dir }).content);
    const crossVar = n.arch === "x86_64" ? "FLEET_ICECC_VERSION_AARCH64" : "FLEET_ICECC_VERSION_X86_64";
    const r = spawnSync("sh", ["-c", `set -eu; . ${join(dir, "icecc-env.sh")}; env | grep -E '^(ICECC_VERSION|FLEET_ICECC_VERSION_[A-Z0-9_]+)=' | sort`], { encoding: "utf8" });
    const expand = (v: string) => v.replace(/\{([a-z0-9_-]+)\}/g, (_m, stem: string) => join(dir, files.get(stem)!));
    const [version, gcc, clang, cross] = expected.map(expand);
    const want = [
      ...(version === "unset" ? [] : [`ICECC_VERSION=${version}`]),
      `${crossVar}=${cross}`,
      `FLEET_ICECC_VERSION_CLANG=${clang}`,
      `FLEET_ICECC_VERSION_GCC=${gcc}`,
    ].sort();
    expect([r.status, r.stderr, r.stdout]).toEqual([0, "", want.join("\n") + "\n"]);
  });
});

describe("rootArgvCommand: a program run as root with plain arguments, no script", () => {
  const prog = "/usr/local/lib/fleetkit/fleetkit-toolchain-receive";
  it.each([
    ["rpi1", "node", [prog, "x86_64"], `sudo -n ${prog} x86_64`],
    ["rpi1", "node", ["/tmp/a b/prog", "x"], "sudo -n '/tmp/a b/prog' x"],
    ["windows-desktop", "wsl", [prog, "x86_64"], `wsl.exe -d Debian -u root -e ${prog} x86_64`],
  ] as const)("%s %s %j -> %s", (name, target, argv, line) => {
    expect(rootArgvCommand(node(mesh, name), target, [...argv])).toBe(line);
  });

  it.each([
    ["a space on a Windows command line", "wsl", ["/tmp/a b/prog"], 'rootArgvCommand: "/tmp/a b/prog" cannot be written plain on a Windows command line for node windows-desktop (a fleetkit bug)'],
    ["a variable on a Windows command line", "wsl", [prog, "$env:X"], 'rootArgvCommand: "$env:X" cannot be written plain on a Windows command line for node windows-desktop (a fleetkit bug)'],
    ["the Windows host itself", "windows-host", [prog], "rootArgvCommand: no program runs as root on the windows-host of node windows-desktop (a fleetkit bug)"],
  ] as const)("refuses %s", (_what, target, argv, message) => {
    expect(() => rootArgvCommand(node(mesh, "windows-desktop"), target, [...argv])).toThrow(message);
  });
});
