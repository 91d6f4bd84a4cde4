// @needs systemd-analyze python3
/**
 * Hostile fleet values cannot change what a rendered script or config means (issue 10, "Every fleet.yaml
 * string that reaches a script is validated and quoted by construction": this is the quoting half, so the
 * fleets here are built in TypeScript and never pass the loader's validation).
 *
 * For every role on every OS family, each bundle is rendered twice: once with a hostile value in every
 * string field (table A) or in one field at a time (table B), once with a plain placeholder in the same
 * fields. Either rendering refuses with an Error that names the template and variable (or fragment, or plist
 * key) — allowed where the value cannot be represented, like a newline in a systemd unit — or every
 * artifact reads back, through a real parser, as its placeholder twin with the hostile text in place of the
 * placeholder: sh through tree-sitter-bash (every word, operator and here-document in order, the hostile text
 * only inside quotes or comments) plus `dash -n` and dash expanding every word that holds the value in a
 * sandbox where nothing may appear; systemd units through systemd's own parser (`systemd --test`); plists
 * through plistlib; YAML, JSON through their parsers; PowerShell through its tree-sitter grammar.
 *
 * The four exploits the issue showed are named cases that failed before this change.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { Fleet, FleetNode, OsName, RoleName } from "../../model/fleet.js";
import { loadFleet } from "../../model/load.js";
import { renderBundle } from "../../roles/index.js";
import type { Bundle } from "../../roles/types.js";
import { yamlProblems } from "../static/checkers.js";
import { dashSyntax, mapStrings, plistValues, psReadBack, runWords, shReadBack, systemdReadBack, type UnitReading } from "../static/hostile.js";

const MARKER = "PWNED";
const PLACEHOLDER = "fkvalue";

/** Hostile values: each tries to break out of one kind of quoting or syntax, and each names the marker. */
const HOSTILE: [string, string][] = [
  ["command substitution", "$(touch /tmp/PWNED)"],
  ["backticks", "`touch /tmp/PWNED`"],
  ["single quote", "x'$(touch /tmp/PWNED)'y"],
  ["double quote", 'x"$(touch /tmp/PWNED)"y'],
  ["semicolon", "a;touch /tmp/PWNED;b"],
  ["ampersand", "a&touch /tmp/PWNED&b"],
  ["pipe", "a|touch /tmp/PWNED|b"],
  ["newline + systemd directive", "x\nExecStartPre=+/bin/sh -c 'touch /tmp/PWNED'"],
  ["systemd specifier", "%n%%PWNED%"],
  ["plist markup", "</string><key>PWNED</key><string>"],
  ["YAML key and comment", "a: PWNED # b"],
  ["IFS expansion", "${IFS}touch${IFS}/tmp/PWNED"],
  ["leading dash", "-PWNED"],
  ["trailing backslash", "PWNED\\"],
  ["line separator and CR", "PWNED\u2028x\ry"],
];

/** The kitchen sink: most of the above at once (table B puts it into one field at a time). */
const SINK = "a'b\"c$(touch /tmp/PWNED)`touch /tmp/PWNED`;&|${IFS}%n</string><key>: #\\";
const SINK_NEWLINE = "x\nExecStartPre=+/bin/sh -c 'touch /tmp/PWNED'\n#";

const NODES: { os: OsName; arch: "x86_64" | "aarch64"; roles: RoleName[] }[] = [
  { os: "macos", arch: "x86_64", roles: ["tailscale", "claude", "iceccd", "agentapi", "worker"] },
  { os: "debian", arch: "x86_64", roles: ["tailscale", "claude", "icecc-scheduler", "iceccd", "toolchains", "agentapi", "ntfy", "queue", "worker"] },
  { os: "raspios", arch: "aarch64", roles: ["tailscale", "claude", "iceccd", "agentapi", "worker"] },
  { os: "arch", arch: "x86_64", roles: ["tailscale", "claude", "iceccd", "toolchains", "agentapi", "queue", "worker"] },
  { os: "windows-wsl", arch: "x86_64", roles: ["tailscale", "claude", "iceccd", "agentapi", "worker"] },
];

