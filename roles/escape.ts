/**
 * Escaping by target: how one value (fleet.yaml text, a path built from it, a number) is written into a
 * POSIX sh script, a systemd unit, a YAML file, a PowerShell script, a JavaScript module or a plain text
 * file so that it stays exactly that value and can never change the meaning of what surrounds it.
 *
 * The escape depends on where the value sits, not only on the file type: a value inside a sh double-quoted
 * string needs different escaping than one in a sh word, one in a `#` comment can only be shown, and a
 * systemd `User=` takes a user name while `ExecStart=` takes quoted words. {@link scanContexts} reads the
 * static text of a template (or of a tagged template literal, see roles/bundle.ts `sh` and `ps`) and says,
 * for each place a value is inserted, which of those it is; {@link escapeValue} then escapes for it or throws
 * an Error saying why the value cannot be represented there (the caller adds the template and variable).
 *
 * Sources: POSIX "Shell Command Language" §2.2 Quoting, §2.3 Token Recognition (comments, here-documents);
 * systemd.syntax(7) "Quoting" and line continuation, systemd.service(5) "COMMAND LINES" (`;` separator, `$`
 * and `%` expansion, the `-@:+!|` prefixes), systemd.unit(5) "SPECIFIERS"; about_Quoting_Rules (PowerShell:
 * single-quoted strings, the typographic quotes U+2018–U+201E it also accepts as quotes, backtick escapes);
 * YAML 1.2 §7.3.1 double-quoted scalars (the `yaml` package writes them); ECMA-262 §12.3 line terminators.
 */
import { stringify as yamlStringify } from "yaml";

/** What a template file is, by its extension; decides the escaping of every value in it. */
export type TemplateTarget = "sh" | "systemd" | "yaml" | "powershell" | "js" | "text";

const TARGET_BY_EXTENSION: [RegExp, TemplateTarget][] = [
  [/\.sh$/, "sh"],
  [/\.(service|socket|timer|target|path|mount)$/, "systemd"],
  [/\.ya?ml$/, "yaml"],
  [/\.ps1$/, "powershell"],
  [/\.(mjs|cjs|js|json)$/, "js"],
  [/\.md$/, "text"],
];

/**
 * The target of template `relPath` from its extension (`.sh` sh, `.service` systemd, `.yml`/`.yaml` YAML,
 * `.ps1` PowerShell, `.mjs`/`.json` JavaScript/JSON, `.md` plain text).
 * @throws Error for any other extension, `.plist` included: plists are built from objects (roles/launchd.ts).
 */
export function templateTarget(relPath: string): TemplateTarget {
  if (relPath.endsWith(".plist")) throw new Error(`template ${relPath}: plists are not text templates; build them from an object with launchdPlist (roles/launchd.ts)`);
  const hit = TARGET_BY_EXTENSION.find(([re]) => re.test(relPath));
  if (!hit) throw new Error(`template ${relPath}: fleetkit does not know how to escape values for this file type; name it by its target (.sh, .service, .yml, .ps1, .mjs, .json, .md)`);
  return hit[1];
}

/**
 * Where a value is inserted, as {@link scanContexts} found it.
 * - `word`: sh or PowerShell code (outside quotes); `start` when the value begins a word (an option there).
 * - `single`, `double`: inside a sh or PowerShell single- or double-quoted string.
 * - `comment`: a line comment of any target.
 * - `unit`: a systemd directive: its key, the directive's text before the value, and whether text follows.
 * - `yaml`: a whole YAML scalar (the value is the entire node after `key: ` or `- `).
 * - `js`: JavaScript code outside strings and comments.
 * - `text`: plain text.
 * - `refused`: a place no value may go (a here-document, backticks, a YAML scalar shared with other text …), with why.
 */
export type ValueContext =
  | { kind: "word"; start: boolean }
  | { kind: "single" | "double" | "comment" | "yaml" | "js" | "text" }
  | { kind: "unit"; key: string; before: string; after: string }
  | { kind: "refused"; why: string };

