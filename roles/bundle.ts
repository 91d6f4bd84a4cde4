/**
 * Turns a role's parts (files, install steps, uninstall steps) into a {@link Bundle}: complete, idempotent
 * POSIX sh scripts that embed the files, plus the bundle hash. Also the shell command that starts a script
 * on a node over SSH, shared by the Pulumi components, the hosts tests and the `fleet` scripts.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import Mustache from "mustache";
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import type { Bundle, BundleDownload, BundleFile, BundleService, ScriptTarget, SecretName } from "./types.js";
import { platformFor, type Platform } from "./platform.js";
import { escapeValue, ps, psQuote, scanContexts, sh, shQuote, shownValue, templateTarget, type TemplateTarget, type ValueContext } from "./escape.js";

export { ps, psQuote, sh, shQuote } from "./escape.js";

const TEMPLATES = new URL("../templates/", import.meta.url);

const templateTexts = new Map<string, string>();

/**
 * Reads `templates/<relPath>` (UTF-8), once per process: every node's bundles render the same templates (at
 * 200 nodes the reads were 2% of the program's CPU). Throws when the template is missing (a packaging bug).
 */
export function readTemplate(relPath: string): string {
  let text = templateTexts.get(relPath);
  if (text === undefined) {
    text = readFileSync(new URL(relPath, TEMPLATES), "utf8");
    templateTexts.set(relPath, text);
  }
  return text;
}

/**
 * Text built by construction that a template inserts unescaped (`{{{name}}}`): the only kind of value a
 * triple mustache accepts, and only in a template of the same target. There is no constructor from
 * arbitrary text; each factory builds its text from data that cannot break out of where it goes.
 */
export class Fragment {
  private constructor(
    /** The template target this text is written for. */
    readonly target: TemplateTarget,
    readonly text: string,
  ) {}

  /**
   * `bytes` as base64 in lines of 76 characters, for a sh quoted here-document (`<<'X'`): the base64
   * alphabet holds no quote, no `$` and no line a here-document delimiter could equal.
   */
  static base64Lines(bytes: Buffer): Fragment {
    return new Fragment("sh", bytes.toString("base64").replace(/(.{76})/g, "$1\n").trimEnd());
  }

  /**
   * PowerShell hashtables `@{ Key = 'value'; List = @('a', 'b') }, …` (for an array literal `@(…)`): keys
   * are identifiers, every value a single-quoted string ({@link psQuote}) or an array of them.
   * @throws Error for a key that is not a plain identifier.
   */
  static psHashtables(rows: Record<string, string | string[]>[]): Fragment {
    const item = (v: string | string[]) => (Array.isArray(v) ? `@(${v.map(psQuote).join(", ")})` : psQuote(v));
    const table = (row: Record<string, string | string[]>) =>
      `@{ ${Object.entries(row)
        .map(([k, v]) => {
          if (!/^[A-Za-z][A-Za-z0-9]*$/.test(k)) throw new Error(`PowerShell hashtable key ${JSON.stringify(k)} is not an identifier`);
          return `${k} = ${item(v)}`;
        })
        .join("; ")} }`;
    return new Fragment("powershell", rows.map(table).join(", "));
  }
}

/** A Mustache writer that escapes every `{{name}}` for its place in a template of `target` and refuses missing values. */
class EscapingWriter extends Mustache.Writer {
  constructor(
    private readonly relPath: string,
    private readonly target: TemplateTarget,
    private readonly contexts: Map<number, ValueContext>,
  ) {
    super();
  }

  private fail(token: string[], why: string): never {
    throw new Error(`template ${this.relPath}: {{${token[1]}}}: ${why}`);
  }

  private value(token: string[], context: Mustache.Context): unknown {
    const v: unknown = context.lookup(token[1]!);
    if (v === undefined || v === null) this.fail(token, "the view gives it no value (a missing value would leave an empty word behind)");
    return v;
  }

