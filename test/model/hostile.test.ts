/**
 * Hostile fleet files: what an attacker (or a bad paste) puts in fleet.yaml, and the one located line the
 * loader answers with, exit 2. Three tables:
 *  - every injection (shell `$(…)`, backticks, `;`, newline, quotes, systemd `%`, plist `<`/`&`, YAML `: `
 *    and `#`, NUL, ESC, CR, U+2028, the RTL override, a leading `-`) in every fleet.yaml string that reaches
 *    a script, a unit, a plist, a config file or a command line, through `parseFleet`;
 *  - grammar edges, wrong types and structure (alias bombs, prototype keys, nesting, node count), through
 *    `parseFleet` / `loadFleet`;
 *  - a subset through the real CLI (`node bin/fleet.mjs plan --fleet FILE`, a real process and pipe), with
 *    the special files (a FIFO, /dev/zero, /dev/urandom) and the big ones (10 MB, 20,000 nodes), each under
 *    a timeout that kills the process, so a hang fails instead of blocking.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FleetError, loadFleet, parseFleet } from "../../model/load.js";
import { fleetJsonSchema } from "../../model/json-schema.js";
import type { Fleet } from "../../model/fleet.js";
import {
  ALLOW_FROM,
  BASE,
  BASE_URL,
  EDGES,
  HOST,
  IMAGE,
  INJECTIONS,
  PRINTABLE,
  PROFILE,
  SPECIFIER,
  STRICT,
  TAGS,
  TAILNET,
  TS_URL,
  TS_VERSION,
  inject,
  line,
  shown,
  withLine,
  yamlQuote,
} from "./hostile-cases.js";

/** The problem lines of a rejected fleet (the summary line checked and dropped). */
function problemsOf(run: () => unknown, file = "F"): string[] {
  let err: unknown;
  try {
    run();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FleetError);
  expect((err as FleetError).exitCode).toBe(2);
  const lines = (err as FleetError).message.split("\n");
  const n = (err as FleetError).problems.length;
  expect(lines.at(-1)).toBe(`${n} problem${n === 1 ? "" : "s"} in ${file}${n > 20 ? " (the first 20 above)" : ""}; fix ${n === 1 ? "it" : "them"} and run again.`);
  return lines.slice(0, -1);
}

describe("hostile fleet files: every injection in every field that reaches a script", () => {
  it("the base fleet is valid", () => {
    expect(parseFleet(BASE, "F").nodes.map((n) => n.name)).toEqual(["hub", "win"]);
  });

  const strictCases = STRICT.flatMap((f) => INJECTIONS.map((i) => ({ f, i, label: `${f.field}${f.key ? "<key>" : ""} ← ${i.name}` })));
  it.each(strictCases)("$label: exit 2, one located line", ({ f, i }) => {
    const text = withLine(BASE, f.from, f.to(yamlQuote(inject(f.ok, i))));
    const expected = f.key
      ? `${f.at} ${f.field}${shown(f.ok, i, "inName")}: invalid name "${shown(f.ok, i, "quoted")}": expected ${f.expected}`
      : `${f.at} ${f.field}: expected ${f.expected}, got "${shown(f.ok, i, "quoted")}"`;
    expect(problemsOf(() => parseFleet(text, "F"))).toEqual([expected]);
  });

  const printableCases = [...PRINTABLE, SPECIFIER].flatMap((f) => INJECTIONS.map((i) => ({ f, i, label: `${f.field} ← ${i.name}` })));
  it.each(printableCases.filter(({ i }) => i.control))("$label (printable text, a control character): exit 2, one located line", ({ f, i }) => {
    const inside = f === SPECIFIER;
    const text = withLine(BASE, f.from, f.to(yamlQuote(inject(f.ok, i, inside))));
    expect(problemsOf(() => parseFleet(text, "F"))).toEqual([`${f.at} ${f.field}: expected ${f.expected}, got "${shown(f.ok, i, "quoted", inside)}"`]);
  });

  // Printable text is data: templates quote it for their target (roles/). It reaches the model unchanged.
  it.each(printableCases.filter(({ i }) => !i.control))("$label (printable text): accepted as data, unchanged", ({ f, i }) => {
    const inside = f === SPECIFIER;
    const value = inject(f.ok, i, inside);
    expect(f.printable!(parseFleet(withLine(BASE, f.from, f.to(yamlQuote(value))), "F"))).toBe(value);
  });
});

