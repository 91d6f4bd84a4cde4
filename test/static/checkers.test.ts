// @needs shellcheck systemd-analyze python3
/**
 * The static level's checkers catch what they are there to catch: each is fed a real rendered artifact
 * (which must pass) and deliberately broken copies of it (each must fail, with the finding attributed to
 * the broken copy only). Without these, a checker that silently checks nothing would pass every artifact.
 */
import { basename } from "node:path";
import { describe, expect, it } from "vitest";
import { gzipSync } from "node:zlib";
import { embeddedScripts, realArtifacts, realBundles } from "./artifacts.js";
import { jsonProblems, nodeCheck, plistCheck, powershellProblems, runFinish, shellcheck, shellDialect, systemdVerify, unitExecutables, yamlProblems } from "./checkers.js";
import { placedFiles, secretModeProblem, secretNamed } from "./placed-files.js";
import { appendedYamlKeys, isDocumentedNtfyKey } from "./ntfy-keys.js";

const bundles = await realBundles();
const artifacts = realArtifacts(bundles);
const first = (kind: string, what?: RegExp) => artifacts.find((a) => a.kind === kind && (!what || what.test(a.what)))!;

describe("shellcheck", () => {
  it("attributes a warning to the one broken script of a batch, with line, code and message", async () => {
    const good = first("sh", /^install$/);
    const bad = { id: "bad", content: good.content.replace("set -eu\n", "set -eu\nfk_broken() { local x=1; echo \"$x\"; }\n") };
    const found = await shellcheck([good, bad]);
    expect(found.get(good.id)).toEqual([]);
    expect(found.get("bad")).toEqual([expect.stringMatching(/^\d+:\d+ SC3043 \(warning\): In POSIX sh, 'local' is undefined\.$/)]);
  });

  it("ignores style and info findings (severity warning or worse only)", async () => {
    const found = await shellcheck([{ id: "info", content: "#!/bin/sh\nx=$1\necho $x\n" }]); // SC2086 is info
    expect(found.get("info")).toEqual([]);
  });

  it.each([
    ["#!/bin/sh\n", "sh"],
    ["#!/usr/bin/env bash\n", "bash"],
    ["#!/bin/bash -e\n", "bash"],
    ["# shellcheck shell=sh\n", "sh"],
    ["# sourced, no shebang\n", "sh"],
  ])("dialect of %j is %s", (head, dialect) => {
    expect(shellDialect(head + "true\n")).toBe(dialect);
  });
});

describe("scripts embedded in an install", () => {
  it("decodes base64 heredocs (gunzipping gzip ones) and leaves binary payloads out", () => {
    const b64 = (b: Buffer) => b.toString("base64").replace(/(.{76})/g, "$1\n");
    const script = [
      "base64 --decode > \"$t.gz\" <<'FLEETKIT_RUNTIME'", b64(gzipSync("fk_put '/a' 0644 r r <<'FLEETKIT_EOF'\nx\nFLEETKIT_EOF\n")), "FLEETKIT_RUNTIME",
      "base64 -d > plain <<'P'", b64(Buffer.from("echo plain\n")), "P",
      "base64 -d > bin <<'B'", b64(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1])), "B",
    ].join("\n") + "\n";
    expect(embeddedScripts(script)).toEqual(["fk_put '/a' 0644 r r <<'FLEETKIT_EOF'\nx\nFLEETKIT_EOF\n", "echo plain\n"]);
  });
});

