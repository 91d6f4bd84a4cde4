/**
 * `fleet add-machine`: adds a node to fleet.yaml. Answers come from flags, from `--probe` (OS and arch
 * detected over SSH) or, on a terminal, from prompts. The new entry is validated with the fleet schema by
 * parsing the whole would-be file (`parseFleet`), so a bad answer is refused with the schema's own
 * message and the file is untouched; a good one is written to a temp file and renamed over fleet.yaml.
 *
 * The existing file is kept byte for byte: the entry is rendered with the `yaml` package and spliced in
 * after the last node (positions from `parseDocument`). Re-serialising the whole document with
 * `Document.toString()` keeps comments but not formatting (it re-aligns inline comments and re-wraps flow
 * lists), which would rewrite a hand-kept file, so it is used only when `nodes:` is a flow map.
 */
import { parseVerb } from "./verb.js";
import { chalk, question } from "zx";
import { Document, isMap, isScalar, LineCounter, parseDocument, type Pair, type YAMLMap } from "yaml";
import { FleetError, parseFleet, readFleetText } from "../model/load.js";
import { parseFleetWithRoles } from "../roles/sources.js";
import type { UserRoleSpec } from "../model/schema.js";
import { ARCH_NAMES, OS_NAMES, ROLE_NAMES, fleetFileSchemaFor } from "../model/schema.js";
import type { Fleet } from "../model/fleet.js";
import { UserError } from "../model/errors.js";
import { blockMapInsertionPoint, keyStart, writeFileAtomic } from "./yaml-edit.js";
import { sshRun, type SshTarget } from "./ssh.js";

/** A node entry as written under `nodes:` (only the fields add-machine sets). */
export interface NodeEntry {
  host: string;
  os: string;
  arch: string;
  user?: string;
  sshPort?: number;
  profile?: string;
  roles?: string[];
  wslDistro?: string;
  /** Claude budget cap in USD per session (and a worker's per task / per day). */
  budgetUsdPerSession?: number;
  /** iceccd `--max-processes`. */
  iceccMaxJobs?: number;
  /** Free labels tasks can require (`gpu: "true"`). */
  tags?: Record<string, string>;
}

/**
 * `--tags` values (each `k=v[,k=v…]`, the flag may repeat) as a map, in the order given.
 * @throws UserError for an item without `=` (the schema checks the keys and values themselves).
 */
export function parseTags(values: readonly string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const item of values.flatMap((v) => v.split(",")).map((x) => x.trim()).filter(Boolean)) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UserError(`fleet add-machine: --tags expects key=value pairs like site=garage,gpu=true, got "${item}".`);
    tags[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return tags;
}

/** A flag's positive number (`--budget 5`, `--max-jobs 4`). @throws UserError naming the flag and what it got. */
function numberFlag(flag: string, value: string, what: string, integer = false): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UserError(`fleet add-machine: --${flag} expects ${what}, got "${value}".`);
  return n;
}

/**
 * Returns `source` with `name: entry` added at the end of the `nodes:` map; every existing byte is kept
 * (block-style `nodes:`). Indentation and blank-line spacing follow the existing nodes; lists are written
 * in flow style when the file's lists are. Pure; does not validate (see {@link addNodeToFleetText}).
 * @throws UserError when the file has no `nodes:` map or already has a node `name`.
 */