/** The JSON Schema of a fleet.yaml path: `a.b.0` through properties, additionalProperties and items; `a.` is a key. */
function jsonSchemaAt(path: string): { pattern?: string; maxLength?: number } {
  let schema = fleetJsonSchema() as Record<string, any>;
  const segs = path.split(".");
  for (const [i, seg] of segs.entries()) {
    if (seg === "" && i === segs.length - 1) return schema.propertyNames;
    schema = schema.properties?.[seg] ?? (typeof schema.additionalProperties === "object" ? schema.additionalProperties : schema.items);
  }
  return schema;
}

describe("fleet.schema.json carries the same grammars (what editors check as users type)", () => {
  it.each(STRICT.concat(PRINTABLE).map((f) => ({ f, label: f.field })))("$label", ({ f }) => {
    const { pattern, maxLength } = jsonSchemaAt(f.field.replace(/^nodes\.(hub|win)\./, "nodes.x."));
    expect(maxLength).toBeGreaterThan(0);
    // JSON Schema patterns are ECMA-262; validators differ on the `u` flag, so both readings must agree.
    for (const flags of ["", "u"]) {
      const re = new RegExp(pattern!, flags);
      expect(re.test(f.ok)).toBe(true);
      const refused = INJECTIONS.filter((i) => !re.test(inject(f.ok, i))).map((i) => i.name);
      expect(refused).toEqual(INJECTIONS.filter((i) => !f.printable || i.control).map((i) => i.name));
    }
  });
});

describe("hostile fleet files: grammar edges, wrong types, structure", () => {
  it.each(EDGES)("$name", ({ edit, expected }) => {
    expect(problemsOf(() => parseFleet(edit(BASE), "F"))).toEqual(expected);
  });

  it.each([
    ["an IPv6 host", HOST, "    host: fd7a:115c:a1e0::1", (f: Fleet) => f.nodes[0]!.host, "fd7a:115c:a1e0::1"],
    ["an image by digest on a registry with a port", IMAGE, `    image: registry.example.org:5000/ntfy/ntfy:v2@sha256:${"a".repeat(64)}`, (f: Fleet) => f.services.ntfy.image, `registry.example.org:5000/ntfy/ntfy:v2@sha256:${"a".repeat(64)}`],
    ["a pre-release version with build metadata", TS_VERSION, "    version: v1.2.3-rc.1+build.5", (f: Fleet) => f.artifacts.tailscale.version, "v1.2.3-rc.1+build.5"],
    ["an http LAN mirror with {arch} and a query", TS_URL, "    url: http://192.168.1.2:8080/ts/{arch}/t_{version}.tgz?x=1&y=%2F", (f: Fleet) => f.artifacts.tailscale.url, "http://192.168.1.2:8080/ts/{arch}/t_{version}.tgz?x=1&y=%2F"],
    ["a baseUrl with a port", BASE_URL, "    baseUrl: http://[fd7a:115c:a1e0::1]:8091", (f: Fleet) => f.services.ntfy.baseUrl, "http://[fd7a:115c:a1e0::1]:8091"],
    ["IPv6 and any-address CIDRs", ALLOW_FROM, "    allowFrom: [tailnet, fd00::/8, 0.0.0.0/0, 100.64.0.0/10]", (f: Fleet) => f.services.ntfy.allowFrom, ["tailnet", "fd00::/8", "0.0.0.0/0", "100.64.0.0/10"]],
    ["an MCP tool rule", '    allow: [Edit, "Bash(npm test)"]', "    allow: [mcp__github__get_issue, WebFetch(domain:example.com)]", (f: Fleet) => f.claude!.allow, ["mcp__github__get_issue", "WebFetch(domain:example.com)"]],
    ["a node and a profile named constructor", "  win:", "  constructor:", (f: Fleet) => f.nodes.map((n) => [n.name, n.roles.length]), [["hub", 7], ["constructor", 5]]],
  ] as const)("accepts %s", (_, from, to, read, value) => {
    expect(read(parseFleet(withLine(BASE, from, to), "F"))).toEqual(value);
  });

  it("a profile named constructor is a profile like any other", () => {
    const text = withLine(withLine(BASE, "  agent: [tailscale, claude, agentapi, iceccd, worker]", "  constructor: [tailscale, iceccd]"), PROFILE, "    profile: constructor");
    expect(parseFleet(text, "F").nodes[1]!.roles).toEqual(["tailscale", "iceccd"]);
  });

  it("shows at most 20 problem lines and counts the rest", () => {
    const text = BASE + Array.from({ length: 500 }, (_, i) => `  n${i}: { host: "-n${i}", os: debian, arch: x86_64, roles: [iceccd] }`).join("\n") + "\n";
    const lines = problemsOf(() => parseFleet(text, "F"));
    expect(lines).toHaveLength(20);
    expect(lines[0]).toBe('F:48:15 nodes.n0.host: expected a hostname, Tailscale name or IP address, got "-n0"');
  });
});