  override escapedValue(token: string[], context: Mustache.Context): string {
    const v = this.value(token, context);
    if (v instanceof Fragment) this.fail(token, "a Fragment is inserted with a triple mustache {{{…}}}, not escaped");
    const ctx = this.contexts.get(Number(token[2]));
    if (!ctx) this.fail(token, "fleetkit found no context for this tag (a bug in roles/escape.ts)");
    try {
      return escapeValue(this.target, ctx, v);
    } catch (e) {
      this.fail(token, `${shownValue(v)} cannot be written here: ${(e as Error).message}`);
    }
  }

  override unescapedValue(token: string[], context: Mustache.Context): string {
    const v = this.value(token, context);
    if (!(v instanceof Fragment) || v.target !== this.target) this.fail(token, `a triple mustache takes only a ${this.target} Fragment built by construction (roles/bundle.ts), never plain text`);
    return v.text;
  }
}

/** Every tag of a parsed template, sections' contents included. */
function allTags(spans: Mustache.TemplateSpans): { type: string; name: string; start: number; end: number }[] {
  return spans.flatMap((t) => {
    const [type, name, start, end, children] = t as unknown as [string, string, number, number, unknown];
    const own = type === "text" ? [] : [{ type, name, start, end }];
    return [...own, ...(Array.isArray(children) ? allTags(children as Mustache.TemplateSpans) : [])];
  });
}

/**
 * One writer per template: a Mustache.Writer keeps the parsed template in its own cache, so a writer made per
 * render parsed the template again each time (3% of the program's CPU at 200 nodes). A writer holds nothing
 * of a render (its fields are the template's path, target and value contexts).
 */
const templateWriters = new Map<string, EscapingWriter>();

/**
 * Renders `templates/<relPath>` with Mustache, escaping every `{{name}}` for the template's target (from its
 * extension: roles/escape.ts templateTarget) and its place in the text (a sh word, a quoted string, a
 * comment, a systemd directive, a YAML scalar …). `{{{name}}}` inserts a {@link Fragment} of the same target
 * unescaped; nothing else. Always returns text ending in exactly one newline.
 * @throws Error naming the template and the variable when a value is missing or cannot be represented
 *   where it goes (e.g. a newline in a systemd unit, a `-x` where a command would read an option).
 */
export function renderTemplate(relPath: string, view: Record<string, unknown>): string {
  const text = readTemplate(relPath);
  let writer = templateWriters.get(relPath);
  if (!writer) {
    const target = templateTarget(relPath);
    const tags = allTags(Mustache.parse(text));
    const bad = tags.find((t) => !["name", "&", "#", "^", "/"].includes(t.type));
    if (bad) throw new Error(`template ${relPath}: fleetkit templates use {{name}}, {{{name}}} and sections only, not {{${bad.type}${bad.name}}}`);
    const contexts = scanContexts(target, text, tags.filter((t) => t.type === "name").map((t) => ({ start: t.start, end: t.end })));
    writer = new EscapingWriter(relPath, target, contexts);
    templateWriters.set(relPath, writer);
  }
  const out = writer.render(text, view);
  // Exactly one final newline. (`replace(/\n*$/, …)` tries the pattern at every offset: a tenth of a second per
  // 500 renders of the 120 KB runtime template.)
  let end = out.length;
  while (end > 0 && out.charCodeAt(end - 1) === 10) end--;
  return `${out.slice(0, end)}\n`;
}

const HEREDOC_END = "FLEETKIT_EOF";

/** Shell lines that place one file with {@link BundleFile}'s mode and owner (content in a quoted heredoc). */
export function putFile(f: BundleFile, platform: Platform): string {
  if (!f.content.endsWith("\n")) throw new Error(`bundle file ${f.path} must end with a newline`);
  if (f.content.split("\n").includes(HEREDOC_END)) throw new Error(`bundle file ${f.path} contains the line ${HEREDOC_END}`);
  const group = f.group ?? (f.owner === "root" ? platform.rootGroup : f.owner);
  return `fk_put ${shQuote(f.path)} ${f.mode.toString(8).padStart(4, "0")} ${shQuote(f.owner)} ${shQuote(group)} <<'${HEREDOC_END}'\n${f.content}${HEREDOC_END}`;
}