export function appendNode(source: string, name: string, entry: NodeEntry): string {
  const lc = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lc });
  const nodes = doc.get("nodes", true);
  if (!isMap(nodes)) throw new UserError(`fleet add-machine: the fleet file has no \`nodes:\` map to add to; add \`nodes:\` with at least one node first.`);
  const existing = (nodes.items as Pair[]).find((p) => isScalar(p.key) && String(p.key.value) === name);
  if (existing) {
    const line = lc.linePos((existing.key as { range?: [number, number, number] }).range?.[0] ?? 0).line;
    throw new UserError(`fleet add-machine: a node named "${name}" already exists (line ${line}); pick another name or edit that entry.`);
  }
  const flowLists = /:\s*\[[^\]\n]*\]/.test(source);
  const render = (indentStep: number) => {
    const d = new Document({ [name]: entry });
    const roles = (d.get(name) as YAMLMap).get("roles", true);
    if (roles && flowLists) (roles as { flow?: boolean }).flow = true;
    return d.toString({ indent: indentStep, flowCollectionPadding: false, lineWidth: 0 });
  };
  if (nodes.flow || nodes.items.length === 0) {
    nodes.set(name, new Document(entry).contents);
    return doc.toString();
  }
  const items = nodes.items as Pair[];
  const indent = lc.linePos(keyStart(items[0])).col - 1;
  // The indent step: how much deeper the first node's fields sit than its key.
  const firstValue = items[0].value;
  let step = 2;
  if (isMap(firstValue) && !firstValue.flow && firstValue.items.length) {
    step = Math.max(1, lc.linePos(keyStart(firstValue.items[0] as Pair)).col - 1 - indent);
  }
  // Nodes separated by blank lines get one before the new node too.
  let blankBefore = false;
  if (items.length >= 2) {
    // A block value's range ends after its line break, a flow value's (`{ … }`) before it.
    const prevEnd = (items.at(-2)!.value as { range: [number, number, number] }).range[1];
    const between = (source[prevEnd - 1] === "\n" ? "\n" : "") + source.slice(prevEnd, keyStart(items.at(-1)!));
    blankBefore = /\n[ \t]*\n/.test(between);
  }
  // Insert after the map's last content line and any comment lines indented like its contents.
  const at = blockMapInsertionPoint(source, nodes, indent);
  const block = render(step)
    .trimEnd()
    .split("\n")
    .map((l) => " ".repeat(indent) + l)
    .join("\n");
  const before = source.slice(0, at);
  const lead = (before.length && !before.endsWith("\n") ? "\n" : "") + (blankBefore ? "\n" : "");
  return before + lead + block + "\n" + source.slice(at);
}

/**
 * Adds the node and validates the result as a whole fleet file.
 * @returns the new file text and the parsed fleet.
 * @throws UserError (exit 2) with the schema's own message (file:line:col of the would-be file) when the
 * entry makes the fleet invalid.
 */
export function addNodeToFleetText(source: string, file: string, name: string, entry: NodeEntry, userRoles: readonly UserRoleSpec[] = []): { text: string; fleet: Fleet } {
  const text = appendNode(source, name, entry);
  try {
    return { text, fleet: parseFleet(text, file, { userRoles }) };
  } catch (err) {
    if (err instanceof FleetError) {
      throw new UserError(`fleet add-machine: node "${name}" was not added (${file} is unchanged); with it the file would be invalid:\n${err.message}`, 2);
    }
    throw err;
  }
}

/** What `--probe` found on a machine. Values are passed to the schema as found (it judges them). */
export interface DetectedPlatform {
  os: string;
  arch: string;
  /** Set when the SSH session landed inside WSL (`$WSL_DISTRO_NAME`). */
  wslDistro?: string;
  /** A human line, e.g. `Debian GNU/Linux 12 (bookworm), x86_64`. */
  description: string;
}

/** The POSIX probe; its output starts with `FK-POSIX`. Read-only. */
export const PLATFORM_PROBE =
  "echo FK-POSIX; echo UNAME_S=$(uname -s); echo UNAME_M=$(uname -m); cat /etc/os-release 2>/dev/null; " +
  "[ -f /etc/rpi-issue ] && echo RPI_ISSUE=1; command -v sw_vers >/dev/null 2>&1 && echo MACOS_VERSION=$(sw_vers -productVersion); " +
  "grep -qi microsoft /proc/version 2>/dev/null && echo WSL=1; echo WSL_DISTRO_NAME=${WSL_DISTRO_NAME:-}; true";