/** Every string field of a fleet that renderers read, by name (table B varies one at a time). */
const FIELDS = [
  "fleet.name", "tailnet", "claude.version", "claude.defaultMode", "claude.allow", "claude.allowedDomains",
  "ntfy.topic", "ntfy.image", "ntfy.baseUrl", "ntfy.upstreamBaseUrl", "ntfy.allowFrom",
  "agentapi.version", "agentapi.url", "agentapi.sha256", "tailscale.version", "tailscale.url", "tailscale.sha256",
  "node.name", "node.host", "node.bootstrapHost", "node.user", "node.sshKeyPath", "node.profile", "node.wslDistro", "node.tags", "people",
] as const;
type Field = (typeof FIELDS)[number];

/**
 * A fleet built in TypeScript (no loader, no validation) whose field `f` holds `value(f)`; the real mesh's
 * values elsewhere when `value` returns undefined. Node names and hosts get their index appended (they are
 * keys).
 */
function fleetWith(value: (f: Field) => string | undefined): Fleet {
  const mesh = loadFleet("fleet.yaml");
  const v = (f: Field, plain: string) => value(f) ?? plain;
  const sums = (f: Field) => ({ "linux-x86_64": v(f, "1".repeat(64)), "darwin-x86_64": v(f, "2".repeat(64)) });
  const nodes: FleetNode[] = NODES.map((n, i) => ({
    name: `${v("node.name", "node")}${i}`,
    host: `${v("node.host", "host")}${i}`,
    bootstrapHost: `${v("node.bootstrapHost", "192.168.1.")}${i}`,
    os: n.os,
    arch: n.arch,
    user: v("node.user", "fleet"),
    sshPort: 22,
    sshKeyPath: v("node.sshKeyPath", "~/.ssh/id_ed25519"),
    profile: v("node.profile", "agents"),
    roles: n.roles,
    budgetUsdPerSession: 5,
    iceccMaxJobs: 4,
    ...(n.os === "windows-wsl" ? { wslDistro: v("node.wslDistro", "Debian") } : {}),
    docker: n.os === "debian",
    builder: n.roles.includes("toolchains"),
    tags: { [v("node.tags", "site")]: v("node.tags", "home") },
    perDialTimeoutSeconds: 10,
    dialErrorLimit: 3,
  }));
  return {
    name: v("fleet.name", "mesh"),
    file: "hostile.fleet.yaml",
    tailnet: v("tailnet", "tail1234.ts.net"),
    people: { [v("people", "alice")]: "operator" },
    claude: {
      version: v("claude.version", "2.1.331"),
      defaultMode: v("claude.defaultMode", "bypassPermissions") as NonNullable<Fleet["claude"]>["defaultMode"],
      allow: [v("claude.allow", "Edit")],
      sandbox: true,
      allowedDomains: [v("claude.allowedDomains", "*.dev")],
    },
    services: {
      ...mesh.services,
      ntfy: {
        port: 8091,
        topic: v("ntfy.topic", "fleet-tasks"),
        image: v("ntfy.image", "binwiederhier/ntfy:v2.14.0"),
        baseUrl: v("ntfy.baseUrl", "https://ntfy.example.net"),
        upstreamBaseUrl: v("ntfy.upstreamBaseUrl", "https://ntfy.sh"),
        allowFrom: [v("ntfy.allowFrom", "fleet")],
      } as Fleet["services"]["ntfy"],
    },
    artifacts: {
      agentapi: { version: v("agentapi.version", "v0.10.0"), url: v("agentapi.url", mesh.artifacts.agentapi.url), sha256: sums("agentapi.sha256") },
      tailscale: { version: v("tailscale.version", "1.90.6"), url: v("tailscale.url", mesh.artifacts.tailscale.url), sha256: sums("tailscale.sha256") },
    },
    profiles: { [v("node.profile", "agents")]: ["tailscale"] },
    nodes,
  };
}

/** How one bundle fared: refused (with the message), or rendered. */
type Outcome = { refused: string } | { bundle: Bundle };

function render(fleet: Fleet, i: number, role: RoleName): Outcome {
  try {
    return { bundle: renderBundle(fleet, fleet.nodes[i]!, role) };
  } catch (e) {
    return { refused: (e as Error).message };
  }
}

/** An Error that names what refused the value: a template and variable, a fragment, a plist key, a bundle file. */
const NAMED_REFUSAL = /^(template [\w/.-]+: \{\{\w+\}\}: .* cannot be written here: |sh fragment ".*": .* cannot be written here: |PowerShell fragment ".*": .* cannot be written here: |launchd plist [\w.]+\S*: |sudoers rule \S+: |bundle file \S+ contains the line FLEETKIT_EOF)/s;