/** sha256 (hex) of `data` (a string is hashed as UTF-8), as `sha256sum` prints it: file contents, tarballs, tokens. */
export function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The parts a role renderer returns; {@link assembleBundle} turns them into a Bundle. */
export interface RoleParts {
  target?: ScriptTarget;
  files: BundleFile[];
  /**
   * Files placed before `preInstall` runs (and listed first in the bundle's files): what a step must find on
   * the node before the role's packages can start anything, e.g. the role's firewall script (roles/firewall.ts).
   */
  firstFiles?: BundleFile[];
  /** Packages (already per platform) this role needs; recorded in the marker, released on uninstall. */
  packages: string[];
  /** Shell run before the files are placed (e.g. users, directories, downloads). */
  preInstall?: string;
  /** Shell run after the files are placed (e.g. enable and start services). */
  postInstall?: string;
  /** Shell run by uninstall before files are removed (e.g. stop services). */
  preUninstall?: string;
  /** Shell run by uninstall after files are removed. */
  postUninstall?: string;
  services: BundleService[];
  /** Pinned artifacts the install downloads (see {@link artifactDownload}). */
  downloads?: BundleDownload[];
  secrets?: SecretName[];
  /** `all` (default): every secret is required on stdin; `any`: at least one of them (e.g. API key or OAuth token). */
  secretsMode?: "all" | "any";
  /** With `secretsMode: "any"`: secrets required besides (read after `secrets`), e.g. the node's queueToken. */
  requiredSecrets?: SecretName[];
}

function header(fleet: Fleet, node: FleetNode, role: RoleName, platform: Platform, what: string): string {
  return [
    "#!/bin/sh",
    sh`# fleetkit ${what}: role ${role} on node ${node.name} (fleet ${fleet.name}). Rendered by fleetkit; do not edit.`,
    readTemplate("common/prelude.sh").trimEnd(),
    `FK_STATE=${shQuote(platform.stateDir)}`,
    `FK_FAMILY=${platform.family}`,
    `FK_ROOT_GROUP=${platform.rootGroup}`,
    `FK_USER=${shQuote(node.user)}`,
    `FK_BREW=${shQuote(platform.brew ?? "")}`,
    `export FK_STATE FK_FAMILY FK_ROOT_GROUP FK_USER FK_BREW`,
    `mkdir -p "$FK_STATE/roles"`,
  ].join("\n");
}

/**
 * Builds the bundle for one role on one node from its parts: the install script places every file, runs
 * the role's steps and writes the marker; the uninstall script reverses it. Pure.
 */
export function assembleBundle(fleet: Fleet, node: FleetNode, role: RoleName, parts: RoleParts): Bundle {
  if (parts.target === "windows-host") return assembleWindowsHostBundle(fleet, node, role, parts);
  const platform = platformFor(node);
  const required = parts.requiredSecrets ?? [];
  const secrets = [...(parts.secrets ?? []), ...required];
  const any = parts.secretsMode === "any";
  const first = parts.firstFiles ?? [];
  const files = [...first, ...parts.files];
  const installBody = [
    header(fleet, node, role, platform, "install"),
    secrets.length ? `fk_read_secrets ${any ? "--any " : ""}${secrets.join(" ")}` : "",
    ...first.map((f) => putFile(f, platform)),
    parts.preInstall ?? "",
    ...parts.files.map((f) => putFile(f, platform)),
    parts.postInstall ?? "",
  ].filter((s) => s !== "").join("\n");
  const uninstall = [
    header(fleet, node, role, platform, "uninstall"),
    parts.preUninstall ?? "",
    files.some((f) => !f.keepWhile) ? `fk_rm ${files.filter((f) => !f.keepWhile).map((f) => shQuote(f.path)).join(" ")}` : "",
    ...files.filter((f) => f.keepWhile).map((f) => `if [ ! -e "$FK_STATE/roles/${f.keepWhile}.hash" ]; then fk_rm ${shQuote(f.path)}; fi`),
    parts.postUninstall ?? "",
    parts.packages.length ? `fk_pkg_release ${role} ${parts.packages.join(" ")}` : "",
    `fk_forget ${role}`,
  ].filter((s) => s !== "").join("\n") + "\n";

  const target = parts.target ?? (node.os === "windows-wsl" ? "wsl" : "node");
  // The scripts are hashed as they are, not inside JSON (escaping 120 KB scripts cost more than hashing them),
  // and the files by their metadata: their contents are in the install script. Scripts hold no NUL (sh words
  // refuse it), so the NUL-separated parts cannot run into each other.
  const hash = createHash("sha256");
  const fileFacts = files.map(({ content: _content, ...facts }) => facts);
  hash.update(
    JSON.stringify({ target, files: fileFacts, services: parts.services, secrets, packages: parts.packages, ...(any ? { secretsMode: "any" } : {}), ...(required.length ? { required } : {}) }),
  );
  hash.update("\0install\0").update(installBody).update("\0uninstall\0").update(uninstall);
  const digest = hash.digest("hex");
  const install = `${installBody}\nfk_finish ${role} ${digest}${parts.packages.length ? " " + parts.packages.join(" ") : ""}\n`;
  const bundle: Bundle = { node: node.name, role, target, files, install, uninstall, services: parts.services, secrets, hash: digest };
  if (any) bundle.secretsMode = "any";
  if (required.length) bundle.requiredSecrets = required;
  if (parts.downloads?.length) bundle.downloads = parts.downloads;
  return bundle;
}