describe("hostile fleet files on disk (loadFleet)", () => {
  const dir = mkdtempSync(join(tmpdir(), "fleetkit-hostile-"));
  it.each([
    ["a folder", () => dir, `${dir}:1:1 (file): cannot read the fleet file (it is a folder); pass an existing file with --fleet FILE or set fleetkit:fleetFile`],
    ["a FIFO", () => fifo(dir), `${dir}/fifo.yaml:1:1 (file): the fleet file is a FIFO, not a regular file; fleetkit reads fleet.yaml only from a regular file (pass one with --fleet FILE)`],
    ["/dev/null", () => "/dev/null", "/dev/null:1:1 (file): the fleet file is a character device, not a regular file; fleetkit reads fleet.yaml only from a regular file (pass one with --fleet FILE)"],
    ["an 11 MB file", () => file(dir, "big.yaml", Buffer.alloc(11 * 1024 * 1024, "a")), `${dir}/big.yaml:1:1 (file): the fleet file is 11534336 bytes; a fleet file is at most 1048576 bytes (1 MiB; 1,000 nodes take about 100 KiB): is --fleet the right file?`],
    ["Latin-1 text", () => file(dir, "latin1.yaml", Buffer.from("fleet: caf\xe9\n", "latin1")), `${dir}/latin1.yaml:1:11 (file): the fleet file is not UTF-8 text (a binary file?); save it as UTF-8`],
  ])("%s: exit 2, one located line", (_, path, expected) => {
    const p = path();
    expect(problemsOf(() => loadFleet(p), p)).toEqual([expected]);
  });
});

function file(dir: string, name: string, content: string | Buffer): string {
  writeFileSync(join(dir, name), content);
  return join(dir, name);
}

function fifo(dir: string, name = "fifo.yaml"): string {
  const path = join(dir, name);
  execFileSync("mkfifo", [path]);
  return path;
}

// ─── Table 3: through the real CLI ───────────────────────────────────────────────────────────────────────

