/**
 * The real checkers of the static level, each run in batches (this machine has 2 cores; one process per
 * artifact would spend most of the level starting processes). Every function takes `{ id, content }` items
 * and returns the findings per id; an id with no findings maps to `[]`. A checker that cannot run (tool
 * missing) throws with the apt package to install, so the level fails loudly instead of passing empty.
 */
import { execFile } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseDocument } from "yaml";
import { Language, Parser } from "web-tree-sitter";

/** Something to check: `id` names it in findings, `content` is the artifact's text. */
export interface Item {
  id: string;
  content: string;
}

/** Findings per item id, one human-readable line each (`line:col code: message`). */
export type Findings = Map<string, string[]>;

function emptyFindings(items: Item[]): Findings {
  return new Map(items.map((i) => [i.id, []]));
}

function run(cmd: string, args: string[], opts: { input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 256 * 1024 * 1024, env: { ...process.env, SYSTEMD_LOG_COLOR: "0", SYSTEMD_LOG_LOCATION: "0" } }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && typeof e.code === "string") reject(new Error(`cannot run ${cmd} (${e.code}); install it (see .ci/run)`));
      else resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr });
    });
    // A checker that exits before reading stdin (node --check, shellcheck with files) closes the pipe: EPIPE
    // there is no finding, its exit status and output are.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}

/** Splits `items` into `n` groups of about equal total size (largest first, into the lightest group). */
function balance<T extends Item>(items: T[], n: number): T[][] {
  const groups = Array.from({ length: n }, () => ({ size: 0, items: [] as T[] }));
  for (const it of [...items].sort((a, b) => b.content.length - a.content.length)) {
    const g = groups.reduce((a, b) => (b.size < a.size ? b : a));
    g.items.push(it);
    g.size += it.content.length;
  }
  return groups.map((g) => g.items).filter((g) => g.length > 0);
}

/**
 * The shell dialect shellcheck should use: from a `# shellcheck shell=X` directive or the shebang, else
 * `sh` (every fleetkit script and sourced file is POSIX sh unless it says otherwise).
 */