/**
 * Builds a Windows host bundle (target `windows-host`): PowerShell scripts around the prelude in
 * `templates/wsl/prelude.ps1`, whose helpers mirror the sh prelude (Fk-ReadSecrets, Fk-Finish …). Such a
 * bundle places no files itself (a step that edits a file inside the WSL distro does it through wsl.exe).
 * @throws Error when parts carry files or packages (a renderer bug: they are sh-only).
 */
function assembleWindowsHostBundle(fleet: Fleet, node: FleetNode, role: RoleName, parts: RoleParts): Bundle {
  if (parts.files.length || parts.firstFiles?.length || parts.packages.length) throw new Error(`role ${role}: a windows-host bundle cannot place files or packages`);
  const secrets = parts.secrets ?? [];
  const any = parts.secretsMode === "any";
  const head = (what: string) =>
    [
      ps`# fleetkit ${what}: role ${role} on node ${node.name} (fleet ${fleet.name}), Windows host. Rendered by fleetkit; do not edit.`,
      readTemplate("wsl/prelude.ps1").trimEnd(),
    ].join("\n");
  const installBody = [
    head("install"),
    secrets.length ? `Fk-ReadSecrets${any ? " -Any" : ""} @(${secrets.map(psQuote).join(", ")})` : "",
    parts.preInstall ?? "",
    parts.postInstall ?? "",
  ].filter((s) => s !== "").join("\n");
  const uninstall = [head("uninstall"), parts.preUninstall ?? "", parts.postUninstall ?? "", `Fk-Forget ${psQuote(role)}`].filter((s) => s !== "").join("\n") + "\n";
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ target: "windows-host", installBody, uninstall, services: parts.services, secrets, ...(any ? { secretsMode: "any" } : {}) }));
  const digest = hash.digest("hex");
  const install = `${installBody}\nFk-Finish ${psQuote(role)} ${psQuote(digest)}\n`;
  const bundle: Bundle = { node: node.name, role, target: "windows-host", files: [], install, uninstall, services: parts.services, secrets, hash: digest };
  if (any) bundle.secretsMode = "any";
  return bundle;
}

/**
 * The longest command line a Windows node accepts over SSH: its OpenSSH server hands the line to the
 * DefaultShell, cmd.exe unless changed, whose limit is 8,191 characters (Microsoft, "Command prompt
 * (Cmd.exe) command-line string limitation"); PowerShell's is CreateProcess's 32,767.
 */
export const WINDOWS_COMMAND_LINE_LIMIT = 8191;

/**
 * Longest `sudo -n sh -c '…'` line sent to a Linux or macOS node, in bytes: Linux limits one argument (sshd
 * passes the whole line as one, to the user's shell's `-c`) to MAX_ARG_STRLEN, 32 pages = 131,072 bytes
 * with its NUL (execve(2), "Limits on size of arguments and environment"); 4 KiB are left for the shell's
 * own use. Role installs never come near it (they travel as files, roles/shipping.ts); a longer line is refused.
 */