/** One row of a table: a case (hostile text in some fields), a node, a role, and what to compare. */
interface Row {
  label: string;
  hostile: string;
  hostileOutcome: Outcome;
  plainOutcome: Outcome;
}

interface Verdict {
  findings: string[];
  /** Artifact kinds read back with the hostile value in them (for the coverage check). */
  kinds: string[];
}

/**
 * The runtime payload (base64 of the repository's runtime files, the same bytes in every render) replaced by
 * one line before tree-sitter reads a script: it holds no fleet value and is most of a worker's install.
 * `dash -n` still reads the whole script.
 */
const withoutPayload = (s: string) => s.replace(/<<'FLEETKIT_RUNTIME'\n[A-Za-z0-9+/=\n]*?\nFLEETKIT_RUNTIME\n/g, "<<'FLEETKIT_RUNTIME'\npayload\nFLEETKIT_RUNTIME\n");

const plainReadings = new Map<string, Promise<Awaited<ReturnType<typeof shReadBack>>>>();
const plainRead = (s: string) => {
  if (!plainReadings.has(s)) plainReadings.set(s, shReadBack(withoutPayload(s), MARKER));
  return plainReadings.get(s)!;
};

async function judge(rows: Row[]): Promise<Map<string, Verdict>> {
  const out = new Map<string, Verdict>();
  const syntax: { row: string; what: string; script: string }[] = [];
  const units: { id: string; unit: string; content: string }[] = [];
  const plists: { id: string; content: string }[] = [];
  const words: { row: string; source: string; value: string }[] = [];
  const pending: { row: string; unitId?: [string, string, number]; plistId?: [string, string] }[] = [];
  for (const row of rows) {
    const v: Verdict = { findings: [], kinds: [] };
    out.set(row.label, v);
    const { hostileOutcome: h, plainOutcome: p, hostile } = row;
    if ("refused" in p) {
      v.findings.push(`the placeholder fleet does not render: ${p.refused}`);
      continue;
    }
    if ("refused" in h) {
      if (!NAMED_REFUSAL.test(h.refused)) v.findings.push(`refused without naming what: ${h.refused}`);
      continue;
    }
    const hb = h.bundle;
    const pb = p.bundle;
    const map = (s: string) => s.replaceAll(hostile, PLACEHOLDER).replaceAll(hb.hash, pb.hash);
    if (JSON.stringify(mapStrings(hb.files.map((f) => [f.path, f.mode, f.owner, f.group ?? null, f.kind]), map)) !== JSON.stringify(pb.files.map((f) => [f.path, f.mode, f.owner, f.group ?? null, f.kind]))) {
      v.findings.push("the files (paths, modes, owners) differ from the placeholder render by more than the value");
    }
    const scripts: [string, string, string][] = [["install", hb.install, pb.install], ["uninstall", hb.uninstall, pb.uninstall]];
    hb.files.forEach((f, i) => {
      if (f.kind === "shell") scripts.push([f.path, f.content, pb.files[i]!.content]);
    });
    for (const [what, hs, ps] of scripts) {
      const hasValue = hs.includes(MARKER);
      if (hs === ps) continue; // the value does not reach this script

      if (hb.target === "windows-host" && (what === "install" || what === "uninstall")) {
        const [hr, pr] = await Promise.all([psReadBack(hs, MARKER, map), psReadBack(ps, MARKER)]);
        v.findings.push(...hr.errors.map((e) => `${what}: PowerShell grammar: ${e}`), ...hr.markerInCode.map((e) => `${what}: value outside a string: ${e}`));
        // The WSL distro script travels as base64 inside a string: compare it decoded, as the sh script it is.
        const DISTRO = /^echo ([A-Za-z0-9+/=]+) \| base64 -d \| sh$/;
        hr.strings.forEach((s, i) => {
          const m = DISTRO.exec(s);
          const pm = DISTRO.exec(pr.strings[i] ?? "");
          if (m && pm) {
            scripts.push([`${what} › WSL distro script`, Buffer.from(m[1]!, "base64").toString("utf8"), Buffer.from(pm[1]!, "base64").toString("utf8")]);
            hr.strings[i] = pr.strings[i] = "echo <distro script> | base64 -d | sh";
          }
        });
        if (JSON.stringify(hr.strings) !== JSON.stringify(pr.strings)) v.findings.push(`${what}: its PowerShell strings are not the placeholder's with the value in place`);
        if (hasValue) v.kinds.push("powershell");
        continue;
      }
      syntax.push({ row: row.label, what, script: hs });
      const [hr, pr] = await Promise.all([shReadBack(withoutPayload(hs), MARKER, map), plainRead(ps)]);
      v.findings.push(...hr.errors.map((e) => `${what}: tree-sitter-bash: ${e}`), ...hr.markerInCode.map((e) => `${what}: value outside quotes: ${e}`));
      // The Debian tarball's name carries a hash of its URL (roles/tailscale/render.ts tailscaleTarball): set aside.
      const [hc, pc] = [hr.canonical, pr.canonical].map((c) => c.map((t) => t.replace(/(tailscale-(?:linux|darwin)-(?:x86_64|aarch64))-[0-9a-f]{12}\.tgz/g, "$1-<url hash>.tgz")));
      if (hc!.length !== pc!.length) v.findings.push(`${what}: ${hc!.length} tokens where the placeholder render has ${pc!.length}`);
      else {
        const at = hc!.findIndex((t, i) => t !== pc![i]);
        if (at >= 0) v.findings.push(`${what}: token ${at} reads back as ${hc![at]!.slice(0, 200)}, the placeholder's as ${pc![at]!.slice(0, 200)}`);
      }
      words.push(...hr.literalWords.map((w) => ({ row: row.label, ...w })));
      if (hasValue) v.kinds.push("sh");
    }
    hb.files.forEach((f, i) => {
      const pf = pb.files[i]!;
      const hasValue = f.content.includes(MARKER);
      if (f.content === pf.content) return; // the value does not reach this file
      if (f.kind === "systemd") {
        if (f.content.split("\n").length !== pf.content.split("\n").length) v.findings.push(`${f.path}: ${f.content.split("\n").length} lines, the placeholder's has ${pf.content.split("\n").length}`);
        const unit = f.path.split("/").pop()!;
        units.push({ id: `${row.label}|h|${i}`, unit, content: f.content }, { id: `${row.label}|p|${i}`, unit, content: pf.content });
        pending.push({ row: row.label, unitId: [`${row.label}|h|${i}`, `${row.label}|p|${i}`, i] });
        if (hasValue) v.kinds.push("systemd");
      } else if (f.kind === "launchd") {
        plists.push({ id: `${row.label}|h|${i}`, content: f.content }, { id: `${row.label}|p|${i}`, content: pf.content });
        pending.push({ row: row.label, plistId: [`${row.label}|h|${i}`, `${row.label}|p|${i}`] });
        if (hasValue) v.kinds.push("launchd");
      } else if (f.kind === "yaml") {
        const problems = yamlProblems(f.content);
        v.findings.push(...problems.map((e) => `${f.path}: ${e}`));
        if (problems.length === 0 && JSON.stringify(mapStrings(parseYaml(f.content), map)) !== JSON.stringify(parseYaml(pf.content))) v.findings.push(`${f.path}: the YAML does not read back as the placeholder's with the value in place`);
        if (hasValue) v.kinds.push("yaml");
      } else if (f.kind === "json") {
        if (JSON.stringify(mapStrings(JSON.parse(f.content), map)) !== JSON.stringify(JSON.parse(pf.content))) v.findings.push(`${f.path}: the JSON does not read back as the placeholder's with the value in place`);
        if (hasValue) v.kinds.push("json");
      } else if (f.kind === "text" && f.path.endsWith(".md")) {
        if (f.content.replaceAll(hostile, PLACEHOLDER) !== pf.content) v.findings.push(`${f.path}: the text is not the placeholder's with the value in place`);
        if (hasValue) v.kinds.push("text");
      } else if (f.kind === "text" && /\.[cm]?js$/.test(f.path)) {
        const code = (t: string) => t.split("\n").filter((l) => !l.startsWith("//"));
        if (f.content.split("\n").length !== pf.content.split("\n").length || JSON.stringify(code(f.content)) !== JSON.stringify(code(pf.content))) v.findings.push(`${f.path}: the value reached JavaScript code, not only its // comments`);
        const check = spawnSync(process.execPath, ["--input-type=module", "--check"], { input: f.content, encoding: "utf8" });
        if (check.status !== 0) v.findings.push(`${f.path}: node --check: ${check.stderr.trim().split("\n")[0]}`);
        if (hasValue) v.kinds.push("js");
      }
    });
  }
  const complaints = await dashSyntax(syntax.map((s) => s.script));
  syntax.forEach((s, i) => {
    if (complaints[i]) out.get(s.row)!.findings.push(`${s.what}: dash -n: ${complaints[i]}`);
  });
  // systemd and plistlib read everything in one run each.
  const [unitReadings, plistReadings] = await Promise.all([systemdReadBack(units), plistValues(plists)]);
  const show = (r: UnitReading, map: (s: string) => string) => JSON.stringify({ settings: r.settings.map(map), commands: r.commands.map((c) => c.map(map)) });
  for (const p of pending) {
    const row = rows.find((r) => r.label === p.row)!;
    const map = (s: string) => s.replaceAll(row.hostile, PLACEHOLDER);
    const v = out.get(p.row)!;
    if (p.unitId) {
      const [hid, pid, i] = p.unitId;
      const hr = unitReadings.get(hid)!;
      const pr = unitReadings.get(pid)!;
      const path = (row.hostileOutcome as { bundle: Bundle }).bundle.files[i]!.path;
      v.findings.push(...hr.warnings.map((w) => `${path}: systemd: ${w}`), ...pr.warnings.map((w) => `${path} (placeholder): systemd: ${w}`));
      if (show(hr, map) !== show(pr, (s) => s)) v.findings.push(`${path}: systemd reads ${show(hr, map)}, the placeholder unit ${show(pr, (s) => s)}`);
    }
    if (p.plistId) {
      const [hid, pid] = p.plistId;
      const h = plistReadings.get(hid);
      const pl = plistReadings.get(pid);
      if (JSON.stringify(mapStrings(h, map)) !== JSON.stringify(pl)) v.findings.push(`plist reads back as ${JSON.stringify(h).slice(0, 300)}, not the placeholder's with the value in place`);
    }
  }
  // dash expands every literal word that holds the value, in a sandbox: it must agree with the parse, and nothing may appear.
  const byRow = new Map<string, { source: string; value: string }[]>();
  for (const w of words) byRow.set(w.row, [...(byRow.get(w.row) ?? []), w]);
  for (const [row, ws] of byRow) {
    const { values, created } = await runWords(ws.map((w) => w.source));
    const v = out.get(row)!;
    if (created.length) v.findings.push(`dash created ${created.join(", ")} while expanding the words`);
    ws.forEach((w, i) => {
      if (values[i] !== w.value) v.findings.push(`dash expands ${JSON.stringify(w.source.slice(0, 120))} to ${JSON.stringify(values[i])}, not ${JSON.stringify(w.value)}`);
    });
  }
  return out;
}

