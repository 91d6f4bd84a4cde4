/**
 * `fleet pin-artifacts` as users run it (`node bin/fleet.mjs pin-artifacts …`) against a real HTTP server
 * (the hosts tests' artifact server on 127.0.0.1) standing in for GitHub releases and pkgs.tailscale.com:
 * which (artifact, platform) pairs a fleet needs, exact output, the exact file it leaves (every other byte
 * kept), a download that fails, --check, --verify with a changed upstream file, and bad input. Plus the
 * YAML edit on its own, table-driven.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFleet } from "../../model/load.js";
import { addPinsToFleetText, artifactPins } from "../../cli/pin-artifacts.js";
import { startArtifactServer, type ArtifactServer } from "../hosts/artifact-server.js";

/** Runs the CLI without blocking this process (the artifact server answers from it). */
function fleetCli(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["bin/fleet.mjs", "pin-artifacts", ...args], { env: { ...process.env, FORCE_COLOR: "0" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const dir = mkdtempSync(join(tmpdir(), "fleetkit-pin-"));
let server: ArtifactServer;
const sums: Record<string, string> = {};

/** A fleet whose artifacts come from the test server; tailscale has no sha256 map yet, agentapi one pin. */
const fleetText = (base: string, withMac: boolean) => `# Test fleet for pin-artifacts.
fleet: pin-test
defaults:
  user: fleet   # everyone
  budgetUsdPerSession: 5
  claude:
    version: 2.1.331

artifacts:
  agentapi:
    version: v0.10.0    # keep in step with the docs
    url: ${base}/agentapi/{version}/agentapi-{os}-{goarch}
    sha256:
      linux-x86_64: ${"a".repeat(64)}   # pinned by hand
  tailscale:
    version: 1.90.6
    url: ${base}/tailscale/tailscale_{version}_{goarch}.tgz

nodes:
  deb:
    host: deb
    os: debian
    arch: x86_64
    roles: [tailscale, claude, agentapi]
  pi:
    host: pi
    os: raspios
    arch: aarch64
    roles: [tailscale, claude, agentapi]
  box:
    host: box
    os: arch
    arch: x86_64
    roles: [tailscale]
${withMac ? "  mac:\n    host: mac\n    os: macos\n    arch: aarch64\n    roles: [tailscale, claude, agentapi]\n" : ""}`;

beforeAll(async () => {
  server = await startArtifactServer("127.0.0.1");
  for (const path of ["/agentapi/v0.10.0/agentapi-linux-arm64", "/tailscale/tailscale_1.90.6_amd64.tgz", "/tailscale/tailscale_1.90.6_arm64.tgz"]) {
    sums[path] = server.serve(path, `stand-in bytes of ${path}\n`).sha256;
  }
});
afterAll(async () => {
  await server?.close();
});

describe("fleet pin-artifacts", () => {
  it("lists each (artifact, platform) a node downloads once, with its nodes: no tailscale download on Arch or macOS", () => {
    const fleet = parseFleet(fleetText("http://h", true), "f.yaml");
    expect(artifactPins(fleet).map((p) => [p.artifact, p.platform, p.url, p.sha256 ?? null, p.nodes])).toEqual([
      ["agentapi", "darwin-aarch64", "http://h/agentapi/v0.10.0/agentapi-darwin-arm64", null, ["mac"]],
      ["agentapi", "linux-aarch64", "http://h/agentapi/v0.10.0/agentapi-linux-arm64", null, ["pi"]],
      ["agentapi", "linux-x86_64", "http://h/agentapi/v0.10.0/agentapi-linux-amd64", "a".repeat(64), ["deb"]],
      ["tailscale", "linux-aarch64", "http://h/tailscale/tailscale_1.90.6_arm64.tgz", null, ["pi"]],
      ["tailscale", "linux-x86_64", "http://h/tailscale/tailscale_1.90.6_amd64.tgz", null, ["deb"]],
    ]);
  });

  it("pins what downloads, reports what does not (exit 1), keeps every other byte; a second run changes nothing", async () => {
    const base = server.baseUrl;
    const file = join(dir, "fleet.yaml");
    const before = fleetText(base, true);
    writeFileSync(file, before);
    const check = await fleetCli("--fleet", file, "--check");
    expect(check).toEqual({
      status: 1,
      stderr: "",
      stdout: [
        "  agentapi v0.10.0 darwin-aarch64  MISSING (nodes mac)",
        "  agentapi v0.10.0 linux-aarch64   MISSING (nodes pi)",
        "  agentapi v0.10.0 linux-x86_64    pinned",
        "  tailscale 1.90.6 linux-aarch64   MISSING (nodes pi)",
        "  tailscale 1.90.6 linux-x86_64    MISSING (nodes deb)",
        `4 of 5 not pinned: run fleet pin-artifacts --fleet ${file}`,
        "",
      ].join("\n"),
    });
    const r = await fleetCli("--fleet", file);
    const pi = sums["/agentapi/v0.10.0/agentapi-linux-arm64"]!;
    const tsArm = sums["/tailscale/tailscale_1.90.6_arm64.tgz"]!;
    const tsAmd = sums["/tailscale/tailscale_1.90.6_amd64.tgz"]!;
    const size = (p: string) => Buffer.byteLength(`stand-in bytes of ${p}\n`);
    expect(r).toEqual({
      status: 1,
      stderr: "",
      stdout: [
        `  agentapi v0.10.0 darwin-aarch64  FAILED: HTTP 404 Not Found from ${base}/agentapi/v0.10.0/agentapi-darwin-arm64`,
        `  agentapi v0.10.0 linux-aarch64   pinned ${pi} (${size("/agentapi/v0.10.0/agentapi-linux-arm64")} bytes from ${base}/agentapi/v0.10.0/agentapi-linux-arm64)`,
        "  agentapi v0.10.0 linux-x86_64    already pinned",
        `  tailscale 1.90.6 linux-aarch64   pinned ${tsArm} (${size("/tailscale/tailscale_1.90.6_arm64.tgz")} bytes from ${base}/tailscale/tailscale_1.90.6_arm64.tgz)`,
        `  tailscale 1.90.6 linux-x86_64    pinned ${tsAmd} (${size("/tailscale/tailscale_1.90.6_amd64.tgz")} bytes from ${base}/tailscale/tailscale_1.90.6_amd64.tgz)`,
        `wrote 3 sha256 to ${file}; 1 failed (see above), run again once they download`,
        "",
      ].join("\n"),
    });
    const after = readFileSync(file, "utf8");
    expect(after).toBe(
      before
        .replace(`      linux-x86_64: ${"a".repeat(64)}   # pinned by hand\n`, `      linux-x86_64: ${"a".repeat(64)}   # pinned by hand\n      linux-aarch64: ${pi}\n`)
        .replace(`tailscale_{version}_{goarch}.tgz\n`, `tailscale_{version}_{goarch}.tgz\n    sha256:\n      linux-aarch64: ${tsArm}\n      linux-x86_64: ${tsAmd}\n`),
    );
    const again = await fleetCli("--fleet", file);
    expect([again.status, again.stdout.split("\n").slice(1, 5), readFileSync(file, "utf8")]).toEqual([
      1,
      ["  agentapi v0.10.0 linux-aarch64   already pinned", "  agentapi v0.10.0 linux-x86_64    already pinned", "  tailscale 1.90.6 linux-aarch64   already pinned", "  tailscale 1.90.6 linux-x86_64    already pinned"],
      after,
    ]);
    expect(again.stdout.split("\n").at(-2)).toBe(`${file} unchanged; 1 failed (see above)`);
  });

  it("--verify: a matching pin is verified, a changed upstream file is a MISMATCH (exit 1) and the pin stays", async () => {
    const base = server.baseUrl;
    const file = join(dir, "verify.yaml");
    const amd = server.serve("/agentapi/v0.10.0/agentapi-linux-amd64", "agentapi amd64 v1\n").sha256;
    const text = fleetText(base, false).replace("a".repeat(64), amd);
    writeFileSync(file, text);
    expect((await fleetCli("--fleet", file)).status).toBe(0);
    const pinned = readFileSync(file, "utf8");
    const ok = await fleetCli("--fleet", file, "--verify");
    expect([ok.status, ok.stdout.split("\n").at(-2)]).toEqual([0, `${file} unchanged: everything pinned`]);
    expect(ok.stdout).toContain("  agentapi v0.10.0 linux-x86_64   already pinned, verified\n");
    const changed = server.serve("/agentapi/v0.10.0/agentapi-linux-amd64", "agentapi amd64 v2, re-uploaded\n").sha256;
    const bad = await fleetCli("--fleet", file, "--verify");
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(
      `  agentapi v0.10.0 linux-x86_64   MISMATCH: ${file} pins ${amd}, ${base}/agentapi/v0.10.0/agentapi-linux-amd64 now serves ${changed} (31 bytes); the pin is kept: find out why before changing it\n`,
    );
    expect(readFileSync(file, "utf8")).toBe(pinned);
  });

  it.each([
    [["--check", "--verify"], "fleet pin-artifacts: --check and --verify exclude each other (--check downloads nothing)."],
    [["--timeout", "soon"], 'fleet pin-artifacts: --timeout must be a positive number of seconds, got "soon".'],
    [["--bogus"], "fleet pin-artifacts: unknown option --bogus"],
    [["--fleet", "/nonexistent/fleet.yaml"], "/nonexistent/fleet.yaml:1:1 (file): cannot read the fleet file (no such file); pass an existing file with --fleet FILE or set fleetkit:fleetFile"],
  ])("bad input %j: exit 2, one message, no stack", async (args, first) => {
    const r = await fleetCli(...args);
    expect([r.status, r.stdout, r.stderr.split("\n")[0]]).toEqual([2, "", first]);
    expect(r.stderr).not.toContain("    at ");
  });

  it("an invalid fleet file: the loader's located problems, exit 2, nothing downloaded", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, fleetText(server.baseUrl, false).replace("arch: aarch64", "arch: arm"));
    const seen = server.requests.length;
    const r = await fleetCli("--fleet", file);
    expect([r.status, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:\\d+:\\d+ nodes\\.pi\\.arch: `));
    expect(server.requests.length).toBe(seen);
  });
});

describe("addPinsToFleetText (the YAML edit alone)", () => {
  const pin = (artifact: "agentapi" | "tailscale", platform: "linux-x86_64" | "linux-aarch64") => ({ artifact, platform, sha256: "f".repeat(64), version: "9.9", urlTemplate: "https://x/{version}" });
  it.each([
    ["no artifacts: block appended at the end", "fleet: t\nnodes:\n  a:\n    host: a\n", [pin("tailscale", "linux-x86_64")], `fleet: t\nnodes:\n  a:\n    host: a\nartifacts:\n  tailscale:\n    version: "9.9"\n    url: https://x/{version}\n    sha256:\n      linux-x86_64: ${"f".repeat(64)}\n`],
    [
      "artifacts without this one: entry added after the last, comments after it kept in place",
      "artifacts:\n    agentapi:   # four-space file\n        version: v1\n        url: https://a\n# end\nnodes: {}\n",
      [pin("tailscale", "linux-aarch64")],
      `artifacts:\n    agentapi:   # four-space file\n        version: v1\n        url: https://a\n    tailscale:\n        version: "9.9"\n        url: https://x/{version}\n        sha256:\n            linux-aarch64: ${"f".repeat(64)}\n# end\nnodes: {}\n`,
    ],
    [
      "an empty flow map `sha256: {}` becomes a block; its comment stays",
      "artifacts:\n  agentapi:\n    version: v1\n    url: https://a\n    sha256: {}   # none yet\n  tailscale:\n    version: v2\n",
      [pin("agentapi", "linux-x86_64")],
      `artifacts:\n  agentapi:\n    version: v1\n    url: https://a\n    sha256:   # none yet\n      linux-x86_64: ${"f".repeat(64)}\n  tailscale:\n    version: v2\n`,
    ],
    [
      "an empty flow map at the end of the file",
      "artifacts:\n  agentapi:\n    version: v1\n    url: https://a\n    sha256: {}",
      [pin("agentapi", "linux-aarch64")],
      `artifacts:\n  agentapi:\n    version: v1\n    url: https://a\n    sha256:\n      linux-aarch64: ${"f".repeat(64)}\n`,
    ],
    [
      "an all-digit sha256 stays a string",
      "artifacts:\n  agentapi:\n    version: v1\n    url: https://a\n    sha256:\n      linux-x86_64: abc\n",
      [{ ...pin("agentapi", "linux-aarch64"), sha256: "1".repeat(64) }],
      `artifacts:\n  agentapi:\n    version: v1\n    url: https://a\n    sha256:\n      linux-x86_64: abc\n      linux-aarch64: "${"1".repeat(64)}"\n`,
    ],
  ] as const)("%s", (_, source, pins, expected) => {
    expect(addPinsToFleetText(source, [...pins])).toBe(expected);
  });
});