export const POSIX_COMMAND_LINE_LIMIT = 128 * 1024 - 4096;

/**
 * `s` as a word of a Windows command line that cmd.exe and PowerShell (either may be the OpenSSH
 * DefaultShell) read alike: no quoting means the same to both (cmd.exe expands `%VAR%` even inside double
 * quotes, PowerShell expands `$x` there), so only letters, digits, `.`, `_` and `-` pass, and not a
 * leading `-` (an option to the program). `what` names the value in the error.
 * @throws Error naming `what` for any other text.
 */
export function windowsWord(s: string, what: string): string {
  if (!/^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(s)) {
    throw new Error(`${what} ${shownValue(s)} cannot be written on a Windows command line that cmd.exe and PowerShell read alike: use letters, digits, ".", "_" and "-" (not first)`);
  }
  return s;
}

/** gzip then base64, byte-stable across platforms (mtime 0, OS byte "unknown"), so the command never churns. */
function packScript(script: string): string {
  const gz = gzipSync(Buffer.from(script, "utf8"), { level: 9 });
  gz[9] = 0xff;
  return gz.toString("base64");
}

/**
 * How a script reaches a node over SSH: the command line, and text that must come first on the command's
 * stdin (before the secrets), or "" when the script travels entirely on the command line.
 */
export interface RemoteInvocation {
  /** The SSH command line. */
  command: string;
  /** The start of stdin when a `wsl` script is too long for the command line (packed, plus a newline), else "". */
  stdinPrefix: string;
}

/**
 * The command that runs `script` as root on `node` over SSH. Linux and macOS: `sudo -n sh -c '…'` (the
 * script is one quoted word; secrets never appear in it, they arrive on stdin), at most
 * {@link POSIX_COMMAND_LINE_LIMIT} bytes (a role's install and uninstall travel as files instead,
 * roles/shipping.ts).
 *
 * Windows: the host's OpenSSH hands the line to its DefaultShell, cmd.exe or PowerShell, so the line is
 * written to mean the same to both (no `$`, `%`, `^`, `!` or inner double quote) and to fit cmd.exe's
 * {@link WINDOWS_COMMAND_LINE_LIMIT}: the script travels gzipped and base64-encoded.
 * - `wsl`: `wsl.exe -d <distro> -u root -e sh -c "…"` unpacks it into `/tmp/fleetkit-<sha256 prefix>.sh`
 *   (mode 0600) and runs it with sh; the script's first line removes that file. Stdin (the secrets) reaches
 *   the script. When the packed script fits the line it is an `echo` argument (`stdinPrefix` ""); when it
 *   does not (the worker, which carries the runtime), it is the first `stdinPrefix.length` bytes of stdin
 *   and the launcher takes exactly those with `head -c` (GNU coreutils reads at most the remaining count
 *   from a pipe, so the secrets after it stay for the script).
 * - `windows-host`: `powershell.exe … -Command "iex (…)"` decompresses it in memory and runs it in the
 *   command's scope; stdin reaches it as `[Console]::In`.
 *
 * Only a role's install (a `remote.Command`'s create, whose stdin fleetkit writes) may take the stdin form:
 * the provider hands a command's stored stdin to its delete too, so an uninstall must fit the line.
 * @throws Error when a `windows-host` command exceeds the limit (no such role exists; the test suite renders
 *   every real fleet's Windows commands), when a Linux/macOS line exceeds {@link POSIX_COMMAND_LINE_LIMIT},
 *   or when the node's `wslDistro` is not a {@link windowsWord}.
 */