function rowsFor(caseLabel: string, hostile: string, fleet: Fleet, plain: Fleet): Row[] {
  return NODES.flatMap((n, i) =>
    n.roles.map((role) => ({ label: `${caseLabel} › ${n.os} › ${role}`, hostile, hostileOutcome: render(fleet, i, role), plainOutcome: render(plain, i, role) })),
  );
}

const TABLE_A: Row[] = HOSTILE.flatMap(([label, h]) => rowsFor(`every field: ${label}`, h, fleetWith(() => h), fleetWith(() => PLACEHOLDER)));
const TABLE_B: Row[] = FIELDS.flatMap((field) =>
  [["kitchen sink", SINK], ["newline", SINK_NEWLINE]].flatMap(([label, h]) =>
    rowsFor(`${field}: ${label}`, h!, fleetWith((f) => (f === field ? h : undefined)), fleetWith((f) => (f === field ? PLACEHOLDER : undefined))),
  ),
);

const isRoot = process.getuid?.() === 0;
let verdicts: Map<string, Verdict>;

beforeAll(async () => {
  if (!isRoot) return;
  verdicts = await judge([...TABLE_A, ...TABLE_B]);
}, 600_000);

describe.skipIf(!isRoot)("hostile values in every string field (table A): refused by name, or read back as the value", () => {
  it.each(TABLE_A.map((r) => [r.label, r] as const))("%s", (label) => {
    expect(verdicts.get(label)!.findings).toEqual([]);
  });
});

