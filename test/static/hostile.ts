/**
 * Round-trip checkers for hostile values: each reads a rendered artifact back with a real parser (the
 * tree-sitter grammars of sh and PowerShell, dash itself, systemd itself, Python's plistlib, the yaml
 * package) and says what a value became there, so a test can compare an artifact rendered with hostile text
 * against the same artifact rendered with a plain placeholder: when escaping is right, the two differ only
 * by the values (hostile text replaced by the placeholder, they read back identically).
 */
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Language, Parser, type Node } from "web-tree-sitter";

let bashParser: Parser | undefined;
let psParser: Parser | undefined;

async function parser(lang: "bash" | "powershell"): Promise<Parser> {
  await Parser.init();
  const load = async (file: string) => {
    const p = new Parser();
    p.setLanguage(await Language.load(new URL(`../../node_modules/${file}`, import.meta.url).pathname));
    return p;
  };
  if (lang === "bash") return (bashParser ??= await load("tree-sitter-bash/tree-sitter-bash.wasm"));
  return (psParser ??= await load("tree-sitter-powershell/tree-sitter-powershell.wasm"));
}

function run(cmd: string, args: string[], input = ""): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 256 * 1024 * 1024, encoding: "utf8" }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && typeof e.code === "string") reject(new Error(`cannot run ${cmd} (${e.code})`));
      else resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.on("error", () => {});
    child.stdin?.end(input);
  });
}

const ERRORS = (root: Node): string[] => {
  const out: string[] = [];
  const walk = (n: Node) => {
    if (n.type === "ERROR" || n.isMissing) out.push(`${n.startPosition.row + 1}:${n.startPosition.column + 1} ${n.isMissing ? `missing ${n.type}` : `syntax error at ${JSON.stringify(n.text.slice(0, 60))}`}`);
    for (const c of n.children) if (c) walk(c);
  };
  walk(root);
  return out;
};

// ---- POSIX sh -------------------------------------------------------------------------------------------

const SH_WORD = new Set(["word", "raw_string", "string", "concatenation", "number", "simple_expansion", "expansion", "command_substitution", "arithmetic_expansion", "ansi_c_string", "process_substitution"]);
const SH_DYNAMIC = new Set(["simple_expansion", "expansion", "arithmetic_expansion", "ansi_c_string", "process_substitution"]);

type Part = { lit: string } | { dyn: string };