describe("systemd-analyze verify", () => {
  // A long-running service's unit (the first unit rendered is now a oneshot firewall unit, with no Restart=).
  const good = first("systemd", /\/icecc-scheduler\.service$/);
  const unit = basename(good.what);
  const broken: [string, string, RegExp][] = [
    ["unknown directive", good.content.replace("[Service]\n", "[Service]\nFrobnicate=yes\n"), /Unknown key 'Frobnicate' in section \[Service\]/],
    ["misspelt section", good.content.replace("[Service]\n", "[Servise]\n"), /Unknown section 'Servise'/],
    ["bad value", good.content.replace(/^Restart=.*$/m, "Restart=sometimes"), /Failed to parse service restart specifier/],
    ["no ExecStart", good.content.replace(/^ExecStart=.*$/m, ""), /has no ExecStart=/],
  ];

  it("passes the real unit and fails each broken copy, each in its own node group", async () => {
    const items = [{ id: "good", content: good.content, unit, group: "g0" }, ...broken.map(([name, content], i) => ({ id: name, content, unit, group: `g${i + 1}` }))];
    const found = await systemdVerify(items);
    expect(found.get("good")).toEqual([]);
    for (const [name, , expected] of broken) expect(found.get(name)!.join("\n"), name).toMatch(expected);
  });

  it("in a node's group of units, a finding lands on the broken unit only", async () => {
    const node = artifacts.filter((a) => a.kind === "systemd" && a.fleet === good.fleet && a.node === good.node);
    expect(node.length).toBeGreaterThan(1);
    const items = node.map((a, i) => ({ id: a.id, unit: basename(a.what), group: "node", content: i === 1 ? a.content.replace("[Service]\n", "[Service]\nFrobnicate=1\n") : a.content }));
    const found = await systemdVerify(items);
    expect(items.map((it) => found.get(it.id)!.length)).toEqual(items.map((_, i) => (i === 1 ? 1 : 0)));
  });

  it("checks executables inside the root: without the stubs, even one this machine has is missing", async () => {
    expect(unitExecutables("ExecStart=/usr/bin/node a\nExecStartPre=-/bin/true\nExecStart=!!/x y\nExecStop=kill\n")).toEqual(["/usr/bin/node", "/bin/true", "/x"]);
    const content = good.content.replace(/^ExecStart=.*$/m, `ExecStart=${process.execPath} --version`);
    expect((await systemdVerify([{ id: "stubbed", content, unit, group: "g" }])).get("stubbed")).toEqual([]);
    const bare = await systemdVerify([{ id: "bare", content, unit, group: "g" }], { stubExecutables: false });
    expect(bare.get("bare")).toEqual([expect.stringContaining(`Command ${process.execPath} is not executable`)]);
  });
});