describe.skipIf(!isRoot)("one field at a time (table B): refused by name, or read back as the value", () => {
  it.each(TABLE_B.map((r) => [r.label, r] as const))("%s", (label) => {
    expect(verdicts.get(label)!.findings).toEqual([]);
  });

  it("the tables read hostile values back from every kind of artifact, not only refuse them", () => {
    const kinds = new Map<string, number>();
    for (const v of verdicts.values()) for (const k of v.kinds) kinds.set(k, (kinds.get(k) ?? 0) + 1);
    for (const k of ["sh", "powershell", "systemd", "launchd", "yaml", "json", "text", "js"]) expect(kinds.get(k) ?? 0, k).toBeGreaterThan(0);
    const rendered = [...TABLE_A, ...TABLE_B].filter((r) => "bundle" in r.hostileOutcome).length;
    expect(rendered).toBeGreaterThan([...TABLE_A, ...TABLE_B].length / 2);
  });
});

// ---- the four exploits the issue showed --------------------------------------------------------------------

const mesh = loadFleet("fleet.yaml");
const meshNode = (f: Fleet, name: string) => f.nodes.find((n) => n.name === name)!;
const PINS = { "linux-x86_64": "1".repeat(64), "linux-aarch64": "2".repeat(64), "darwin-x86_64": "3".repeat(64), "darwin-aarch64": "4".repeat(64) };