/** The Windows (cmd.exe, OpenSSH's default shell there) probe, used when the POSIX one did not run. */
export const WINDOWS_PROBE = "echo FK-WIN %PROCESSOR_ARCHITECTURE%";

/** `uname -m` / Windows spellings to the schema's arch names; unknown values pass through unchanged. */
export function normaliseArch(raw: string): string {
  const a = raw.trim().toLowerCase();
  if (a === "x86_64" || a === "amd64" || a === "x64") return "x86_64";
  if (a === "aarch64" || a === "arm64" || a === "armv8") return "aarch64";
  return raw.trim();
}

/**
 * Reads the output of {@link PLATFORM_PROBE} (or {@link WINDOWS_PROBE}). Facts: Darwin → macos
 * (`sw_vers`); `/proc/version` mentioning Microsoft → windows-wsl; os-release `ID=raspbian`, or
 * `ID=debian` with `/etc/rpi-issue` (Raspberry Pi OS 64-bit says debian) → raspios; `ID=debian` →
 * debian; `ID=arch`/`archarm` → arch; any other ID passes through (the schema refuses it).
 * @returns undefined when the output is from neither probe.
 */
export function parsePlatformProbe(output: string): DetectedPlatform | undefined {
  const win = /FK-WIN\s+(\S+)/.exec(output);
  if (win) {
    const arch = normaliseArch(win[1]);
    return { os: "windows-wsl", arch, description: `Windows (${win[1]})` };
  }
  if (!output.includes("FK-POSIX")) return undefined;
  const kv = new Map<string, string>();
  for (const line of output.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) kv.set(m[1], m[2].replace(/^"(.*)"$/, "$1"));
  }
  const arch = normaliseArch(kv.get("UNAME_M") ?? "");
  const kernel = kv.get("UNAME_S") ?? "";
  if (kernel === "Darwin") return { os: "macos", arch, description: `macOS ${kv.get("MACOS_VERSION") ?? ""}, ${arch}`.replace(" ,", ",") };
  const pretty = kv.get("PRETTY_NAME") ?? kernel;
  if (kv.get("WSL") === "1") {
    const d: DetectedPlatform = { os: "windows-wsl", arch, description: `${pretty} in WSL, ${arch}` };
    if (kv.get("WSL_DISTRO_NAME")) d.wslDistro = kv.get("WSL_DISTRO_NAME");
    return d;
  }
  const id = (kv.get("ID") ?? "").toLowerCase();
  let os = id || kernel.toLowerCase();
  if (id === "raspbian" || (id === "debian" && kv.get("RPI_ISSUE") === "1")) os = "raspios";
  else if (id === "archarm") os = "arch";
  return { os, arch, description: `${pretty}, ${arch}` };
}

/**
 * Connects to `target` and detects its OS and arch. Tries the POSIX probe, then the Windows one.
 * @throws UserError (exit 2) when the machine cannot be reached or neither probe is understood.
 */
export async function probePlatform(target: SshTarget, timeoutSeconds: number): Promise<DetectedPlatform> {
  const r = await sshRun(target, PLATFORM_PROBE, { timeoutSeconds });
  if (r.reach !== "ok") {
    throw new UserError(
      `fleet add-machine --probe: cannot reach ${target.user}@${target.host}:${target.sshPort} (${r.reach}: ${r.reason}). Check the host, user and key (the fleet's sshKeyPath), or give --os and --arch instead of --probe.`,
    );
  }
  const found = parsePlatformProbe(r.stdout);
  if (found) return found;
  const w = await sshRun(target, WINDOWS_PROBE, { timeoutSeconds });
  const win = w.reach === "ok" ? parsePlatformProbe(w.stdout) : undefined;
  if (win) return win;
  throw new UserError(`fleet add-machine --probe: could not tell the OS of ${target.host} (neither uname nor cmd.exe answered: ${r.stderr.trim().split("\n").at(-1) ?? "no output"}). Give --os and --arch instead.`);
}