/** A place in a text where a value goes: `[start, end)`, the span of its tag (zero width for tagged literals). */
export interface Slot {
  start: number;
  end: number;
}

/**
 * The context of every slot of `text` (a template with its tags, or the static parts of a tagged template
 * literal), keyed by the slot's start. Slots are skipped as opaque text while scanning, so the answer
 * depends only on the fixed text around them.
 */
export function scanContexts(target: TemplateTarget, text: string, slots: Slot[]): Map<number, ValueContext> {
  switch (target) {
    case "sh":
      return scanSh(text, slots);
    case "powershell":
      return scanPowerShell(text, slots);
    default: {
      const out = new Map<number, ValueContext>();
      for (const s of slots) out.set(s.start, lineContext(target, text, s));
      return out;
    }
  }
}

type ShFrame = { k: "code"; depth: number } | { k: "single" } | { k: "double" } | { k: "comment" } | { k: "backtick" };

/** A POSIX sh tokenizer just deep enough to know, at each slot, whether it is in a word, quotes, a comment or a here-document. */
function scanSh(text: string, slots: Slot[]): Map<number, ValueContext> {
  const out = new Map<number, ValueContext>();
  const at = slotIndex(slots);
  const stack: ShFrame[] = [{ k: "code", depth: 0 }];
  const heredocs: { delim: string; strip: boolean }[] = [];
  let wordStart = true;
  let i = 0;
  while (i <= text.length) {
    const here = at.get(i);
    if (here) {
      const top = stack.at(-1)!;
      const end = record(out, here, (n) =>
        top.k === "code" ? { kind: "word", start: wordStart && n === 0 } : top.k === "backtick" ? { kind: "refused", why: "it sits inside a backtick command substitution; use $(…)" } : { kind: top.k },
      );
      if (end > i) {
        if (top.k === "code") wordStart = false;
        i = end;
        continue;
      }
    }
    if (i === text.length) break;
    const c = text[i]!;
    const top = stack.at(-1)!;
    if (top.k === "comment") {
      if (c === "\n") stack.pop();
      else {
        i++;
        continue;
      }
    }
    if (top.k === "single") {
      if (c === "'") stack.pop();
      i++;
      continue;
    }
    if (top.k === "double" || top.k === "backtick") {
      if (c === "\\") i += 2;
      else if ((top.k === "double" && c === '"') || (top.k === "backtick" && c === "`")) {
        stack.pop();
        i++;
      } else if (c === "$" && text[i + 1] === "(") {
        stack.push({ k: "code", depth: 1 });
        wordStart = true;
        i += 2;
      } else if (c === "`" && top.k === "double") {
        stack.push({ k: "backtick" });
        i++;
      } else i++;
      continue;
    }
    // code
    const frame = stack.at(-1) as { k: "code"; depth: number };
    if (c === "\\") {
      wordStart = false;
      i += 2;
    } else if (c === "'") {
      stack.push({ k: "single" });
      wordStart = false;
      i++;
    } else if (c === '"') {
      stack.push({ k: "double" });
      wordStart = false;
      i++;
    } else if (c === "`") {
      stack.push({ k: "backtick" });
      wordStart = false;
      i++;
    } else if (c === "#" && wordStart) {
      stack.push({ k: "comment" });
      i++;
    } else if (c === "$" && text[i + 1] === "(") {
      stack.push({ k: "code", depth: 1 });
      wordStart = true;
      i += 2;
    } else if (c === "(" && frame.depth > 0) {
      frame.depth++;
      wordStart = true;
      i++;
    } else if (c === ")" && frame.depth > 0) {
      if (--frame.depth === 0) stack.pop();
      wordStart = false;
      i++;
    } else if (c === "<" && text[i + 1] === "<" && text[i + 2] !== "<") {
      const m = /^<<(-?)[ \t]*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\2/.exec(text.slice(i));
      if (m) {
        heredocs.push({ delim: m[3]!, strip: m[1] === "-" });
        i += m[0].length;
      } else i += 2;
      wordStart = true;
    } else if (c === "\n" && heredocs.length > 0 && stack.length === 1) {
      // Here-document bodies start on the next line and end at their delimiter line: no value may go there
      // (an unquoted one expands $(…); a quoted one ends early at a line equal to its delimiter).
      i++;
      for (const h of heredocs.splice(0)) {
        for (;;) {
          const nl = text.indexOf("\n", i);
          const lineEnd = nl < 0 ? text.length : nl;
          for (const [pos, ss] of at) if (pos >= i && pos < lineEnd) for (const s of ss) out.set(s.start, { kind: "refused", why: `it sits inside a here-document (<<${h.delim}), where no quoting applies` });
          const line = text.slice(i, lineEnd);
          i = nl < 0 ? text.length : nl + 1;
          if ((h.strip ? line.replace(/^\t+/, "") : line) === h.delim || nl < 0) break;
        }
      }
      wordStart = true;
    } else {
      wordStart = /[\s;|&()]/.test(c);
      i++;
    }
  }
  return out;
}