/**
 * Runs `argv` in a private mount namespace where `/usr/local` and `/tmp` are fresh directories (`local`
 * filled with `stubs`, path → content, made executable) and the working directory is a third; returns
 * what the program left in each. Needs root.
 */
function sandboxRun(argv: string[], stubs: Record<string, string>, script = ""): { status: number; stderr: string; tmp: Record<string, string>; cwd: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "fk-exploit-"));
  try {
    const [local, tmp, cwd] = ["local", "tmp", "cwd"].map((d) => join(dir, d));
    for (const d of [local!, tmp!, cwd!]) mkdirSync(d);
    chmodSync(tmp!, 0o1777);
    for (const [path, content] of Object.entries(stubs)) {
      const file = join(local!, path.replace(/^\/usr\/local\//, ""));
      mkdirSync(join(file, ".."), { recursive: true });
      writeFileSync(file, content, { mode: 0o755 });
    }
    // cd first: the directories live under the real /tmp, which the bind mount hides.
    const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", 'cd "$3" && mount --bind "$1" /usr/local && mount --bind "$2" /tmp && shift 3 && exec "$@"', "sh", local!, tmp!, cwd!, ...argv], {
      encoding: "utf8",
      input: script,
    });
    const files = Object.fromEntries(readdirSync(tmp!).map((f) => [f, readFileSync(join(tmp!, f), "utf8")]));
    return { status: r.status ?? -1, stderr: r.stderr, tmp: files, cwd: readdirSync(cwd!) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!isRoot)("the exploits of issue 10 no longer run", () => {
  it("$(…) in tailnet does not run inside the macOS AgentAPI LaunchDaemon's sh -c: AgentAPI gets the literal name", async () => {
    const fleet: Fleet = { ...mesh, tailnet: "tail.ts.net$(touch /tmp/PWNED)", artifacts: { ...mesh.artifacts, agentapi: { ...mesh.artifacts.agentapi, sha256: PINS } } };
    const b = renderBundle(fleet, meshNode(fleet, "imac"), "agentapi");
    const job = (await plistValues([{ id: "job", content: b.files[0]!.content }])).get("job") as { ProgramArguments: string[] };
    const argvFile = "/tmp/agentapi-argv";
    const r = sandboxRun(job.ProgramArguments, {
      "/usr/local/etc/fleetkit/claude.env": "ANTHROPIC_API_KEY=sk-ant-test\n",
      "/usr/local/bin/node": "#!/bin/sh\nexit 0\n",
      "/usr/local/libexec/fleetkit/claude-onboarded.mjs": "",
      "/usr/local/libexec/fleetkit/agentapi": `#!/bin/sh\nprintf '%s\\n' "$@" > ${argvFile}\n`,
    });
    expect([r.status, r.stderr]).toEqual([0, ""]);
    expect(Object.keys(r.tmp)).toEqual(["agentapi-argv"]);
    const argv = r.tmp["agentapi-argv"]!.split("\n");
    expect(argv[argv.indexOf("--allowed-hosts") + 1]).toBe("localhost,127.0.0.1,imac,imac.tail.ts.net$(touch /tmp/PWNED)");
  });

  it("$(…) in the Tailscale version does not run in the root tar line: tar gets literal words", () => {
    const version = "1.90.6$(touch${IFS}PWNED)";
    const fleet: Fleet = { ...mesh, artifacts: { ...mesh.artifacts, tailscale: { ...mesh.artifacts.tailscale, version, sha256: PINS } } };
    const install = renderBundle(fleet, meshNode(fleet, "rpi1"), "tailscale").install;
    const tarLines = install.split("\n").filter((l) => /^\s*tar /.test(l));
    expect(tarLines).toHaveLength(1);
    // The line itself, run by sh as root would: tar is a function that records its arguments.
    const script = `tar() { printf '%s\\n' "$@" > /tmp/tar-argv; }\nfk_ts_tmp=/tmp/x\n${tarLines[0]}\n`;
    const r = sandboxRun(["sh", "-s"], {}, script);
    expect([r.status, r.stderr, r.cwd]).toEqual([0, "", []]);
    const tarball = expect.stringMatching(/^\/var\/lib\/fleetkit\/downloads\/tailscale-linux-aarch64-[0-9a-f]{12}\.tgz$/);
    expect(r.tmp["tar-argv"]!.split("\n").filter(Boolean)).toEqual(["-xzf", tarball, "-C", "/tmp/x", "--strip-components=1"]);
    expect(install).toMatch(new RegExp(`^fk_download 'https://pkgs\\.tailscale\\.com/stable/tailscale_1\\.90\\.6\\$\\(touch\\$\\{IFS\\}PWNED\\)_arm64\\.tgz' '${PINS["linux-aarch64"]}' '/var/lib/fleetkit/downloads/tailscale-linux-aarch64-[0-9a-f]{12}\\.tgz' 0644$`, "m"));
  });

  it("a newline in tailnet cannot put an ExecStartPre=+ line into a unit: rendering refuses, naming template and variable", () => {
    const fleet: Fleet = { ...mesh, tailnet: "tail.ts.net\nExecStartPre=+/bin/sh -c 'touch /tmp/PWNED'" };
    expect(() => renderBundle(fleet, meshNode(fleet, "rpi1"), "agentapi")).toThrow(
      /^template agentapi\/claude-agentapi\.service: \{\{allowedHosts\}\}: ".*" cannot be written here: a systemd unit value cannot hold the control character newline \(U\+000A\)/,
    );
  });

  it.each([
    ['a " in baseUrl', 'https://ntfy.example.net/"a: b # c'],
    ["a newline and a key in baseUrl", "https://ntfy.example.net/\nauth-default-access: read-write"],
  ])("%s stays inside base-url: server.yml parses, with the literal URL and no other key", (_, baseUrl) => {
    const remote = loadFleet("examples/remote-tasks.fleet.yaml");
    const fleet: Fleet = { ...remote, services: { ...remote.services, ntfy: { ...remote.services.ntfy, baseUrl } } };
    const b = renderBundle(fleet, meshNode(fleet, "raspberrypi"), "ntfy");
    const yml = b.files.find((f) => f.kind === "yaml")!.content;
    expect(yamlProblems(yml)).toEqual([]);
    const parsed = parseYaml(yml) as Record<string, unknown>;
    expect(parsed["base-url"]).toBe(baseUrl);
    expect(parsed["auth-default-access"]).toBe("deny-all");
    expect(Object.keys(parsed)).toEqual([
      "base-url", "listen-http", "cache-file", "cache-duration", "attachment-cache-dir", "behind-proxy",
      "auth-file", "auth-default-access", "enable-login", "enable-signup", "auth-users", "auth-access",
    ]);
  });
});

it("the exploit sandbox is a sandbox: a command that does run leaves its file there, not on this machine", () => {
  if (!isRoot) return;
  const r = sandboxRun(["sh", "-c", "touch /tmp/PWNED PWNED"], {});
  expect([r.status, Object.keys(r.tmp), r.cwd]).toEqual([0, ["PWNED"], ["PWNED"]]);
  expect(existsSync("/tmp/PWNED")).toBe(false);
  expect(execFileSync("sh", ["-c", "echo ok"], { encoding: "utf8" })).toBe("ok\n");
});