export function remoteInvocation(node: FleetNode, target: ScriptTarget, script: string): RemoteInvocation {
  let line: string;
  let stdinPrefix = "";
  if (target === "wsl") {
    const payload = `rm -f "$0"\n${script}`;
    const file = `/tmp/fleetkit-${createHash("sha256").update(payload).digest("hex").slice(0, 16)}.sh`;
    const packed = packScript(payload);
    const distro = windowsWord(node.wslDistro ?? "", `node ${node.name}: wslDistro`);
    const launch = (source: string) => `wsl.exe -d ${distro} -u root -e sh -c "umask 077 && ${source} | base64 -d | gzip -dc > ${file} && sh ${file}"`;
    line = launch(`echo ${packed}`);
    if (line.length > WINDOWS_COMMAND_LINE_LIMIT) {
      stdinPrefix = `${packed}\n`;
      line = launch(`head -c ${stdinPrefix.length}`);
    }
  } else if (target === "windows-host") {
    const stream = `New-Object IO.Compression.GZipStream((New-Object IO.MemoryStream(,[Convert]::FromBase64String('${packScript(script)}'))),[IO.Compression.CompressionMode]::Decompress)`;
    line = `powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "iex ((New-Object IO.StreamReader(${stream})).ReadToEnd())"`;
  } else {
    const command = `sudo -n sh -c ${shQuote(script)}`;
    const bytes = Buffer.byteLength(command);
    if (bytes > POSIX_COMMAND_LINE_LIMIT) {
      throw new Error(`the command for node ${node.name} is ${bytes} bytes, over the ${POSIX_COMMAND_LINE_LIMIT} one command line may have on Linux (a fleetkit bug: a script this long ships as files, roles/shipping.ts)`);
    }
    return { command, stdinPrefix };
  }
  if (line.length > WINDOWS_COMMAND_LINE_LIMIT) {
    throw new Error(
      `the ${target} command for node ${node.name} is ${line.length} characters, over the ${WINDOWS_COMMAND_LINE_LIMIT} a Windows command line may have ` +
        `(cmd.exe's limit); this role cannot be delivered to a Windows node yet: move it to a Linux or macOS node`,
    );
  }
  return { command: line, stdinPrefix };
}

/**
 * {@link remoteInvocation}'s command for a script that must travel entirely on the command line (an
 * uninstall, a check, a file transfer: commands whose stdin is not fleetkit's to prepend to).
 * @throws Error when the script needs the stdin form (a `wsl` script whose packed text is too long for a
 *   Windows command line), naming the node and the length, or for {@link remoteInvocation}'s reasons.
 */
export function remoteCommand(node: FleetNode, target: ScriptTarget, script: string): string {
  const inv = remoteInvocation(node, target, script);
  if (inv.stdinPrefix) {
    throw new Error(
      `the ${target} script for node ${node.name} is ${inv.stdinPrefix.length - 1} characters packed, too long for a Windows command line ` +
          `(${WINDOWS_COMMAND_LINE_LIMIT}); only a role install can carry it (on stdin)`,
    );
  }
  return inv.command;
}

/** A word every shell on the way reads as it is: sh, cmd.exe and PowerShell (no quoting, no expansion). */
const ARGV_WORD = /^[A-Za-z0-9_./-]+$/;

/**
 * The command line that runs the program `argv[0]` as root on `node` with the arguments that follow, no shell
 * script in between: `sudo -n PROGRAM ARG…` on Linux and macOS (`node`), `wsl.exe -d <distro> -u root -e
 * PROGRAM ARG…` in a WSL distro (`-e` runs the program without the distro's shell, wsl(1) `--exec`). Callers
 * may append further plain words. Every word must be a plain one ([A-Za-z0-9_./-]), the same to sh, cmd.exe and
 * PowerShell; a test path with other characters is quoted for sh where the target is `node`.
 * @throws Error when the target is `windows-host`, a `wsl` word is not plain, or `wslDistro` is not a {@link windowsWord}.
 */
export function rootArgvCommand(node: FleetNode, target: ScriptTarget, argv: string[]): string {
  if (target === "node") return `sudo -n ${argv.map((w) => (ARGV_WORD.test(w) ? w : shQuote(w))).join(" ")}`;
  if (target !== "wsl") throw new Error(`rootArgvCommand: no program runs as root on the ${target} of node ${node.name} (a fleetkit bug)`);
  for (const w of argv) if (!ARGV_WORD.test(w)) throw new Error(`rootArgvCommand: ${shownValue(w)} cannot be written plain on a Windows command line for node ${node.name} (a fleetkit bug)`);
  return `wsl.exe -d ${windowsWord(node.wslDistro ?? "", `node ${node.name}: wslDistro`)} -u root -e ${argv.join(" ")}`;
}