type PsFrame = { k: "code"; depth: number } | { k: "single" } | { k: "double" } | { k: "comment" } | { k: "block" } | { k: "herestring"; end: string };

const PS_SINGLE = "'\u2018\u2019\u201a\u201b";
const PS_DOUBLE = '"\u201c\u201d\u201e';

/** A PowerShell tokenizer just deep enough to tell code, single- and double-quoted strings, comments and here-strings apart. */
function scanPowerShell(text: string, slots: Slot[]): Map<number, ValueContext> {
  const out = new Map<number, ValueContext>();
  const at = slotIndex(slots);
  const stack: PsFrame[] = [{ k: "code", depth: 0 }];
  let wordStart = true;
  let i = 0;
  while (i <= text.length) {
    const here = at.get(i);
    if (here) {
      const top = stack.at(-1)!;
      const end = record(out, here, (n) =>
        top.k === "code"
          ? { kind: "word", start: wordStart && n === 0 }
          : top.k === "block"
            ? { kind: "refused", why: "it sits inside a <# block comment #>" }
            : top.k === "herestring"
              ? { kind: "refused", why: "it sits inside a here-string, which no quoting can keep shut" }
              : { kind: top.k },
      );
      if (end > i) {
        if (top.k === "code") wordStart = false;
        i = end;
        continue;
      }
    }
    if (i === text.length) break;
    const c = text[i]!;
    const top = stack.at(-1)!;
    switch (top.k) {
      case "comment":
        if (c === "\n" || c === "\r") stack.pop();
        i++;
        continue;
      case "block":
        if (c === "#" && text[i + 1] === ">") {
          stack.pop();
          i += 2;
        } else i++;
        continue;
      case "herestring":
        if ((i === 0 || text[i - 1] === "\n") && text.startsWith(top.end, i)) {
          stack.pop();
          i += top.end.length;
        } else i++;
        continue;
      case "single":
        if (PS_SINGLE.includes(c)) {
          if (PS_SINGLE.includes(text[i + 1] ?? "")) i += 2;
          else {
            stack.pop();
            i++;
          }
        } else i++;
        continue;
      case "double":
        if (c === "`") i += 2;
        else if (PS_DOUBLE.includes(c)) {
          if (PS_DOUBLE.includes(text[i + 1] ?? "")) i += 2;
          else {
            stack.pop();
            i++;
          }
        } else if (c === "$" && text[i + 1] === "(") {
          stack.push({ k: "code", depth: 1 });
          wordStart = true;
          i += 2;
        } else i++;
        continue;
      case "code": {
        if (c === "`") {
          i += 2;
          wordStart = false;
        } else if (c === "@" && (text[i + 1] === "'" || text[i + 1] === '"') && /^\r?\n/.test(text.slice(i + 2))) {
          stack.push({ k: "herestring", end: `${text[i + 1]}@` });
          i += 2;
        } else if (PS_SINGLE.includes(c)) {
          stack.push({ k: "single" });
          wordStart = false;
          i++;
        } else if (PS_DOUBLE.includes(c)) {
          stack.push({ k: "double" });
          wordStart = false;
          i++;
        } else if (c === "<" && text[i + 1] === "#") {
          stack.push({ k: "block" });
          i += 2;
        } else if (c === "#" && wordStart) {
          stack.push({ k: "comment" });
          i++;
        } else if (c === "(" && top.depth > 0) {
          top.depth++;
          wordStart = true;
          i++;
        } else if (c === ")" && top.depth > 0) {
          if (--top.depth === 0) stack.pop();
          wordStart = false;
          i++;
        } else {
          wordStart = /[\s;|&(){},=]/.test(c);
          i++;
        }
        continue;
      }
    }
  }
  return out;
}