/** Runs `node bin/fleet.mjs …` as users do; a process still running after 60 s is killed (status null). */
function fleetCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["bin/fleet.mjs", ...args], { env: { ...process.env, FORCE_COLOR: "0" }, stdio: ["ignore", "pipe", "pipe"], timeout: 60_000, killSignal: "SIGKILL" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

describe("hostile fleet files through the CLI (node bin/fleet.mjs, a real process and pipe)", () => {
  const dir = mkdtempSync(join(tmpdir(), "fleetkit-hostile-cli-"));
  mkdirSync(join(dir, "fifos"));
  const write = (name: string, text: string | Buffer) => file(dir, name, text);
  const edited = (edit: (s: string) => string) => (name: string) => write(name, edit(BASE));
  const summary = (f: string) => `1 problem in ${f}; fix it and run again.`;

  /** [name, the --fleet argument (made on demand), the verb, the located line]. */
  const CASES: [string, (name: string) => string, string, (f: string) => string][] = [
    ["a FIFO", (n) => fifo(join(dir, "fifos"), `${n}.yaml`), "plan", (f) => `${f}:1:1 (file): the fleet file is a FIFO, not a regular file; fleetkit reads fleet.yaml only from a regular file (pass one with --fleet FILE)`],
    ["a FIFO (pin-artifacts)", (n) => fifo(join(dir, "fifos"), `${n}.yaml`), "pin-artifacts", (f) => `${f}:1:1 (file): the fleet file is a FIFO, not a regular file; fleetkit reads fleet.yaml only from a regular file (pass one with --fleet FILE)`],
    ["a FIFO (add-machine)", (n) => fifo(join(dir, "fifos"), `${n}.yaml`), "add-machine", (f) => `${f}:1:1 (file): the fleet file is a FIFO, not a regular file; fleetkit reads fleet.yaml only from a regular file (pass one with --fleet FILE)`],
    ["/dev/zero", () => "/dev/zero", "plan", (f) => `${f}:1:1 (file): the fleet file is a character device, not a regular file; fleetkit reads fleet.yaml only from a regular file (pass one with --fleet FILE)`],
    ["/dev/urandom", () => "/dev/urandom", "plan", (f) => `${f}:1:1 (file): the fleet file is a character device, not a regular file; fleetkit reads fleet.yaml only from a regular file (pass one with --fleet FILE)`],
    ["a 10 MB file", (n) => write(n, Buffer.alloc(10 * 1024 * 1024, "#")), "plan", (f) => `${f}:1:1 (file): the fleet file is 10485760 bytes; a fleet file is at most 1048576 bytes (1 MiB; 1,000 nodes take about 100 KiB): is --fleet the right file?`],
    ["random bytes", (n) => write(n, Buffer.from([0x66, 0x6c, 0x65, 0x65, 0x74, 0x3a, 0x20, 0xff, 0xfe, 0x00, 0x80])), "plan", (f) => `${f}:1:8 (file): the fleet file is not UTF-8 text (a binary file?); save it as UTF-8`],
    [
      "an alias bomb",
      (n) => write(n, `a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n${Array.from({ length: 9 }, (_, i) => `a${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(", ")}]`).join("\n")}\n`),
      "plan",
      (f) => `${f}:5:45 a4.7: aliases expand the document past 100000 values here (an alias bomb?); write the values out instead of aliasing them`,
    ],
    [
      "20,000 nodes",
      (n) => write(n, BASE + Array.from({ length: 19_998 }, (_, i) => `  n${i}: { host: n${i}, os: arch, arch: x86_64 }`).join("\n") + "\n"),
      "plan",
      (f) => `${f}:32:1 nodes: 20000 nodes; one fleet file declares at most 1000 (split the machines into several fleets, one fleet file and Pulumi stack each)`,
    ],
    ["a 100,000-character host", edited(line(HOST, `    host: ${"h".repeat(100_000)}`)), "plan", (f) => `${f}:34:11 nodes.hub.host: expected a hostname, Tailscale name or IP address of at most 253 characters, got "${"h".repeat(200)}…" (100000 characters)`],
    ["profile: __proto__", edited(line(PROFILE, "    profile: __proto__")), "plan", (f) => `${f}:47:14 nodes.win.profile: expected one of agent, got "__proto__"`],
    ["profile: toString", edited(line(PROFILE, "    profile: toString")), "plan", (f) => `${f}:47:14 nodes.win.profile: expected one of agent, got "toString"`],
    ["profile: constructor", edited(line(PROFILE, "    profile: constructor")), "plan", (f) => `${f}:47:14 nodes.win.profile: expected one of agent, got "constructor"`],
    ["$(…) in tailnet (a LaunchDaemon's sh -c)", edited(line(TAILNET, 'tailnet: "ts.net$(touch /tmp/pwned)"')), "plan", (f) => `${f}:2:10 tailnet: expected a DNS name of lower-case labels joined by dots, like tail1234.ts.net, got "ts.net$(touch /tmp/pwned)"`],
    ["a newline in tailnet (ExecStartPre=+ in a unit)", edited(line(TAILNET, 'tailnet: "ts.net\\nExecStartPre=+/bin/id"')), "plan", (f) => `${f}:2:10 tailnet: expected a DNS name of lower-case labels joined by dots, like tail1234.ts.net, got "ts.net\\nExecStartPre=+/bin/id"`],
    ["the heredoc terminator in tailnet", edited(line(TAILNET, 'tailnet: "ts.net\\nFLEETKIT_EOF\\n"')), "plan", (f) => `${f}:2:10 tailnet: expected a DNS name of lower-case labels joined by dots, like tail1234.ts.net, got "ts.net\\nFLEETKIT_EOF\\n"`],
    ["$(…) in the Tailscale version (a root tar line)", edited(line(TS_VERSION, '    version: "1.90.6$(id)"')), "plan", (f) => `${f}:28:14 artifacts.tailscale.version: expected a semantic version like 1.90.6 or v0.10.0, got "1.90.6$(id)"`],
    ['a " in baseUrl (server.yml)', edited(line(BASE_URL, `    baseUrl: 'https://ntfy.example.org"x'`)), "plan", (f) => `${f}:15:14 services.ntfy.baseUrl: expected an http(s) URL of a host and an optional port, no path (like https://ntfy.example.org), got "https://ntfy.example.org\\"x"`],
    ["ESC in a tag value (the terminal)", edited(line(TAGS, '    tags: { gpu: "\\e[2J" }')), "plan", (f) => `${f}:41:18 nodes.hub.tags.gpu: expected a tag value (printable text), got "\\u001b[2J"`],
    ["a raw NUL byte in the file", edited(line(HOST, "    host: hub\u0000.example.org")), "plan", (f) => `${f}:34:11 nodes.hub.host: expected a hostname, Tailscale name or IP address, got "hub\\u0000.example.org"`],
    ["nesting 200,000 deep", edited(line(TAGS, `    tags: { gpu: ${"[".repeat(200_000)}${"]".repeat(200_000)} }`)), "plan", (f) => `${f}:41:78 (yaml): values nested more than 64 levels deep (fleet.yaml nests 5); flatten this value`],
    ["a wrong type", edited(line("  budgetUsdPerSession: 5", '  budgetUsdPerSession: "five"')), "plan", (f) => `${f}:6:24 defaults.budgetUsdPerSession: expected a number, got "five"`],
  ];

  it.each(CASES.map(([name, make, verb, expected], i) => ({ name, make, verb, expected, i })))(
    "$name ($verb): exit 2, one located line, no stack trace, within the timeout",
    async ({ make, verb, expected, i }) => {
      const f = make(`case${i}`);
      const r = await fleetCli([verb, "--fleet", f]);
      expect(r).toEqual({ status: 2, stdout: "", stderr: `${expected(f)}\n${summary(f)}\n` });
    },
    90_000,
  );

  it("a value equal to the heredoc terminator, on no line of its own, plans (exit 0)", async () => {
    const f = write("eof.yaml", line(TAGS, "    tags: { gpu: FLEETKIT_EOF, FLEETKIT_EOF: x }")(line('    allow: [Edit, "Bash(npm test)"]', "    allow: [Edit, FLEETKIT_EOF]")(BASE)));
    const r = await fleetCli(["plan", "--fleet", f]);
    expect([r.status, r.stderr, r.stdout.split("\n")[0]]).toEqual([0, "", `fleet hostile (${f}): 2 nodes, 12 roles, 32 resources`]);
  }, 90_000);
});