export function shellDialect(content: string): "sh" | "bash" | "dash" | "ksh" {
  const directive = content.match(/^#\s*shellcheck\s+shell=(\w+)/m)?.[1];
  const shebang = content.match(/^#!\s*(?:\/usr\/bin\/env\s+)?\S*?(\w+)(?:\s|$)/)?.[1];
  const d = directive ?? shebang ?? "sh";
  return d === "bash" || d === "dash" || d === "ksh" ? d : "sh";
}

/**
 * Runs `shellcheck -S warning` (severity warning or worse) over every item: all scripts are written to one
 * temp dir and checked by two shellcheck processes in parallel (per dialect), `-f json1` so each finding is
 * attributed to its item. Source: shellcheck(1), `--severity`, `--format=json1`.
 * @throws Error when shellcheck is missing or exits with a usage error (exit code > 1).
 */
export async function shellcheck(items: Item[], processes = 2): Promise<Findings> {
  const out = emptyFindings(items);
  if (items.length === 0) return out;
  const dir = mkdtempSync(join(tmpdir(), "fleetkit-shellcheck-"));
  try {
    const byFile = new Map<string, Item>();
    const jobs: Promise<void>[] = [];
    const byDialect = new Map<string, (Item & { file: string })[]>();
    items.forEach((it, i) => {
      const file = join(dir, `${i}.sh`);
      writeFileSync(file, it.content);
      byFile.set(file, it);
      const d = shellDialect(it.content);
      byDialect.set(d, [...(byDialect.get(d) ?? []), { ...it, file }]);
    });
    for (const [dialect, group] of byDialect) {
      for (const chunk of balance(group, processes)) {
        jobs.push(
          run("shellcheck", ["-S", "warning", "-s", dialect, "-f", "json1", ...chunk.map((c) => c.file)]).then(({ code, stdout, stderr }) => {
            if (code > 1) throw new Error(`shellcheck failed (exit ${code}): ${stderr.trim()}`);
            const { comments } = JSON.parse(stdout) as { comments: { file: string; line: number; column: number; level: string; code: number; message: string }[] };
            for (const c of comments) {
              const it = byFile.get(c.file);
              if (!it) throw new Error(`shellcheck reported an unknown file ${c.file}`);
              out.get(it.id)!.push(`${c.line}:${c.column} SC${c.code} (${c.level}): ${c.message}`);
            }
          }),
        );
      }
    }
    await Promise.all(jobs);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A systemd unit to verify: the unit's file name and the group (one node) whose units share a root. */
export interface UnitItem extends Item {
  /** Unit file name, e.g. `iceccd.service`. */
  unit: string;
  /** Units of one group are verified together in one root, as they would sit on one node. */
  group: string;
}

/** This machine's stock units, copied into each root so the units' targets and dependencies resolve. */
const STOCK_UNITS = "/usr/lib/systemd/system";

/** Absolute executables a unit's `Exec*=` lines start (prefixes `@-:+!|` stripped), for stubs in the root. */
export function unitExecutables(content: string): string[] {
  const out = new Set<string>();
  for (const m of content.matchAll(/^\s*Exec[A-Za-z]*=\s*[@\-:+!|]*(\S+)/gm)) if (m[1].startsWith("/")) out.add(m[1]);
  return [...out];
}

/**
 * Runs `systemd-analyze verify --man=no --root=ROOT` once per group. ROOT is a temp tree holding this
 * machine's stock units (`/usr/lib/systemd/system`, so targets like network-online.target resolve), the
 * group's units in `/etc/systemd/system`, and an executable stub at each absolute `Exec*=` path: the
 * binaries live on the node (installed by the role), not here, and verify checks them inside the root.
 * Nothing else is relaxed: any line verify prints is a finding, because verify exits 0 for some defects
 * (an unknown key or a bad value is logged and "ignored"), so a clean unit is one verify says nothing about.
 * `User=`/`Group=` are not resolved by verify (they are looked up when the unit starts), so no users are
 * created. `stubExecutables: false` leaves the stubs out (for the test that proves verify looks inside ROOT).
 * Source: systemd-analyze(1) `verify`, `--root`, `--man`.
 * @throws Error when systemd-analyze is missing.
 */
export async function systemdVerify(items: UnitItem[], opts: { stubExecutables?: boolean } = {}): Promise<Findings> {
  const out = emptyFindings(items);
  if (!existsSync(STOCK_UNITS)) throw new Error(`${STOCK_UNITS} is missing: install systemd (apt-get install systemd; see .ci/run)`);
  const groups = new Map<string, UnitItem[]>();
  for (const it of items) groups.set(it.group, [...(groups.get(it.group) ?? []), it]);
  const dir = mkdtempSync(join(tmpdir(), "fleetkit-systemd-"));
  try {
    let n = 0;
    for (const [group, units] of groups) {
      const root = join(dir, String(n++));
      cpSync(STOCK_UNITS, join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
      mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
      for (const u of units) {
        if (units.filter((v) => v.unit === u.unit).length > 1) throw new Error(`group ${group} has two units named ${u.unit}`);
        writeFileSync(join(root, "etc/systemd/system", u.unit), u.content);
        for (const exe of opts.stubExecutables === false ? [] : unitExecutables(u.content)) {
          mkdirSync(join(root, dirname(exe)), { recursive: true });
          writeFileSync(join(root, exe), "#!/bin/sh\nexit 0\n");
          chmodSync(join(root, exe), 0o755);
        }
      }
      const { code, stdout, stderr } = await run("systemd-analyze", ["verify", "--man=no", `--root=${root}`, ...units.map((u) => u.unit)]);
      const lines = (stdout + stderr).split("\n").filter((l) => l.trim() !== "");
      for (const line of lines) {
        const text = line.replace(`${root}/etc/systemd/system/`, "");
        const owners = units.filter((u) => text.startsWith(`${u.unit}:`) || text.includes(` ${u.unit} `));
        for (const u of owners.length ? owners : units) out.get(u.id)!.push(text);
      }
      if (code !== 0 && lines.length === 0) for (const u of units) out.get(u.id)!.push(`systemd-analyze verify exited ${code} without a message`);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A launchd plist to check, with the label its file name promises (`/Library/LaunchDaemons/<label>.plist`). */
export interface PlistItem extends Item {
  expectedLabel: string;
}

const PLIST_CHECK = String.raw`
import json, plistlib, sys
out = {}
for it in json.load(sys.stdin):
    errs = []
    try:
        d = plistlib.loads(it["content"].encode("utf-8"))
    except Exception as e:
        out[it["id"]] = ["plistlib: %s: %s" % (type(e).__name__, e)]
        continue
    if not isinstance(d, dict):
        errs.append("top level is %s, not a dict" % type(d).__name__)
        d = {}
    for k in ("Label", "ProgramArguments", "RunAtLoad", "KeepAlive"):
        if k not in d:
            errs.append("missing key %s" % k)
    if "Label" in d and d["Label"] != it["expectedLabel"]:
        errs.append("Label %r differs from the file name's %r" % (d["Label"], it["expectedLabel"]))
    pa = d.get("ProgramArguments")
    if "ProgramArguments" in d and not (isinstance(pa, list) and pa and all(isinstance(a, str) for a in pa)):
        errs.append("ProgramArguments must be a non-empty array of strings, got %r" % (pa,))
    if "RunAtLoad" in d and not isinstance(d["RunAtLoad"], bool):
        errs.append("RunAtLoad must be a boolean, got %r" % (d["RunAtLoad"],))
    if "KeepAlive" in d and not isinstance(d["KeepAlive"], (bool, dict)):
        errs.append("KeepAlive must be a boolean or a dictionary, got %r" % (d["KeepAlive"],))
    out[it["id"]] = errs
json.dump(out, sys.stdout)
`;

/**
 * Parses every plist with Python's plistlib in one python3 process and checks the keys launchd needs to
 * keep a fleetkit job running: `Label` (equal to the file name without `.plist`, as launchctl bootstrap
 * expects), `ProgramArguments` (non-empty array of strings), `RunAtLoad` (bool), `KeepAlive` (bool or
 * dict). Source: launchd.plist(5), Python `plistlib.loads`.
 * @throws Error when python3 is missing or the checker itself fails.
 */
export async function plistCheck(items: PlistItem[]): Promise<Findings> {
  const out = emptyFindings(items);
  if (items.length === 0) return out;
  const { code, stdout, stderr } = await run("python3", ["-c", PLIST_CHECK], { input: JSON.stringify(items) });
  if (code !== 0) throw new Error(`python3 plist check failed (exit ${code}): ${stderr.trim()}`);
  for (const [id, errs] of Object.entries(JSON.parse(stdout) as Record<string, string[]>)) out.set(id, errs);
  return out;
}

/** A JavaScript file to syntax-check, with its extension (`.mjs`, `.cjs`, `.js`) deciding ESM or CommonJS. */
export interface ScriptFileItem extends Item {
  ext: string;
}

/**
 * `node --check` (parse without running) over each JavaScript file, in parallel; the findings are node's
 * SyntaxError lines. Source: node(1) `--check`.
 */
export async function nodeCheck(items: ScriptFileItem[]): Promise<Findings> {
  const out = emptyFindings(items);
  const dir = mkdtempSync(join(tmpdir(), "fleetkit-node-check-"));
  try {
    await Promise.all(
      items.map(async (it, i) => {
        const file = join(dir, `${i}${it.ext}`);
        writeFileSync(file, it.content);
        const { code, stderr } = await run(process.execPath, ["--check", file]);
        if (code !== 0) out.get(it.id)!.push(stderr.split("\n").filter((l) => /Error|^\S+:\d+$/.test(l)).join(" | ").replaceAll(file, "file") || `node --check exited ${code}`);
      }),
    );
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** JSON.parse's complaint, or `[]`. */
export function jsonProblems(content: string): string[] {
  try {
    JSON.parse(content);
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

/** Errors and warnings of the `yaml` package's parser (duplicate keys are errors), or `[]`. */
export function yamlProblems(content: string): string[] {
  const doc = parseDocument(content, { uniqueKeys: true, prettyErrors: true });
  return [...doc.errors, ...doc.warnings].map((e) => `${e.code}: ${e.message.split("\n")[0]}`);
}

/** Top-level keys of a YAML mapping (empty when it is not one). */
export function yamlTopLevelKeys(content: string): string[] {
  const v = parseDocument(content).toJS() as unknown;
  return v && typeof v === "object" && !Array.isArray(v) ? Object.keys(v) : [];
}

let psParser: Parser | undefined;

/**
 * Syntax errors in a PowerShell script by tree-sitter-powershell's grammar (`line:col text` for every ERROR
 * or missing node). A parse check only: pwsh and PSScriptAnalyzer cannot be installed on these machines.
 */
export async function powershellProblems(content: string): Promise<string[]> {
  if (!psParser) {
    await Parser.init();
    const p = new Parser();
    p.setLanguage(await Language.load(new URL("../../node_modules/tree-sitter-powershell/tree-sitter-powershell.wasm", import.meta.url).pathname));
    psParser = p;
  }
  const tree = psParser.parse(content)!;
  const out: string[] = [];
  const walk = (n: typeof tree.rootNode) => {
    if (n.type === "ERROR" || n.isMissing) out.push(`${n.startPosition.row + 1}:${n.startPosition.column + 1} ${n.isMissing ? `missing ${n.type}` : n.text.slice(0, 60)}`);
    for (const c of n.children) if (c) walk(c);
  };
  walk(tree.rootNode);
  return out;
}

/** The text up to and including the prelude's end marker (`# --- end of prelude ---`), or "" without one. */
export function preludeOf(script: string): string {
  const end = script.indexOf("# --- end of prelude ---\n");
  return end < 0 ? "" : script.slice(0, end + "# --- end of prelude ---\n".length);
}

/** What {@link runFinish} saw: the script's last line and each run's exit status and stdout. */
export interface FinishRuns {
  lastLine: string;
  runs: { status: number; stdout: string; stderr: string }[];
}

/**
 * Runs a sh install script's own prelude and its own last line (`fk_finish ROLE HASH …`) with dash, twice,
 * in a throwaway state directory, and returns what each run printed on stdout. A correct install prints
 * `fleetkit: ROLE changed` on the first run (new marker) and `fleetkit: ROLE unchanged` on the second.
 * Needs root (fk_put chowns the marker to root, as on a node).
 */
export async function runFinish(install: string): Promise<FinishRuns> {
  const lastLine = install.trimEnd().split("\n").pop() ?? "";
  const state = mkdtempSync(join(tmpdir(), "fleetkit-finish-"));
  try {
    const script = `${preludeOf(install)}FK_STATE='${state}'\nFK_ROOT_GROUP=root\nmkdir -p "$FK_STATE/roles"\n${lastLine}\n`;
    const runs: FinishRuns["runs"] = [];
    for (let i = 0; i < 2; i++) {
      const { code, stdout, stderr } = await run("dash", ["-c", script]);
      runs.push({ status: code, stdout, stderr });
    }
    return { lastLine, runs };
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
}