/** Sets the context of each slot starting here (`ctx(n)` for the n-th); returns where the slots end (their tag's end). */
function record(out: Map<number, ValueContext>, here: Slot[], ctx: (n: number) => ValueContext): number {
  here.forEach((s, n) => out.set(s.start, ctx(n)));
  return Math.max(...here.map((s) => s.end));
}

function slotIndex(slots: Slot[]): Map<number, Slot[]> {
  const at = new Map<number, Slot[]>();
  for (const s of slots) at.set(s.start, [...(at.get(s.start) ?? []), s]);
  return at;
}

/** For line-oriented targets (systemd, YAML, JavaScript, text): the context from the slot's own line. */
function lineContext(target: TemplateTarget, text: string, slot: Slot): ValueContext {
  const lineStart = text.lastIndexOf("\n", slot.start - 1) + 1;
  const nl = text.indexOf("\n", slot.end);
  const before = text.slice(lineStart, slot.start);
  const after = text.slice(slot.end, nl < 0 ? text.length : nl);
  const lead = before.trimStart();
  switch (target) {
    case "systemd": {
      if (lead.startsWith("#") || lead.startsWith(";")) return { kind: "comment" };
      const m = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/s.exec(lead);
      if (!m) return { kind: "refused", why: "it is not in the value of a Key=value line" };
      return { kind: "unit", key: m[1]!, before: m[2]!, after };
    }
    case "yaml":
      if (lead.startsWith("#")) return { kind: "comment" };
      // The value must be a whole scalar: `key: {{v}}` or `- {{v}}`, nothing else on the line.
      if (!/^(?:- +)?(?:[A-Za-z0-9_.-]+: +)?$/.test(lead) || after.trim() !== "" || lead === "") {
        return { kind: "refused", why: "a YAML value must be a whole scalar on its own (`key: {{x}}` or `- {{x}}`); build composite strings in TypeScript" };
      }
      return { kind: "yaml" };
    case "js":
      if (lead.startsWith("//")) return { kind: "comment" };
      if (/["'`]|\/\*/.test(before)) return { kind: "refused", why: "it sits after a quote or comment opener on its line; a JavaScript value goes where an expression may stand (it is written as a string literal)" };
      return { kind: "js" };
    default:
      return { kind: "text" };
  }
}

/** C0 controls, DEL, C1 controls (NEL among them) and the Unicode line and paragraph separators. */
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/;
/** The same plus tab. */
const CONTROL_OR_TAB = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

function describeChar(s: string, re: RegExp): string {
  const c = re.exec(s)![0];
  const code = `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
  return c === "\n" ? `newline (${code})` : c === "\r" ? `carriage return (${code})` : c === "\t" ? `tab (${code})` : code;
}

/** Quotes `s` for POSIX sh as one word (`'…'`, embedded `'` as `'\''`). @throws Error for a NUL byte (no sh string holds one). */
export function shQuote(s: string): string {
  if (s.includes("\0")) throw new Error("a NUL byte cannot be part of a sh word");
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Characters POSIX sh takes literally anywhere in a word (no `~`: tilde expansion after `=` in bash). */
const SH_PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** `s` as one argument of a POSIX sh command: as it is when every character stands for itself, else {@link shQuote}d. @throws Error for a NUL byte. */
export function shWord(s: string): string {
  return SH_PLAIN_WORD.test(s) ? s : shQuote(s);
}

/**
 * Quotes `s` for PowerShell as one single-quoted string: every quote character PowerShell accepts as a
 * single quote (', U+2018, U+2019, U+201A, U+201B) doubled (about_Quoting_Rules).
 * @throws Error for a NUL byte.
 */
export function psQuote(s: string): string {
  if (s.includes("\0")) throw new Error("a NUL byte cannot be part of a PowerShell string");
  return `'${s.replace(/['\u2018\u2019\u201a\u201b]/g, "$&$&")}'`;
}