describe("launchd plist check (plistlib)", () => {
  const good = first("launchd");
  const label = basename(good.what, ".plist");
  const cases: [string, string, RegExp][] = [
    ["malformed XML", good.content.replace("</dict>", "</dikt>"), /^plistlib: /],
    ["no KeepAlive", good.content.replace(/<key>KeepAlive<\/key>\s*<(true|false)\/>/, ""), /^missing key KeepAlive$/],
    ["no RunAtLoad", good.content.replace(/<key>RunAtLoad<\/key>\s*<(true|false)\/>/, ""), /^missing key RunAtLoad$/],
    ["label not the file name", good.content.replace(`<string>${label}</string>`, "<string>org.example.other</string>"), /^Label 'org\.example\.other' differs from the file name's/],
    ["empty ProgramArguments", good.content.replace(/<key>ProgramArguments<\/key>\s*<array>[\s\S]*?<\/array>/, "<key>ProgramArguments</key><array/>"), /^ProgramArguments must be a non-empty array of strings/],
    ["integer argument", good.content.replace(/(<key>ProgramArguments<\/key>\s*<array>)/, "$1<integer>1</integer>"), /^ProgramArguments must be a non-empty array of strings/],
    ["RunAtLoad a string", good.content.replace(/<key>RunAtLoad<\/key>\s*<true\/>/, "<key>RunAtLoad</key><string>yes</string>"), /^RunAtLoad must be a boolean/],
  ];

  it("passes the real plist and fails each broken copy with the reason", async () => {
    const found = await plistCheck([{ id: "good", content: good.content, expectedLabel: label }, ...cases.map(([id, content]) => ({ id, content, expectedLabel: label }))]);
    expect(found.get("good")).toEqual([]);
    for (const [id, content, expected] of cases) {
      expect(content, `${id}: the mutation applied`).not.toBe(good.content);
      expect(found.get(id), id).toEqual([expect.stringMatching(expected)]);
    }
  });
});

describe("config parsers", () => {
  it.each([
    ['{"a": 1,}', 1],
    ['{"a": 1}', 0],
  ])("JSON %s has %i problem(s)", (text, n) => {
    expect(jsonProblems(text)).toHaveLength(n);
  });

  it("node --check passes ESM and fails a syntax error, naming the line", async () => {
    const found = await nodeCheck([
      { id: "ok", ext: ".mjs", content: "import { x } from './x.js';\nexport const y = x;\n" },
      { id: "bad", ext: ".mjs", content: "export const y = ;\n" },
    ]);
    expect(found.get("ok")).toEqual([]);
    expect(found.get("bad")).toEqual([expect.stringMatching(/^file:1 \| SyntaxError: Unexpected token ';'/)]);
  });

  it.each([
    ["a: 1\na: 2\n", "DUPLICATE_KEY"],
    ["a:\n  - 1\n - 2\n", "BLOCK_AS_IMPLICIT_KEY"],
    ['a: "unterminated\n', "MISSING_CHAR"],
  ])("YAML %j fails with %s", (text, code) => {
    expect(yamlProblems(text).join("\n")).toContain(code);
  });

  it("ntfy: documented keys pass in either spelling, a misspelt one does not", () => {
    expect(["auth-default-access", "auth_default_access", "auth-tokens", "upstream-base-url"].every(isDocumentedNtfyKey)).toBe(true);
    expect(["auth-default-acess", "listen", "auth-token"].some(isDocumentedNtfyKey)).toBe(false);
    expect(appendedYamlKeys(`x\nprintf 'auth-tokens:\\n  - "%s"\\n' "$t"\nprintf '%s\\n' y\n`)).toEqual(["auth-tokens"]);
  });
});

describe("PowerShell grammar check", () => {
  it("finds the syntax error in a broken Windows host script", async () => {
    const good = first("powershell");
    expect(await powershellProblems(good.content)).toEqual([]);
    expect(await powershellProblems(good.content.replace(/\{\n/, "{{\n"))).not.toEqual([]);
  });
});

describe("fk_finish run", () => {
  const install = first("sh", /^install$/).content;

  it("a script whose last line is not fk_finish prints no fleetkit line", async () => {
    const { lastLine, runs } = await runFinish(install + "echo done\n");
    expect(lastLine).toBe("echo done");
    expect(runs.map((r) => r.stdout)).toEqual(["done\n", "done\n"]);
  });

  it("the real last line prints changed, then unchanged", async () => {
    const { runs } = await runFinish(install);
    expect(runs.map((r) => r.stdout.replace(/: \S+ /, ": ROLE "))).toEqual(["fleetkit: ROLE changed\n", "fleetkit: ROLE unchanged\n"]);
  });
});

describe("secret file modes", () => {
  it.each([
    ["/etc/fleetkit/claude.env", true],
    ["/etc/fleetkit/worker/token", true],
    ["/etc/fleetkit/queue/tokens.json", true],
    ["/etc/app/secrets.yml", true],
    ["/usr/local/lib/fleetkit/icecc-env-build", true],
    ["/etc/systemd/system/fleet-worker.service", false],
    ["/etc/fleetkit/environment", false],
  ])("%s is secret-named: %s", (path, named) => {
    expect(secretNamed(path)).toBe(named);
  });

  it("reads every fk_put of a script, its mode and whether its content is in the bundle", () => {
    const script = [
      "#!/bin/sh", "# --- end of prelude ---",
      "fk_put '/etc/a.conf' 0644 'root' 'root' <<'FLEETKIT_EOF'", "fk_put /not/a/call 0600 x x", "FLEETKIT_EOF",
      'fk_put /etc/fleetkit/x.env 0644 fleet fleet < "$tmp"',
      'printf "%s\\n" "$FK_SECRET_queueToken" | fk_put /etc/fleetkit/token 0600 root root',
      'fk_put "$FK_STATE/roles/x.hash" 0644 root root < "$f"',
    ].join("\n");
    expect(placedFiles(script)).toEqual([
      { path: "/etc/a.conf", mode: 0o644, source: "bundle", content: "fk_put /not/a/call 0600 x x\n" },
      { path: "/etc/fleetkit/x.env", mode: 0o644, source: "runtime" },
      { path: "/etc/fleetkit/token", mode: 0o600, source: "runtime" },
    ]);
  });

  it.each([
    [{ path: "/etc/fleetkit/worker/token", mode: 0o644, source: "runtime" as const }, /written at install time .* mode 0644, not 0600/],
    [{ path: "/etc/fleetkit/ntfy/server.yml", mode: 0o640, source: "runtime" as const }, /mode 0640, not 0600/],
    [{ path: "/etc/fleetkit/claude.env", mode: 0o644, source: "bundle" as const, content: "ANTHROPIC_API_KEY=sk-ant-api03-abcdefgh\n" }, /holds a secret-shaped value/],
    [{ path: "/etc/fleetkit/queue.env", mode: 0o644, source: "bundle" as const, content: 'TOKEN="$FK_SECRET_queueToken"\n' }, /holds a secret-shaped value/],
  ])("%j breaks the rule", (f, why) => {
    expect(secretModeProblem(f)).toMatch(why);
  });

  it("a 0600 file, and a secret-named file whose rendered content holds nothing secret, pass", () => {
    expect(secretModeProblem({ path: "/etc/fleetkit/worker/token", mode: 0o600, source: "runtime" })).toBeNull();
    expect(secretModeProblem({ path: "/usr/local/etc/fleetkit/icecc.env", mode: 0o644, source: "bundle", content: "export ICECC_CLANG_REMOTE_CPP=0\n" })).toBeNull();
  });
});