/** `\x` → x outside quotes, backslash-newline removed (POSIX §2.2.1). */
const unescapeWord = (t: string) => t.replace(/\\\n/g, "").replace(/\\(.)/gs, "$1");
/** Inside "…": backslash escapes only $ ` " \ and newline (POSIX §2.2.3). */
const unescapeDouble = (t: string) => t.replace(/\\\n/g, "").replace(/\\([$`"\\])/g, "$1");

/**
 * One sh word as parts: literal text (what the shell makes of it) and dynamic pieces (expansions, command
 * substitutions, kept as their normalised source; `map` applies inside command substitutions).
 */
function wordParts(n: Node, src: string, map: (s: string) => string): Part[] {
  switch (n.type) {
    case "word":
      return [{ lit: unescapeWord(n.text) }];
    case "number":
      return [{ lit: n.text }];
    case "raw_string":
      return [{ lit: n.text.slice(1, -1) }];
    case "string": {
      const parts: Part[] = [];
      let at = n.startIndex + 1;
      const end = n.endIndex - 1;
      for (const c of n.children) {
        if (!c || c.startIndex < at || c.type === '"') continue;
        if (c.startIndex > at) parts.push({ lit: unescapeDouble(src.slice(at, c.startIndex)) });
        parts.push(...(c.type === "string_content" ? [{ lit: unescapeDouble(c.text) }] : wordParts(c, src, map)));
        at = c.endIndex;
      }
      if (at < end) parts.push({ lit: unescapeDouble(src.slice(at, end)) });
      return parts;
    }
    case "concatenation":
      return n.children.flatMap((c) => (c ? wordParts(c, src, map) : []));
    case "command_substitution":
      return [{ dyn: `$(${shCanonical(n.children.filter((c): c is Node => !!c && c.type !== "$(" && c.type !== ")" && c.type !== "`"), src, map).join(" ")})` }];
    default:
      return [{ dyn: n.text }];
  }
}

function merge(parts: Part[]): Part[] {
  const out: Part[] = [];
  for (const p of parts) {
    const last = out.at(-1);
    if ("lit" in p && last && "lit" in last) last.lit += p.lit;
    else out.push({ ...p });
  }
  return out;
}

const show = (parts: Part[]) => parts.map((p) => ("lit" in p ? JSON.stringify(p.lit) : `{${p.dyn}}`)).join("+");

/** The canonical token list of sh nodes: words as their parts, here-document bodies, every other leaf by type; comments left out. */
function shCanonical(nodes: Node[], src: string, map: (s: string) => string): string[] {
  const out: string[] = [];
  const walk = (n: Node) => {
    if (n.type === "comment") return;
    if (SH_WORD.has(n.type)) {
      // Literal text is mapped whole, after merging: a quoted value may span several quoted pieces.
      out.push(`w:${show(merge(wordParts(n, src, map)).map((p) => ("lit" in p ? { lit: map(p.lit) } : p)))}`);
      return;
    }
    if (n.type === "heredoc_body") {
      // A here-document carries a file's content, which its own parser checks (systemd, plistlib, YAML …).
      out.push("h");
      return;
    }
    if (n.childCount === 0) {
      out.push(`t:${n.type === n.text ? n.type : `${n.type}=${n.text}`}`);
      return;
    }
    for (const c of n.children) if (c) walk(c);
  };
  for (const n of nodes) walk(n);
  return out;
}

/** What {@link shReadBack} found in one sh script. */
export interface ShReading {
  /** tree-sitter-bash syntax errors (`line:col …`). */
  errors: string[];
  /** Every word (literal text and expansions), here-document body and operator, in order; comments omitted. */
  canonical: string[];
  /** Source text of every word that is wholly literal and contains `marker`, for {@link runWords}. */
  literalWords: { source: string; value: string }[];
  /** Places `marker` occurs outside literal text (not inside quotes, a quoted here-document or a comment). */
  markerInCode: string[];
}

/**
 * Reads `script` back with tree-sitter-bash. `map` rewrites literal text before it enters `canonical`
 * (e.g. the hostile value → the placeholder), so a hostile script and its placeholder twin can be compared.
 */
export async function shReadBack(script: string, marker: string, map: (s: string) => string = (s) => s): Promise<ShReading> {
  const tree = (await parser("bash")).parse(script)!;
  const root = tree.rootNode;
  const literalWords: ShReading["literalWords"] = [];
  const markerInCode: string[] = [];
  const words = (n: Node, inWord = false) => {
    if (SH_WORD.has(n.type) && !inWord && n.text.includes(marker)) {
      const parts = merge(wordParts(n, script, (s) => s));
      if (parts.length === 1 && "lit" in parts[0]!) literalWords.push({ source: n.text, value: parts[0].lit });
    }
    const word = SH_WORD.has(n.type) && n.type !== "command_substitution";
    for (const c of n.children) if (c) words(c, (inWord || word) && c.type !== "command_substitution");
  };
  words(root);
  for (let i = script.indexOf(marker); i >= 0; i = script.indexOf(marker, i + 1)) {
    const n = root.descendantForIndex(i, i + marker.length - 1)!;
    let ok = false;
    for (let a: Node | null = n; a; a = a.parent) {
      if (SH_DYNAMIC.has(a.type) || a.type === "command_substitution" || a.type === "command_name") break;
      if (a.type === "raw_string" || a.type === "comment" || a.type === "string_content") {
        ok = true;
        break;
      }
      if (a.type === "heredoc_body") {
        const start = a.parent?.children.find((c) => c?.type === "heredoc_start")?.text ?? "";
        ok = /^['"]/.test(start);
        break;
      }
      if (a.type === "string" && n.type === "string") {
        ok = true;
        break;
      }
    }
    if (!ok) markerInCode.push(`${n.startPosition.row + 1}:${n.startPosition.column + 1} in ${n.type} ${JSON.stringify(n.text.slice(0, 80))}`);
  }
  return { errors: ERRORS(root), canonical: shCanonical([root], script, map), literalWords, markerInCode };
}

/** `dash -n` (parse without running) over every script, in one shell loop: the complaint per script, "" when none. */
export async function dashSyntax(scripts: string[]): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), "fk-dash-n-"));
  try {
    const files = scripts.map((s, i) => {
      writeFileSync(join(dir, String(i)), s);
      return join(dir, String(i));
    });
    const r = await run("sh", ["-c", 'for f; do out=$(dash -n "$f" 2>&1) || printf \'%s\\t%s\\0\' "$f" "${out:-exit $?}"; done', "sh", ...files]);
    const bad = new Map(r.stdout.split("\0").filter(Boolean).map((l) => l.split("\t") as [string, string]));
    return files.map((f) => bad.get(f)?.replaceAll(f, "script") ?? "");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Expands `words` (sh source text) with dash in a sandbox: a private mount namespace whose /tmp is a fresh
 * directory, working directory another fresh one. Returns what dash made of each word and the files that
 * appeared in either directory (a command a word smuggled in would leave `PWNED` there). Needs root.
 */
export async function runWords(words: string[]): Promise<{ values: string[]; created: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), "fk-hostile-"));
  try {
    const fakeTmp = join(dir, "tmp");
    const cwd = join(dir, "cwd");
    mkdirSync(fakeTmp);
    mkdirSync(cwd);
    chmodSync(fakeTmp, 0o1777);
    // One file per word, so a word dash cannot parse spoils only itself.
    const words_ = join(dir, "words");
    mkdirSync(words_);
    // Named relative to the working directory: their absolute path is under the /tmp the sandbox hides.
    const files = words.map((w, i) => {
      writeFileSync(join(words_, String(i)), `printf '%s\\0' ${w}\n`);
      return `../words/${i}`;
    });
    // cd first: the directories live under the real /tmp, which the bind mount hides.
    const r = await run("unshare", ["--mount", "--propagation", "private", "sh", "-c", 'cd "$2" && mount --bind "$1" /tmp && shift 2 && for f; do dash "$f" 2>/dev/null || printf \'\\001dash could not expand it\\0\'; done', "sh", fakeTmp, cwd, ...files]);
    if (r.code !== 0) throw new Error(`the sandbox failed (exit ${r.code}): ${r.stderr.trim()}`);
    const values = r.stdout.split("\0").slice(0, -1);
    return { values, created: [...readdirSync(fakeTmp).map((f) => `/tmp/${f}`), ...readdirSync(cwd).map((f) => `./${f}`)] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- PowerShell -----------------------------------------------------------------------------------------

/** What {@link psReadBack} found: grammar errors, every single-quoted string's value in order, misplaced markers. */
export interface PsReading {
  errors: string[];
  strings: string[];
  markerInCode: string[];
}

/** Reads a PowerShell script back with tree-sitter-powershell; `map` rewrites string values (hostile → placeholder). */
export async function psReadBack(script: string, marker: string, map: (s: string) => string = (s) => s): Promise<PsReading> {
  const root = (await parser("powershell")).parse(script)!.rootNode;
  const strings: string[] = [];
  const walk = (n: Node) => {
    if (n.type === "verbatim_string_characters") strings.push(map(n.text.slice(1, -1).replace(/(['\u2018\u2019\u201a\u201b])\1/g, "$1")));
    for (const c of n.children) if (c) walk(c);
  };
  walk(root);
  const markerInCode: string[] = [];
  for (let i = script.indexOf(marker); i >= 0; i = script.indexOf(marker, i + 1)) {
    const n = root.descendantForIndex(i, i + marker.length - 1)!;
    if (!["verbatim_string_characters", "comment", "expandable_string_literal"].includes(n.type)) markerInCode.push(`${n.startPosition.row + 1}:${n.startPosition.column + 1} in ${n.type} ${JSON.stringify(n.text.slice(0, 80))}`);
  }
  return { errors: ERRORS(root), strings, markerInCode };
}

// ---- systemd --------------------------------------------------------------------------------------------

/** A unit to read back: its file name, content, and an id to report it under. */
export interface UnitText {
  id: string;
  unit: string;
  content: string;
}

/** What systemd itself read from one unit: its warnings and the settings fleetkit writes, as systemd dumps them. */
export interface UnitReading {
  warnings: string[];
  /** `Key: value` lines of the dump (User, Group, WorkingDirectory, Environment, EnvironmentFile, ReadWritePaths), in order. */
  settings: string[];
  /** Each command line as argv, `$$` already turned into `$` (as systemd does when it runs it). */
  commands: string[][];
}

/** Splits a `Command Line:` of systemd's dump into words (double-quoted words use backslash escapes). */
export function parseDumpCommand(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === " ") {
      i++;
      continue;
    }
    let w = "";
    while (i < line.length && line[i] !== " ") {
      if (line[i] === '"') {
        i++;
        while (i < line.length && line[i] !== '"') {
          if (line[i] === "\\") {
            const c = line[i + 1]!;
            w += c === "n" ? "\n" : c === "t" ? "\t" : c;
            i += 2;
          } else w += line[i++];
        }
        i++;
      } else w += line[i++];
    }
    out.push(w.replace(/\$\$/g, "$"));
  }
  return out;
}

const DUMP_KEYS = /^\t\t(User|Group|WorkingDirectory|Environment|EnvironmentFile|ReadWritePaths): (.*)$/;

/**
 * Loads every unit into systemd's own parser (`systemd --test --system`, as an unprivileged user: it refuses
 * test mode as root) and returns, per unit, the warnings systemd printed about it and what it read: the
 * settings and command lines of its dump. One systemd run for all units (each renamed `fk<n>-<unit>`, all
 * wanted by one target). Source: systemd(1) `--test`.
 * @throws Error when systemd cannot run.
 */
export async function systemdReadBack(units: UnitText[]): Promise<Map<string, UnitReading>> {
  const out = new Map<string, UnitReading>();
  if (units.length === 0) return out;
  const dir = mkdtempSync(join(tmpdir(), "fk-units-"));
  try {
    chmodSync(dir, 0o755);
    const names = units.map((u, i) => `fk${i}-${u.unit}`);
    units.forEach((u, i) => writeFileSync(join(dir, names[i]!), u.content, { mode: 0o644 }));
    writeFileSync(join(dir, "fk-readback.target"), `[Unit]\nDescription=fleetkit read-back\n${names.map((n) => `Wants=${n}`).join("\n")}\n`, { mode: 0o644 });
    const systemd = existsSync("/lib/systemd/systemd") ? "/lib/systemd/systemd" : "/usr/lib/systemd/systemd";
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(
        "setpriv",
        ["--reuid=65534", "--regid=65534", "--clear-groups", systemd, "--test", "--system", "--unit=fk-readback.target", "--no-pager", "--log-target=console"],
        { env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:`, SYSTEMD_LOG_COLOR: "0" }, maxBuffer: 256 * 1024 * 1024, encoding: "utf8" },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout: stdout + stderr }),
      );
    });
    const lines = r.stdout.split("\n");
    units.forEach((u, i) => {
      const name = names[i]!;
      const warnings = lines.filter((l) => (l.startsWith(`${dir}/${name}:`) || l.includes(` ${name} `) || l.startsWith(`${name}:`)) && !l.startsWith("\t")).map((l) => l.replace(`${dir}/`, ""));
      const start = lines.indexOf(`\t-> Unit ${name}:`);
      if (start < 0) {
        out.set(u.id, { warnings: [...warnings, `systemd did not load ${name} (exit ${r.code})`], settings: [], commands: [] });
        return;
      }
      let end = lines.findIndex((l, j) => j > start && /^\t-> Unit /.test(l));
      if (end < 0) end = lines.length;
      const section = lines.slice(start + 1, end);
      const settings = section.flatMap((l) => {
        const m = DUMP_KEYS.exec(l);
        return m ? [`${m[1]}: ${m[2]}`] : [];
      });
      const commands = section.flatMap((l) => {
        const m = /^\t\t\tCommand Line: (.*)$/.exec(l);
        return m ? [parseDumpCommand(m[1]!)] : [];
      });
      out.set(u.id, { warnings, settings, commands });
    });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- launchd plists -------------------------------------------------------------------------------------

/** Every plist parsed by Python's plistlib, as JSON-able values (or the parse error as `{ error }`). */
export async function plistValues(items: { id: string; content: string }[]): Promise<Map<string, unknown>> {
  const py = `
import json, plistlib, sys
out = {}
for it in json.load(sys.stdin):
    try:
        out[it["id"]] = plistlib.loads(it["content"].encode("utf-8"))
    except Exception as e:
        out[it["id"]] = {"error": "%s: %s" % (type(e).__name__, e)}
json.dump(out, sys.stdout)
`;
  const r = await run("python3", ["-c", py], JSON.stringify(items));
  if (r.code !== 0) throw new Error(`python3 plistlib failed: ${r.stderr.trim()}`);
  return new Map(Object.entries(JSON.parse(r.stdout) as Record<string, unknown>));
}

/** `value` with `map` applied to every string in it (keys too), for comparing parsed structures. */
export function mapStrings(value: unknown, map: (s: string) => string): unknown {
  if (typeof value === "string") return map(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, map));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [map(k), mapStrings(v, map)]));
  return value;
}