/**
 * A value shown in a comment: as it is when it holds nothing that could end the comment line or continue
 * it (a line break of any kind, another control character, a backslash: systemd joins a comment line
 * ending in `\` with the next), else as a JSON string literal, which has none of those.
 */
export function commentText(s: string): string {
  if (!CONTROL.test(s) && !s.includes("\\")) return s;
  return JSON.stringify(s).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029").replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A YAML 1.2 double-quoted scalar for `s` on one line, written by the `yaml` package in its JSON-compatible form (quotes, backslashes and control characters escaped; no line folding, so it fits after any `key: `). */
export function yamlScalar(s: string): string {
  // NEL, LS and PS are line breaks to YAML 1.1 parsers (Go's yaml, which ntfy uses): written as escapes.
  return yamlStringify(s, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN", doubleQuotedAsJSON: true, lineWidth: 0 })
    .trimEnd()
    .replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A JavaScript (and JSON) string literal for `s`: JSON.stringify, with U+2028/U+2029 escaped too (line terminators in a `//` comment). */
export function jsString(s: string): string {
  return JSON.stringify(s).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** A user or group name systemd accepts in `User=`/`Group=` (systemd's strict valid_user_group_name: up to 31 characters). */
const UNIT_USER = /^[A-Za-z_][A-Za-z0-9_-]{0,30}$/;
/** Characters that stand for themselves in a systemd command-line word and a sh-free word: no quoting needed. */
const UNIT_PLAIN_WORD = /^[A-Za-z0-9_@+=:,./-]+$/;
/** Keys whose value is a list of words with systemd quoting (systemd.syntax(7) "Quoting"). */
const UNIT_WORD_KEYS = /^(Exec[A-Za-z]+|Environment|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths)$/;
/** Keys whose value is free text, taken as the rest of the line (specifiers expanded): systemd.unit(5). */
const UNIT_TEXT_KEYS = /^(Description)$/;
/** Keys whose value is a space-separated list of unit names (systemd.unit(5) "[Unit] Section Options"). */
const UNIT_NAME_LIST_KEYS = /^(Before|After|Wants|Requires|Requisite|BindsTo|PartOf|Conflicts|WantedBy|RequiredBy|Also)$/;
/** A unit name: letters, digits and `:_.@-`, with a type suffix (systemd.unit(5) "unit names"). */
const UNIT_NAME = /^[A-Za-z0-9:_.@-]+\.(service|socket|target|timer|path|mount|device|swap|slice|scope|automount)$/;
/** Keys whose value is one absolute path, taken as the rest of the line (specifiers expanded). */
const UNIT_PATH_KEYS = /^(WorkingDirectory|EnvironmentFile|RootDirectory)$/;

/**
 * `s` as (part of) one word of a systemd directive `key=…`: plain when it holds only characters that stand
 * for themselves, else double-quoted with `\` and `"` escaped; `%` doubled (specifiers) and, in `Exec*=`
 * command lines, `$` doubled (variable expansion), per systemd.service(5) "COMMAND LINES".
 */
function unitWord(key: string, s: string): string {
  const exec = key.startsWith("Exec");
  const spec = (t: string) => t.replace(/%/g, "%%").replace(/\$/g, exec ? "$$$$" : "$");
  if (UNIT_PLAIN_WORD.test(s)) return s;
  return `"${spec(s.replace(/\\/g, "\\\\").replace(/"/g, '\\"'))}"`;
}

function unitValue(ctx: Extract<ValueContext, { kind: "unit" }>, s: string): string {
  if (CONTROL_OR_TAB.test(s)) throw new Error(`a systemd unit value cannot hold the control character ${describeChar(s, CONTROL_OR_TAB)} (a unit is read line by line)`);
  const { key, before, after } = ctx;
  if (UNIT_WORD_KEYS.test(key)) {
    if ((before.replace(/\\./g, "").match(/["']/g) ?? []).length % 2 === 1) throw new Error(`it sits inside quotes the template wrote in ${key}=; fleetkit quotes the value itself`);
    const first = key.startsWith("Exec") && before.replace(/^[-@:+!|]+/, "") === "";
    const wordStart = before === "" || /\s$/.test(before) || first;
    if (first && !s.startsWith("/")) throw new Error(`the command of ${key}= must be an absolute path`);
    if (wordStart && /^(ReadWritePaths|ReadOnlyPaths|InaccessiblePaths)$/.test(key) && !s.startsWith("/")) throw new Error(`a path in ${key}= must be absolute`);
    if (wordStart && s.startsWith("-")) throw new Error(`it begins with "-" at the start of a word in ${key}=, where the program would read it as an option`);
    return unitWord(key, s);
  }
  if (UNIT_TEXT_KEYS.test(key)) {
    if (s.includes("\\")) throw new Error(`${key}= cannot hold a backslash (systemd joins a line ending in "\\" with the next)`);
    return s.replace(/%/g, "%%");
  }
  if (UNIT_NAME_LIST_KEYS.test(key)) {
    const bad = s.split(" ").filter(Boolean).find((w) => !UNIT_NAME.test(w));
    if (bad !== undefined) throw new Error(`${key}= takes unit names separated by spaces (like iceccd.service), and ${JSON.stringify(bad)} is none`);
    return s;
  }
  if (before.trim() !== "" || after.trim() !== "") throw new Error(`${key}= takes the value alone on its line in fleetkit templates`);
  if (key === "User" || key === "Group") {
    if (!UNIT_USER.test(s)) throw new Error(`${key}= takes a user or group name (a letter or _, then letters, digits, _ or -, at most 31); systemd ignores any other ${key}= and runs the service as root`);
    return s;
  }
  if (UNIT_PATH_KEYS.test(key)) {
    if (!s.startsWith("/")) throw new Error(`${key}= takes an absolute path`);
    if (s.includes("\\") || s !== s.trim()) throw new Error(`${key}= cannot hold a backslash or surrounding spaces (systemd takes the rest of the line as it is and joins a line ending in "\\" with the next)`);
    return s.replace(/%/g, "%%");
  }
  throw new Error(`fleetkit has no escaping rule for the systemd directive ${key}=; add one to roles/escape.ts before putting a value there`);
}

/** A sh double-quoted string's inside: `\`, `$`, backtick and `"` backslash-escaped (POSIX §2.2.3). */
function shDoubleInner(s: string): string {
  if (s.includes("\0")) throw new Error("a NUL byte cannot be part of a sh string");
  return s.replace(/[\\$`"]/g, "\\$&");
}

/** A sh single-quoted string's inside: each `'` closes the string, adds an escaped quote and reopens it. */
function shSingleInner(s: string): string {
  return shQuote(s).slice(1, -1);
}

/**
 * `value` escaped for `ctx` in a file of type `target`. Numbers are written as decimal digits (a finite
 * number holds no character any target treats specially); arrays are accepted only as sh words.
 * @throws Error saying why the value cannot go there (the caller names the template and variable).
 */
export function escapeValue(target: TemplateTarget, ctx: ValueContext, value: unknown): string {
  if (ctx.kind === "refused") throw new Error(`no value may go here: ${ctx.why}`);
  if (Array.isArray(value)) {
    if (target === "sh" && ctx.kind === "word") return value.map((v) => escapeValue(target, ctx, v)).join(" ");
    throw new Error("a list can only be written as sh words");
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`${value} is not a finite number`);
    if (value < 0 && ctx.kind === "word") throw new Error("a negative number at the start of a word would be read as an option");
    return String(value);
  }
  if (typeof value === "boolean") value = String(value);
  if (typeof value !== "string") throw new Error(`expected a string or number, got ${value === null ? "null" : typeof value}`);
  const s = value as string;
  if (ctx.kind === "comment") return commentText(s);
  switch (target) {
    case "sh":
      if (ctx.kind === "word") {
        if (ctx.start && s.startsWith("-")) throw new Error(`it begins with "-" at the start of a sh word, where a command would read it as an option`);
        return shQuote(s);
      }
      if (ctx.kind === "single") return shSingleInner(s);
      if (ctx.kind === "double") return shDoubleInner(s);
      break;
    case "powershell":
      if (ctx.kind === "word") {
        if (s.startsWith("-")) throw new Error(`it begins with "-" in PowerShell code, where it would reach a native program as an option`);
        return psQuote(s);
      }
      if (ctx.kind === "single") return psQuote(s).slice(1, -1);
      if (ctx.kind === "double") {
        if (s.includes("\0")) throw new Error("a NUL byte cannot be part of a PowerShell string");
        return s.replace(/[`$"\u201c\u201d\u201e]/g, "`$&");
      }
      break;
    case "systemd":
      if (ctx.kind === "unit") return unitValue(ctx, s);
      break;
    case "yaml":
      if (ctx.kind === "yaml") return yamlScalar(s);
      break;
    case "js":
      if (ctx.kind === "js") return jsString(s);
      break;
    case "text":
      if (CONTROL.test(s)) throw new Error(`a plain-text value is one line: it cannot hold the control character ${describeChar(s, CONTROL)}`);
      return s;
  }
  throw new Error(`no escaping for a ${ctx.kind} context in a ${target} file`);
}

/** A value shortened for an error message (never a secret: templates and fragments hold no secrets). */
export function shownValue(value: unknown): string {
  const s = typeof value === "string" ? value : Array.isArray(value) ? value.join(" ") : String(value);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

/** Contexts per call site: a tagged literal's `strings` array is the same object every time that site runs. */
const taggedCache = new WeakMap<TemplateStringsArray, { contexts: ValueContext[] }>();

/** The slots of a tagged template literal: each value takes one placeholder character in the scanned text. */
function taggedContexts(target: TemplateTarget, strings: TemplateStringsArray): { contexts: ValueContext[] } {
  const hit = taggedCache.get(strings);
  if (hit) return hit;
  let text = "";
  const slots: { start: number; end: number }[] = [];
  strings.forEach((part, i) => {
    text += part;
    if (i < strings.length - 1) {
      slots.push({ start: text.length, end: text.length + 1 });
      text += "\u0000";
    }
  });
  const byStart = scanContexts(target, text, slots);
  const result = { contexts: slots.map((s) => byStart.get(s.start)!) };
  taggedCache.set(strings, result);
  return result;
}

function tagged(target: TemplateTarget, name: string, strings: TemplateStringsArray, values: unknown[]): string {
  const { contexts } = taggedContexts(target, strings);
  let out = strings[0]!;
  values.forEach((v, i) => {
    try {
      out += escapeValue(target, contexts[i]!, v);
    } catch (e) {
      const where = `${strings.slice(0, i + 1).join("${…}")}\${…}`.split("\n").at(-1)!.slice(-60);
      throw new Error(`${name} fragment "${where}": ${shownValue(v)} cannot be written here: ${(e as Error).message}`);
    }
    out += strings[i + 1]!;
  });
  return out;
}

/**
 * Tag for POSIX sh text built in TypeScript: every `${value}` is escaped for its place, as in a `.sh`
 * template (a word is single-quoted, a value inside "…" or '…' is escaped for that string, a value in a
 * comment is shown on one line). Strings, finite numbers and (as words) string arrays.
 * @throws Error naming the fragment when a value cannot be written where it goes.
 */
export function sh(strings: TemplateStringsArray, ...values: unknown[]): string {
  return tagged("sh", "sh", strings, values);
}

/** Tag for PowerShell text built in TypeScript, escaping like a `.ps1` template. @throws Error as {@link sh}. */
export function ps(strings: TemplateStringsArray, ...values: unknown[]): string {
  return tagged("powershell", "PowerShell", strings, values);
}
