// @needs icecc-create-env gcc g++ clang
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
import { sha256Hex } from "../../roles/bundle.js";
import {
  describeToolchainsPlan,
  parseManifest,
  toolchainBuildScript,
  toolchainCheckCommand,
  toolchainEnvFile,
  toolchainReceiveCommand,
  toolchainReceiveProgram,
  toolchainReceiverFiles,
  toolchainsPlan,
  type ToolchainTarball,
} from "../../roles/toolchains/render.js";

const mesh = loadFleet("fleet.yaml");
const remote = loadFleet("examples/remote-tasks.fleet.yaml");
const shared = loadFleet("examples/shared-fs-queue.fleet.yaml");
const node = (fleet: Fleet, name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;
/** The mesh with rpi1 also building (an aarch64 builder). */
const meshArm: Fleet = { ...mesh, nodes: mesh.nodes.map((n) => (n.name === "rpi1" ? { ...n, roles: [...n.roles, "toolchains"], builder: true } : n)) };

const NO_ARM =
  "no aarch64 builder: icecc-create-env packs the compilers of the machine it runs on; give one always-on aarch64 Linux node (e.g. rpi1) the role toolchains to build aarch64 tarballs";

describe("toolchains plan", () => {
  it("nine-machine fleet: x86_64 built on the orchestrator and copied to every Linux daemon; aarch64 cannot be built", () => {
    expect(toolchainsPlan(mesh)).toEqual({
      builders: [{ node: "arch-orchestrator", arch: "x86_64" }],
      distribution: [{ arch: "x86_64", from: "arch-orchestrator", to: ["rpi1", "rpi2", "rpi3", "windows-desktop", "windows-laptop"] }],
      missing: [{ arch: "aarch64", nodes: ["rpi1", "rpi2", "rpi3"], reason: NO_ARM }],
      skipped: ["macbook1", "imac", "macbook2"].map((n) => ({ node: n, reason: "macOS: a Linux toolchain cannot run on a macOS iceccd and builds no Mach-O; its icecc packs its own compiler" })),
    });
    expect(describeToolchainsPlan(mesh).slice(0, 2)).toEqual([
      "toolchains x86_64: built on arch-orchestrator, copied to rpi1, rpi2, rpi3, windows-desktop, windows-laptop",
      `toolchains aarch64: not built (${NO_ARM}); rpi1, rpi2, rpi3 compile with their local compiler`,
    ]);
  });

  it("with an aarch64 builder, both arches are built and cross-copied", () => {
    const plan = toolchainsPlan(meshArm);
    expect([plan.distribution, plan.missing]).toEqual([
      [
        { arch: "x86_64", from: "arch-orchestrator", to: ["rpi1", "rpi2", "rpi3", "windows-desktop", "windows-laptop"] },
        { arch: "aarch64", from: "rpi1", to: ["arch-orchestrator", "rpi2", "rpi3", "windows-desktop", "windows-laptop"] },
      ],
      [],
    ]);
  });

  it.each([["remote-tasks"], ["shared-fs-queue"]])("%s: no icecc, nothing to build", (label) => {
    expect(toolchainsPlan(label === "remote-tasks" ? remote : shared)).toEqual({ builders: [], distribution: [], missing: [], skipped: [] });
  });
});

describe("role toolchains: the builder bundle", () => {
  it.each([
    ["mesh", "arch-orchestrator", "fk_pacman_install icecream gcc", "/usr/bin/icecc-create-env", true],
    ["meshArm", "rpi1", "fk_apt_install icecc gcc g++", "/usr/bin/icecc-create-env", false],
  ] as const)("%s fleet: %s", (label, name, pkgLine, createEnv, noteArm) => {
    const fleet = label === "mesh" ? mesh : meshArm;
    const b = renderBundle(fleet, node(fleet, name), "toolchains");
    const lines = b.install.split("\n");
    expect([b.target, b.secrets, b.services]).toEqual(["node", [], []]);
    expect(lines).toContain(pkgLine);
    expect(b.files.map((f) => [f.path, f.mode, f.kind])).toEqual([["/usr/local/lib/fleetkit/icecc-env-build", 0o755, "shell"]]);
    expect(b.files[0].content).toContain(`  if ! (cd "$work" && '${createEnv}' "$@") > "$work/$compiler.log" 2>&1; then`);
    expect(lines).toContain("fk_tc_out=$('/usr/local/lib/fleetkit/icecc-env-build')");
    expect(lines.includes(`fk_log 'note: aarch64 toolchains are not built: ${NO_ARM}'`)).toBe(noteArm);
  });

  it("adding a node changes neither the builder's bundle nor a receiver's toolchain files; an aarch64 builder drops the note and changes the x86_64 nodes' env files", () => {
    const h = (f: Fleet) => renderBundle(f, node(f, "arch-orchestrator"), "toolchains").hash;
    // (A new node does change every iceccd bundle: its firewall admits the new daemon.)
    const tcFiles = (f: Fleet, name: string) => toolchainReceiverFiles(f, node(f, name));
    const rpi4: FleetNode = { ...node(mesh, "rpi3"), name: "rpi4", host: "rpi4" };
    const more = { ...mesh, nodes: [...mesh.nodes, rpi4] };
    expect(h(more)).toBe(h(mesh));
    expect([tcFiles(more, "rpi1"), tcFiles(more, "windows-desktop")]).toEqual([tcFiles(mesh, "rpi1"), tcFiles(mesh, "windows-desktop")]);
    expect(h(meshArm)).not.toBe(h(mesh));
    expect(tcFiles(meshArm, "windows-desktop")[1]!.content).not.toBe(tcFiles(mesh, "windows-desktop")[1]!.content);
  });
});

describe("role iceccd: the receiver files", () => {
  it.each([
    ["mesh", "arch-orchestrator", true],
    ["mesh", "rpi1", true],
    ["mesh", "windows-desktop", true],
    ["mesh", "macbook1", false],
  ] as const)("%s fleet, %s: receive program and env file: %s", (label, name, has) => {
    const fleet = label === "mesh" ? mesh : meshArm;
    const n = node(fleet, name);
    const b = renderBundle(fleet, n, "iceccd");
    const files = b.files.filter((f) => f.path.includes("toolchain-receive") || f.path.endsWith("icecc-env.sh"));
    expect(files).toEqual(has ? [toolchainReceiveProgram(n), toolchainEnvFile(fleet, n)] : []);
    if (has) expect(files.map((f) => [f.path, f.mode, f.owner])).toEqual([["/usr/local/lib/fleetkit/fleetkit-toolchain-receive", 0o755, "root"], ["/etc/fleetkit/icecc-env.sh", 0o644, "root"]]);
  });

  it("a fleet without a builder installs neither (nothing to receive)", () => {
    const noBuilder: Fleet = { ...mesh, nodes: mesh.nodes.map((n) => ({ ...n, roles: n.roles.filter((r) => r !== "toolchains") })) };
    expect(renderBundle(noBuilder, node(noBuilder, "rpi1"), "iceccd").files.map((f) => f.path).filter((p) => !p.includes("firewall"))).toEqual(["/etc/systemd/system/iceccd.service"]);
  });

  it("the receive command is the program's path and the four manifest fields, each quoted", () => {
    const t: ToolchainTarball = { arch: "x86_64", compiler: "gcc", file: `x86_64-gcc-${"a".repeat(32)}.tar.gz`, sha256: "b".repeat(64) };
    expect(toolchainReceiveCommand(t, "/usr/local/lib/fleetkit/fleetkit-toolchain-receive")).toBe(
      `'/usr/local/lib/fleetkit/fleetkit-toolchain-receive' 'x86_64' 'gcc' 'x86_64-gcc-${"a".repeat(32)}.tar.gz' '${"b".repeat(64)}'`,
    );
    expect(() => toolchainReceiveCommand({ ...t, file: "../x" }, "/p")).toThrow('toolchain manifest line 1: expected "<arch> <compiler> <arch>-<compiler>-<md5>.tar.gz <sha256>"');
  });
});

describe("manifest and check command", () => {
  const good = `x86_64 gcc x86_64-gcc-${"a".repeat(32)}.tar.gz ${"b".repeat(64)}`;
  it("parses a manifest", () => {
    expect(parseManifest(`${good}\n\n`)).toEqual([{ arch: "x86_64", compiler: "gcc", file: `x86_64-gcc-${"a".repeat(32)}.tar.gz`, sha256: "b".repeat(64) }]);
  });
  it.each([
    ["an unknown arch", `armv7 gcc armv7-gcc-${"a".repeat(32)}.tar.gz ${"b".repeat(64)}`],
    ["a file of another compiler", `x86_64 gcc x86_64-clang-${"a".repeat(32)}.tar.gz ${"b".repeat(64)}`],
    ["a path in the name", `x86_64 gcc ../x86_64-gcc-${"a".repeat(32)}.tar.gz ${"b".repeat(64)}`],
    ["a short sha256", `x86_64 gcc x86_64-gcc-${"a".repeat(32)}.tar.gz ${"b".repeat(63)}`],
    ["a shell word", `x86_64 gcc x86_64-gcc-${"a".repeat(32)}.tar.gz ${"b".repeat(64)} ;rm`],
  ])("rejects %s", (_label, line) => {
    expect(() => parseManifest(line)).toThrow(`toolchain manifest line 1: expected "<arch> <compiler> <arch>-<compiler>-<md5>.tar.gz <sha256>", got "${line}"`);
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
/** Runs the program as the distribution does (`sh -c '<path> ARCH COMPILER FILE SHA256'`), `input` on stdin. */
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

  it("builds one content-named tarball per installed compiler and links it as current", () => {
    expect(built.map((t) => t.compiler)).toEqual(["gcc", "clang"]);
    expect(firstOut).toBe(built.map((t) => `built ${t.file}\n`).join(""));
    for (const t of built) {
      expect(t.file).toMatch(new RegExp(`^x86_64-${t.compiler}-[0-9a-f]{32}\\.tar\\.gz$`));
      expect(sha256Hex(readFileSync(join(builderDir, t.file)))).toBe(t.sha256);
      expect(readlinkSync(join(builderDir, `current-x86_64-${t.compiler}.tar.gz`))).toBe(t.file);
    }
    const listing = execFileSync("tar", ["-tzf", join(builderDir, built[0]!.file)], { encoding: "utf8" }).split("\n");
    expect(listing).toContain("usr/bin/gcc");
  });

  it("a rebuild of unchanged compilers keeps every tarball byte-identical (so it is never copied again)", () => {
    const before = built.map((t) => statSync(join(builderDir, t.file)).mtimeMs);
    expect(runBuild()).toBe(built.map((t) => `unchanged ${t.file}\n`).join(""));
    expect(parseManifest(readFileSync(join(builderDir, "manifest-x86_64"), "utf8"))).toEqual(built);
    expect(built.map((t) => statSync(join(builderDir, t.file)).mtimeMs)).toEqual(before);
  }, 120_000);

  it("distribution: check says missing, the receive program installs and verifies, then check says present and a resend is a no-op", () => {
    const check = (t: ToolchainTarball) => execFileSync("sh", ["-c", toolchainCheckCommand(t, nodeDir)], { encoding: "utf8" });
    for (const t of built) {
      expect(check(t)).toBe("missing\n");
      const r = receive(t, readFileSync(join(builderDir, t.file)));
      expect([r.status, r.stdout, r.stderr]).toEqual([0, "fleetkit: toolchains changed\n", `fleetkit: received toolchain ${t.file}\n`]);
      expect(check(t)).toBe("present\n");
      const again = receive(t, "");
      expect([again.status, again.stdout]).toEqual([0, "fleetkit: toolchains unchanged\n"]);
      expect(readlinkSync(join(nodeDir, `current-x86_64-${t.compiler}.tar.gz`))).toBe(t.file);
    }
  });

  it("a newer tarball of the same compiler replaces the link and removes the superseded file", () => {
    const t = built[0]!;
    const bytes = Buffer.from("a newer toolchain\n");
    const newer: ToolchainTarball = { ...t, file: `x86_64-${t.compiler}-${"9".repeat(32)}.tar.gz`, sha256: sha256Hex(bytes) };
    expect([receive(newer, bytes).status, readlinkSync(join(nodeDir, `current-x86_64-${t.compiler}.tar.gz`))]).toEqual([0, newer.file]);
    expect(spawnSync("ls", [nodeDir], { encoding: "utf8" }).stdout.split("\n").filter((f) => f.startsWith(`x86_64-${t.compiler}-`))).toEqual([newer.file]);
    // Back to the built one (the tests below expect it).
    const r = receive(t, readFileSync(join(builderDir, t.file)));
    expect([r.status, r.stdout, readlinkSync(join(nodeDir, `current-x86_64-${t.compiler}.tar.gz`))]).toEqual([0, "fleetkit: toolchains changed\n", t.file]);
  });

  it.each([
    // label, argv after the program, the refusal
    ["too few arguments", ["x86_64", "gcc"], "expected 4 arguments, got 2"],
    ["a path as the arch", ["../x", "gcc", `x86_64-gcc-${"a".repeat(32)}.tar.gz`, "b".repeat(64)], "ARCH must be one of x86_64, aarch64"],
    ["a command substitution as the compiler", ["x86_64", "$(id)", `x86_64-gcc-${"a".repeat(32)}.tar.gz`, "b".repeat(64)], "COMPILER must be one of gcc, clang"],
    ["a path as the file", ["x86_64", "gcc", "../x", "b".repeat(64)], "FILE must be x86_64-gcc-<32 hex digits>.tar.gz"],
    ["a file of another arch and compiler", ["x86_64", "gcc", `aarch64-clang-${"a".repeat(32)}.tar.gz`, "b".repeat(64)], "FILE must be x86_64-gcc-<32 hex digits>.tar.gz"],
    ["a file with a path inside", ["x86_64", "gcc", `x86_64-gcc-${"a".repeat(31)}/.tar.gz`, "b".repeat(64)], "FILE must be x86_64-gcc-<32 hex digits>.tar.gz"],
    ["a command substitution in the file", ["x86_64", "gcc", `x86_64-gcc-$(id)${"a".repeat(27)}.tar.gz`, "b".repeat(64)], "FILE must be x86_64-gcc-<32 hex digits>.tar.gz"],
    ["an upper-case sha256", ["x86_64", "gcc", `x86_64-gcc-${"a".repeat(32)}.tar.gz`, "B".repeat(64)], "SHA256 must be 64 lowercase hex digits"],
    ["a short sha256", ["x86_64", "gcc", `x86_64-gcc-${"a".repeat(32)}.tar.gz`, "b".repeat(63)], "SHA256 must be 64 lowercase hex digits"],
  ])("the receive program refuses %s, changing nothing", (_label, args, why) => {
    const before = spawnSync("ls", ["-lA", "--time-style=full-iso", nodeDir], { encoding: "utf8" }).stdout;
    const r = spawnSync("sh", [program, ...args], { input: "x", encoding: "utf8" });
    expect([r.status, r.stdout, r.stderr]).toEqual([1, "", `fleetkit: error: toolchain receive: ${why}; nothing was changed (usage: ${program} ARCH COMPILER FILE SHA256)\n`]);
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

  it.each([
    // fleet, node, [ICECC_VERSION, FLEET_ICECC_VERSION_GCC, FLEET_ICECC_VERSION_CLANG] as relative names
    ["mesh", "windows-desktop", ["x86_64-clang", "x86_64-gcc", "x86_64-clang"]],
    ["mesh", "rpi1", ["", "", ""]],
    ["meshArm", "rpi1", ["aarch64-clang,x86_64:x86_64-clang", "", "aarch64-clang,x86_64:x86_64-clang"]],
    ["meshArm", "windows-desktop", ["x86_64-clang,aarch64:aarch64-clang", "x86_64-gcc", "x86_64-clang,aarch64:aarch64-clang"]],
  ] as const)("environment file, %s fleet, %s", (label, name, expected) => {
    const fleet = label === "mesh" ? mesh : meshArm;
    // With an aarch64 builder (meshArm), an aarch64 clang tarball as it would have sent it (contents do not matter).
    const armFile = `aarch64-clang-${"c".repeat(32)}.tar.gz`;
    const dir = join(root, `env-${label}-${name}`);
    mkdirSync(dir);
    for (const t of built) {
      linkSync(join(builderDir, t.file), join(dir, t.file));
      symlinkSync(t.file, join(dir, `current-x86_64-${t.compiler}.tar.gz`));
    }
    if (label === "meshArm") {
      writeFileSync(join(dir, armFile), "x");
      symlinkSync(armFile, join(dir, "current-aarch64-clang.tar.gz"));
    }
    const env = toolchainEnvFile(fleet, node(fleet, name), { envDir: dir });
    writeFileSync(join(dir, "icecc-env.sh"), env.content);
    const r = spawnSync("sh", ["-c", `set -eu; . ${join(dir, "icecc-env.sh")}; printf '%s|%s|%s|%s' "\${ICECC_VERSION-unset}" "$FLEET_ICECC_VERSION_GCC" "$FLEET_ICECC_VERSION_CLANG" "$(env | grep -c '^ICECC_VERSION=' || true)"`], { encoding: "utf8" });
    const file = (rel: string) => (rel.startsWith("aarch64-clang") ? join(dir, armFile) : join(dir, built.find((t) => rel.startsWith(`x86_64-${t.compiler}`))!.file));
    const expand = (v: string) => v.split(",").filter(Boolean).map((part) => (part.includes(":") ? `${part.split(":")[0]}:${file(part.split(":")[1]!)}` : file(part))).join(",");
    const [version, gcc, clang] = expected.map(expand);
    expect([r.status, r.stdout]).toEqual([0, `${version || "unset"}|${gcc}|${clang}|${version ? 1 : 0}`]);
  });
});