/** The connection defaults of a (valid) fleet file, with the schema's defaults filled in. */
export function fileDefaults(
  source: string,
  userRoles: readonly UserRoleSpec[] = [],
): { user: string; sshPort: number; sshKeyPath: string; perDialTimeoutSeconds: number; budgetUsdPerSession?: number } {
  const d = fleetFileSchemaFor(userRoles).parse(parseDocument(source).toJS()).defaults;
  return { user: d.user, sshPort: d.sshPort, sshKeyPath: d.sshKeyPath, perDialTimeoutSeconds: d.perDialTimeoutSeconds, budgetUsdPerSession: d.budgetUsdPerSession };
}

const USAGE = `usage: fleet add-machine [--name NAME] [--host HOST] [--user USER] [--ssh-port PORT] [--os OS] [--arch ARCH]
                         [--profile PROFILE | --roles R1,R2] [--wsl-distro NAME] [--budget USD] [--max-jobs N]
                         [--tags K=V,…] [--probe] [--fleet FILE]
  --probe        connect over SSH and detect --os and --arch (uname -m, /etc/os-release, sw_vers, WSL)
  --os           ${OS_NAMES.join(" | ")}
  --arch         ${ARCH_NAMES.join(" | ")}
  --roles        comma-separated: ${ROLE_NAMES.join(", ")} or a user role of the fleet's roleSources
  --budget USD   Claude budget cap per session (required for roles claude and worker unless defaults set one)
  --max-jobs N   parallel compile jobs iceccd accepts (default: the node's CPU count)
  --tags K=V,…   labels tasks can require, e.g. site=garage,gpu=true (the flag may repeat)
  --fleet FILE   fleet file to add to (default fleet.yaml)
Missing answers are asked for on a terminal; without one, missing flags are an error (exit 2).
The node is validated with the fleet schema and appended to the file, keeping its comments and layout.
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseVerb(argv, { verb: "add-machine", usage: USAGE, options: { fleet: { type: "string", default: "fleet.yaml" }, name: { type: "string" }, host: { type: "string" }, user: { type: "string" }, "ssh-port": { type: "string" }, os: { type: "string" }, arch: { type: "string" }, profile: { type: "string" }, roles: { type: "string" }, "wsl-distro": { type: "string" }, budget: { type: "string" }, "max-jobs": { type: "string" }, tags: { type: "string", multiple: true }, timeout: { type: "string" }, probe: { type: "boolean" } }, positionals: false, unexpected: (a) => `unexpected argument "${a}" (answers are flags, e.g. --name ${a})` });
  if (!parsed) return 0;
  const { values: args } = parsed;
  const file: string = args.fleet;
  const source = readFleetText(file);
  const fleet = await parseFleetWithRoles(source, file);
  const defaults = fileDefaults(source, fleet.userRoles);
  const interactive = Boolean(process.stdin.isTTY);
  const ask = async (flag: string, prompt: string, choices?: string[]): Promise<string> => {
    if (!interactive) throw new UserError(`fleet add-machine: --${flag} is required (no terminal to ask on).\n${USAGE}`);
    return (await question(`${prompt}${choices ? ` (${choices.join(", ")})` : ""}: `, choices ? { choices } : undefined)).trim();
  };
  const name = args.name || (await ask("name", "node name (a lower-case hostname label)"));
  const host = args.host || (await ask("host", `SSH address of ${name} (Tailscale name, DNS name or IP)`));
  const user: string = args.user || defaults.user;
  const sshPort = args["ssh-port"] ? Number(args["ssh-port"]) : defaults.sshPort;
  let os: string | undefined = args.os;
  let arch: string | undefined = args.arch;
  let wslDistro: string | undefined = args["wsl-distro"];
  if (args.probe) {
    const dial = defaults.perDialTimeoutSeconds;
    const found = await probePlatform(
      { name, host, user, sshPort, sshKeyPath: defaults.sshKeyPath, perDialTimeoutSeconds: dial },
      dial + 20,
    );
    process.stderr.write(`${chalk.dim("probe:")} ${host} runs ${found.description}\n`);
    for (const [flag, given, seen] of [["os", os, found.os], ["arch", arch, found.arch]] as const) {
      if (given && given !== seen) process.stderr.write(`${chalk.yellow("note:")} --${flag} ${given} overrides the detected ${seen}\n`);
    }
    os ??= found.os;
    arch ??= found.arch;
    wslDistro ??= found.wslDistro;
  }
  os ||= await ask("os", "operating system", [...OS_NAMES]);
  arch ||= await ask("arch", "CPU architecture", [...ARCH_NAMES]);
  if (os === "windows-wsl" && !wslDistro) wslDistro = (interactive ? await ask("wsl-distro", "WSL distribution that runs the Linux side (e.g. Debian)") : undefined) || undefined;
  let profile: string | undefined = args.profile;
  let roles: string[] | undefined = args.roles ? String(args.roles).split(",").map((r) => r.trim()).filter(Boolean) : undefined;
  if (!profile && !roles) {
    const profiles = Object.keys(fleet.profiles);
    const answer = await ask("profile (or --roles)", `profile, or roles separated by commas`, profiles.length ? profiles : undefined);
    if (answer.includes(",") || !profiles.includes(answer)) roles = answer.split(",").map((r) => r.trim()).filter(Boolean);
    else profile = answer;
  }
  // A node that runs Claude needs a budget cap (model/rules.ts): ask for it rather than fail on the schema.
  const nodeRoles = [...(profile && Object.hasOwn(fleet.profiles, profile) ? fleet.profiles[profile]! : []), ...(roles ?? [])];
  const runsClaude = nodeRoles.includes("claude") || nodeRoles.includes("worker");
  let budget = args.budget !== undefined ? numberFlag("budget", args.budget, "a positive number of USD per session") : undefined;
  if (budget === undefined && runsClaude && defaults.budgetUsdPerSession === undefined) {
    if (!interactive) throw new UserError(`fleet add-machine: --budget USD is required: ${name} runs Claude (${nodeRoles.filter((r) => r === "claude" || r === "worker").join(", ")}) and ${file} sets no defaults.budgetUsdPerSession.\n${USAGE}`);
    budget = numberFlag("budget", await ask("budget", `Claude budget cap for ${name}, in USD per session`), "a positive number of USD per session");
  }
  const entry: NodeEntry = { host, os, arch };
  if (args.user && args.user !== defaults.user) entry.user = args.user;
  if (args["ssh-port"] && sshPort !== defaults.sshPort) entry.sshPort = Number.isFinite(sshPort) ? sshPort : (args["ssh-port"] as unknown as number);
  if (profile) entry.profile = profile;
  if (roles) entry.roles = roles;
  if (wslDistro) entry.wslDistro = wslDistro;
  if (budget !== undefined) entry.budgetUsdPerSession = budget;
  if (args["max-jobs"] !== undefined) entry.iceccMaxJobs = numberFlag("max-jobs", args["max-jobs"], "a whole number of jobs", true);
  if (args.tags?.length) entry.tags = parseTags(args.tags);
  const { text } = addNodeToFleetText(source, file, name, entry, fleet.userRoles);
  writeFileAtomic(file, text);
  process.stdout.write(
    `${chalk.green("✓")} added node ${chalk.bold(name)} (${os}/${arch}, ${profile ? `profile ${profile}` : `roles ${roles!.join(", ")}`}) to ${file}\n` +
      `Provision it with:\n  pulumi up --stack ${fleet.name}\n(or \`npm run up -- --stack ${fleet.name}\`; check first with \`npx fleet plan --fleet ${file}\`)\n`,
  );
  return 0;
}
