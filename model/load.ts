/**
 * Reads `fleet.yaml`: YAML parsed with source positions (the `yaml` package), the shape validated with zod,
 * the cross-field rules checked, then resolved into the {@link Fleet} model. Every problem in the file is
 * reported in one go as `FILE:LINE:COL path: message`.
 *
 * The file is untrusted input, so every step is bounded before it runs: only a regular file of at most
 * {@link MAX_FLEET_FILE_BYTES} is read (a FIFO, `/dev/zero` or `/dev/urandom` is refused before a byte is
 * read), the text must be UTF-8, and the YAML document is checked for structure before it becomes
 * JavaScript values (nesting depth, alias expansion, duplicate keys, `__proto__` keys, the node count).
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { isUtf8 } from "node:buffer";
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, Parser, type CST, type Document, type Node } from "yaml";
import type { z } from "zod";
import { UserError } from "./errors.js";
import { fleetFileSchemaFor, MAX_NODES, MAX_ROLE_SOURCES, type FleetFile, type UserRoleSpec } from "./schema.js";
import { checkRules, rolesOf, type Problem } from "./rules.js";
import type { Fleet, FleetNode } from "./fleet.js";
import { didYouMean } from "./suggest.js";
import { describeValue, escapeText, quoteText, showName } from "./text.js";

/** Largest fleet file read, in bytes (1 MiB): a fleet of 1,000 nodes is about 100 KiB. */
export const MAX_FLEET_FILE_BYTES = 1024 * 1024;
/** Deepest nesting of YAML collections accepted (fleet.yaml itself nests five levels). */
export const MAX_YAML_DEPTH = 64;
/**
 * Most values aliases may add to the document (each `*alias` adds the size of what it names). The `yaml`
 * package's own guard (`maxAliasCount`) throws outside its parse errors and without a position.
 */
export const MAX_ALIAS_EXPANSION = 100_000;
/** Most problem lines one message prints; the summary line counts the rest. */
export const MAX_SHOWN_PROBLEMS = 20;

/** A problem placed in the file: 1-based line and column. */
export interface LocatedProblem {
  file: string;
  line: number;
  col: number;
  /** Dotted field path, e.g. `nodes.rpi1.os` (`(root)` for the top level). */
  field: string;
  message: string;
}

/**
 * Thrown for an invalid fleet file (exit code 2). `message` holds one line per problem, in file order,
 * followed by a hint; `problems` holds them structured.
 */
export class FleetError extends UserError {
  readonly problems: LocatedProblem[];
  constructor(problems: LocatedProblem[]) {
    const lines = problems.slice(0, MAX_SHOWN_PROBLEMS).map((p) => `${escapeText(p.file)}:${p.line}:${p.col} ${p.field}: ${p.message}`);
    const n = problems.length;
    const shown = n > MAX_SHOWN_PROBLEMS ? ` (the first ${MAX_SHOWN_PROBLEMS} above)` : "";
    const file = problems[0] ? escapeText(problems[0].file) : "fleet file";
    super(`${lines.join("\n")}\n${n} problem${n === 1 ? "" : "s"} in ${file}${shown}; fix ${n === 1 ? "it" : "them"} and run again.`, 2);
    this.name = "FleetError";
    this.problems = problems;
  }
}

type Path = (string | number)[];

/** Most path segments a field name shows (a path is only this long in a file nested to the limit). */
const SHOWN_SEGMENTS = 12;

function fieldName(path: Path): string {
  if (!path.length) return "(root)";
  const shown = path.slice(0, SHOWN_SEGMENTS).map((seg) => showName(String(seg)));
  return shown.join(".") + (path.length > SHOWN_SEGMENTS ? ".…" : "");
}

/** Each YAML map's pairs by key text, built on first use: one lookup per problem, not one scan. */
const pairIndex = new WeakMap<object, Map<string, unknown>>();

function pairFor(map: { items: unknown[] }, key: string): { key: unknown; value: unknown } | undefined {
  let index = pairIndex.get(map);
  if (!index) {
    index = new Map();
    for (const p of map.items) if (isPair(p) && isScalar(p.key) && !index.has(String(p.key.value))) index.set(String(p.key.value), p);
    pairIndex.set(map, index);
  }
  return index.get(key) as { key: unknown; value: unknown } | undefined;
}

/** Finds the YAML node for `path`, or the nearest ancestor that exists; `atKey` prefers the map key. */
function locate(doc: Document, path: Path, atKey: boolean): [number, number] | undefined {
  let node: unknown = doc.contents;
  let best: [number, number] | undefined = rangeOf(node);
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = pairFor(node, String(seg));
      if (!pair) break;
      const last = i === path.length - 1;
      if (last && atKey) return rangeOf(pair.key) ?? best;
      node = pair.value;
      best = rangeOf(node) ?? rangeOf(pair.key) ?? best;
    } else if (isSeq(node) && typeof seg === "number") {
      node = node.items[seg];
      best = rangeOf(node) ?? best;
    } else {
      break;
    }
  }
  return best;
}

function rangeOf(node: unknown): [number, number] | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? [range[0], range[1]] : undefined;
}

const describe = describeValue;

/** A required field that is absent: blame the map that should hold it, at its key. */
function missing(path: Path, expected: string): Problem {
  const field = String(path.at(-1));
  return { path: path.slice(0, -1), atKey: true, message: `required field "${field}" is missing: add \`${field}:\` (${expected})`, field: path };
}

/** One zod issue as the problems it stands for (unknown keys give one problem each). */
function issueProblems(issue: z.core.$ZodIssue, schema: z.ZodType): Problem[] {
  const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p));
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case "invalid_value": {
      const values = issue.values.map(String);
      if (input === undefined) return [missing(path, `one of ${values.join("|")}`)];
      return [{ path, message: `expected one of ${values.join("|")}, got ${describe(input)}${typeof input === "string" ? didYouMean(input, values) : ""}` }];
    }
    case "invalid_type": {
      const expected =
        issue.expected === "record" || issue.expected === "object" ? "a map" : issue.expected === "array" ? "a list" : issue.expected === "int" ? "an integer" : `a ${issue.expected}`;
      if (input === undefined) return [missing(path, expected)];
      return [{ path, message: `expected ${expected}, got ${describe(input)}` }];
    }
    case "unrecognized_keys": {
      const known = knownKeys(schema, path);
      return issue.keys.map((key) => ({
        path: [...path, key],
        atKey: true,
        message: `unknown field ${quoteText(key)}${didYouMean(key, known)}; allowed here: ${known.join(", ")}`,
      }));
    }
    case "invalid_key": {
      // The key's own grammar says what it expects (grammar.ts messages); zod's defaults start "Invalid"/"Too".
      const inner = issue.issues[0]?.message;
      const expected = inner && !/^(Invalid|Too)/.test(inner) ? inner : "a valid name";
      return [{ path, atKey: true, message: `invalid name ${describe(path.at(-1))}: expected ${expected}` }];
    }
    case "invalid_format":
      return [{ path, message: `expected ${issue.message.startsWith("Invalid") ? `a valid ${issue.format}` : issue.message}, got ${describe(input)}` }];
    case "too_small":
    case "too_big": {
      const cmp = issue.code === "too_small" ? (issue.inclusive ? "≥" : ">") : issue.inclusive ? "≤" : "<";
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      // A grammar (grammar.ts) names what it expects in its length check's message; zod's own starts "Too".
      const named = issue.origin === "string" && !/^Too (big|small)/.test(issue.message);
      const what = named
        ? `${issue.message} of at most ${bound} characters`
        : issue.origin === "string" ? `a text of length ${cmp} ${bound}` : issue.origin === "array" ? `a list of ${cmp} ${bound} items` : `a number ${cmp} ${bound}`;
      return [{ path, message: `expected ${what}, got ${describe(input)}` }];
    }
    default:
      return [{ path, message: `${issue.message}${input !== undefined ? `, got ${describe(input)}` : ""}` }];
  }
}

/** The keys the schema allows at an object path (for "did you mean" on unknown fields). */
function knownKeys(root: z.ZodType, path: Path): string[] {
  let schema: unknown = root;
  for (const seg of path) {
    schema = unwrap(schema);
    const def = (schema as { def?: { type?: string; shape?: Record<string, unknown>; valueType?: unknown } }).def;
    if (def?.type === "object" && def.shape) schema = Object.hasOwn(def.shape, seg) ? def.shape[String(seg)] : undefined;
    else if (def?.type === "record") schema = def.valueType;
    else return [];
  }
  const def = (unwrap(schema) as { def?: { shape?: Record<string, unknown> } }).def;
  return def?.shape ? Object.keys(def.shape) : [];
}

function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { type?: string; innerType?: unknown } };
  while (s?.def && ["default", "prefault", "optional", "nullable"].includes(s.def.type ?? "")) s = s.def.innerType as typeof s;
  return s;
}

/** What {@link parseFleet} is told besides the text. */
export interface ParseOptions {
  /**
   * The user roles the file's `roleSources:` bring (roles/sources.ts loads them). Undefined while the file
   * names role sources is an error: the caller must load them first (the CLI and the Pulumi program do).
   */
  userRoles?: readonly UserRoleSpec[];
}

/**
 * Parses and validates fleet YAML text. `file` is used only in messages.
 * @returns the resolved fleet.
 * @throws FleetError listing every problem (size, YAML syntax and structure, shape, cross-field rules),
 * exit code 2. Each stage runs only when the one before it found nothing, so a file too big, too deep or
 * with an alias bomb is reported alone, before any work proportional to what it would expand to.
 */
export function parseFleet(source: string, file: string, options: ParseOptions = {}): Fleet {
  const bytes = Buffer.byteLength(source, "utf8");
  if (bytes > MAX_FLEET_FILE_BYTES) throw new FleetError([tooBig(file, bytes)]);
  const lineCounter = new LineCounter();
  // uniqueKeys: false — the package's duplicate-key check compares each key with every earlier one (20,000
  // nodes took 9 s); checkStructure finds duplicates with a Set instead, with the same message.
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const at = (offset: number, field: string, message: string): LocatedProblem => {
    const pos = lineCounter.linePos(offset);
    return { file, line: pos.line, col: pos.col, field, message };
  };
  const place = (p: Problem): LocatedProblem => {
    const range = locate(doc, p.path, p.atKey ?? false);
    return at(range ? range[0] : 0, fieldName(p.field ?? p.path), p.message);
  };

  if (doc.errors.length > 0) {
    // The composer recurses per nesting level and reports its own stack overflow as parse errors, at a depth
    // that depends on the stack left: find the first collection nested too deep in the syntax tree instead.
    if (doc.errors.some((e) => /call stack/i.test(e.message))) {
      throw new FleetError([at(tooDeepOffset(source) ?? 0, "(yaml)", TOO_DEEP)]);
    }
    throw new FleetError(
      doc.errors.map((e) =>
        at(e.pos[0], "(yaml)", e.code === "MULTIPLE_DOCS" ? "a second YAML document starts here (a `---` line); a fleet file is one document" : e.message.split("\n")[0]),
      ),
    );
  }
  const structure = checkStructure(doc, at);
  if (structure.length > 0) throw new FleetError(sortProblems(structure));
  const data: unknown = doc.toJS({ maxAliasCount: -1 }); // bounded by checkStructure (MAX_ALIAS_EXPANSION)
  if (data === null || data === undefined) {
    throw new FleetError([{ file, line: 1, col: 1, field: "(root)", message: "the file is empty: expected a map with fleet, defaults and nodes (see examples/)" }]);
  }
  const userRoles = options.userRoles ?? [];
  const schema = fleetFileSchemaFor(userRoles);
  const parsed = schema.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue) => issueProblems(issue, schema)).map(place);
    throw new FleetError(sortProblems(problems));
  }
  if (parsed.data.roleSources.length > 0 && options.userRoles === undefined) {
    throw new FleetError([place({ path: ["roleSources"], atKey: true, message: "this fleet names user roles: read it with roles/sources.ts loadFleetWithRoles (the fleet CLI and the Pulumi program do)" })]);
  }
  const ruleProblems = checkRules(parsed.data, userRoles);
  if (ruleProblems.length > 0) throw new FleetError(sortProblems(ruleProblems.map(place)));
  return resolve(parsed.data, file, userRoles);
}

/** One `roleSources:` entry of a fleet file as written, with where it stands (for errors about it). */
export interface RoleSourceEntry {
  /** The path as written (relative to the fleet file unless absolute). */
  path: string;
  /** Its index in `roleSources:`. */
  index: number;
  /** Builds a located problem about this entry (`FILE:LINE:COL roleSources.N: message`). */
  problem: (message: string) => LocatedProblem;
}

/**
 * The `roleSources:` entries of fleet YAML text, read before validation (which needs the roles they bring).
 * Pure. Returns [] when the text does not parse or has no such list of strings: {@link parseFleet} then
 * reports whatever is wrong, located.
 */
export function roleSourceEntries(source: string, file: string): RoleSourceEntry[] {
  if (Buffer.byteLength(source, "utf8") > MAX_FLEET_FILE_BYTES) return [];
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0 || !isMap(doc.contents)) return [];
  const list = doc.get("roleSources", true);
  if (!isSeq(list) || list.items.length > MAX_ROLE_SOURCES) return [];
  const entries: RoleSourceEntry[] = [];
  list.items.forEach((item, index) => {
    if (!isScalar(item) || typeof item.value !== "string" || !item.range) return;
    const pos = lineCounter.linePos(item.range[0]);
    const field = `roleSources.${index}`;
    entries.push({ path: item.value, index, problem: (message) => ({ file, line: pos.line, col: pos.col, field, message }) });
  });
  return entries;
}

type At = (offset: number, field: string, message: string) => LocatedProblem;

const TOO_DEEP = `values nested more than ${MAX_YAML_DEPTH} levels deep (fleet.yaml nests 5); flatten this value`;

/**
 * Offset of the first collection nested {@link MAX_YAML_DEPTH} or more levels deep, found in the concrete
 * syntax tree (the `yaml` package's Parser keeps its own stack, so it does not overflow) with an explicit
 * stack of our own.
 */
function tooDeepOffset(source: string): number | undefined {
  const stack: [CST.Token | null | undefined, number][] = [];
  for (const token of new Parser().parse(source)) if (token.type === "document") stack.push([token.value, 0]);
  stack.reverse();
  while (stack.length) {
    const [token, depth] = stack.pop()!;
    if (!token || (token.type !== "block-map" && token.type !== "block-seq" && token.type !== "flow-collection")) continue;
    if (depth >= MAX_YAML_DEPTH) return token.offset;
    const children: [CST.Token | null | undefined, number][] = [];
    for (const item of token.items as CST.CollectionItem[]) children.push([item.key, depth + 1], [item.value, depth + 1]);
    stack.push(...children.reverse());
  }
  return undefined;
}

/**
 * What must hold before the document becomes JavaScript values, in one walk of the YAML nodes (aliases are
 * not followed, so the walk is linear in the file): at most {@link MAX_NODES} nodes; nesting at most
 * {@link MAX_YAML_DEPTH}; every alias names an anchor defined before it and outside itself, and all aliases
 * together add at most {@link MAX_ALIAS_EXPANSION} values; no key twice in a map; no `__proto__` key (zod's
 * records drop it without a word, and assigning it to a plain object replaces the object's prototype); no
 * list or map used as a key.
 */
function checkStructure(doc: Document, at: At): LocatedProblem[] {
  const problems: LocatedProblem[] = [];
  const root = doc.contents;
  if (isMap(root)) {
    const nodes = root.items.find((p) => isScalar(p.key) && p.key.value === "nodes");
    if (nodes && isMap(nodes.value) && nodes.value.items.length > MAX_NODES) {
      const n = nodes.value.items.length;
      return [at(offsetOf(nodes.key), "nodes", `${n} nodes; one fleet file declares at most ${MAX_NODES} (split the machines into several fleets, one fleet file and Pulumi stack each)`)];
    }
  }
  /** Anchor name → its node and the expanded size of its value (undefined while the walk is inside it). */
  const anchors = new Map<string, { node: unknown; size: number | undefined }>();
  let expanded = 0;
  let stop = false;
  const walk = (node: unknown, path: Path, depth: number): number => {
    if (stop || node === null || node === undefined) return 1;
    const field = fieldName(path);
    if (isAlias(node)) {
      const source = node.source;
      if (!anchors.has(source)) {
        problems.push(at(offsetOf(node), field, `alias *${showName(source)} has no anchor &${showName(source)} before it; define the anchor first or write the value out`));
        return 1;
      }
      const size = anchors.get(source)!.size;
      if (size === undefined) {
        problems.push(at(offsetOf(node), field, `alias *${showName(source)} is inside the value it names (a value cannot contain itself); write the value out`));
        return 1;
      }
      expanded += size;
      if (expanded > MAX_ALIAS_EXPANSION) {
        problems.push(at(offsetOf(node), field, `aliases expand the document past ${MAX_ALIAS_EXPANSION} values here (an alias bomb?); write the values out instead of aliasing them`));
        stop = true;
      }
      return size;
    }
    const anchor = (node as Node).anchor;
    if (anchor !== undefined) anchors.set(anchor, { node, size: undefined });
    let size = 1;
    if (isMap(node) || isSeq(node)) {
      if (depth >= MAX_YAML_DEPTH) {
        problems.push(at(offsetOf(node), field, TOO_DEEP));
        stop = true;
        return 1;
      }
      const seen = new Set<string>();
      node.items.forEach((item: unknown, i: number) => {
        if (stop) return;
        if (!isPair(item)) {
          size += walk(item, [...path, i], depth + 1);
          return;
        }
        let key: unknown = item.key;
        if (isAlias(key)) {
          size += walk(key, path, depth + 1);
          key = anchors.get(key.source)?.node ?? key; // `? *name`: the key is the anchored value
        }
        let name: string | undefined;
        if (isScalar(key)) name = key.value === null || key.value === undefined ? "" : String(key.value);
        else if (key !== null && !isAlias(key)) {
          problems.push(at(offsetOf(item.key), field, "a list or a map is used as a key here; keys are plain names"));
          return;
        }
        if (name !== undefined) {
          if (seen.has(name)) problems.push(at(offsetOf(item.key), "(yaml)", "a key appears twice in one map (node names and fields must be unique)"));
          seen.add(name);
          if (name === "__proto__") {
            problems.push(at(offsetOf(item.key), fieldName([...path, name]), `"__proto__" cannot be a name or field (JavaScript reads it as an object's prototype); rename it`));
          }
        }
        size += 1 + walk(item.value, name === undefined ? path : [...path, name], depth + 1);
      });
    }
    if (anchor !== undefined) anchors.set(anchor, { node, size });
    return size;
  };
  walk(root, [], 0);
  return problems;
}

function offsetOf(node: unknown): number {
  return rangeOf(node)?.[0] ?? 0;
}

function sortProblems(problems: LocatedProblem[]): LocatedProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
}

function tooBig(file: string, bytes: number | string): LocatedProblem {
  return {
    file,
    line: 1,
    col: 1,
    field: "(file)",
    message: `the fleet file is ${bytes} bytes; a fleet file is at most ${MAX_FLEET_FILE_BYTES} bytes (1 MiB; 1,000 nodes take about 100 KiB): is --fleet the right file?`,
  };
}

/** What kind of file system object a stat describes, for "not a regular file (…)". */
function kindOf(st: { isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * The text of a fleet file, read safely: opened without blocking (a FIFO with no writer would block an
 * ordinary open), refused unless it is a regular file, read to at most {@link MAX_FLEET_FILE_BYTES} + 1
 * bytes whatever its size claims (files under /proc claim 0), and decoded as UTF-8.
 * @throws FleetError (exit 2) at `FILE:1:1 (file)` when it cannot be opened, is a folder, a FIFO, a device
 * or a socket, is over the limit, or (at the first bad byte's line and column) is not UTF-8 text.
 */
export function readFleetText(file: string): string {
  const fail = (message: string, line = 1, col = 1): never => {
    throw new FleetError([{ file, line, col, field: "(file)", message }]);
  };
  const cannotRead = (why: string) => `cannot read the fleet file (${why}); pass an existing file with --fleet FILE or set fleetkit:fleetFile`;
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return fail(cannotRead(code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a folder" : (code ?? (err as Error).message)));
  }
  let buffer: Buffer;
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) return fail(cannotRead("it is a folder"));
    if (!st.isFile()) return fail(`the fleet file is ${kindOf(st)}, not a regular file; fleetkit reads fleet.yaml only from a regular file (pass one with --fleet FILE)`);
    if (st.size > MAX_FLEET_FILE_BYTES) return fail(tooBig(file, st.size).message);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > MAX_FLEET_FILE_BYTES) return fail(tooBig(file, `over ${MAX_FLEET_FILE_BYTES}`).message);
    }
    buffer = Buffer.concat(chunks, total);
  } catch (err) {
    if (err instanceof FleetError) throw err;
    return fail(cannotRead((err as NodeJS.ErrnoException).code ?? (err as Error).message));
  } finally {
    closeSync(fd);
  }
  const text = buffer.toString("utf8");
  if (!isUtf8(buffer)) {
    // The first replacement character is where decoding failed (unless the file wrote U+FFFD itself first).
    const before = text.slice(0, Math.max(0, text.indexOf("\ufffd")));
    const line = before.split("\n").length;
    const col = before.length - before.lastIndexOf("\n");
    return fail("the fleet file is not UTF-8 text (a binary file?); save it as UTF-8", line, col);
  }
  return text;
}

/**
 * Reads and validates a fleet file from disk ({@link readFleetText}, then {@link parseFleet}).
 * @throws FleetError when the file cannot be read or is invalid (exit code 2).
 */
export function loadFleet(file: string): Fleet {
  return parseFleet(readFleetText(file), file);
}

function resolve(file: FleetFile, path: string, userRoles: readonly UserRoleSpec[]): Fleet {
  const d = file.defaults;
  const nodes: FleetNode[] = Object.entries(file.nodes).map(([name, n]) => {
    const roles = rolesOf(file, n, userRoles);
    const node: FleetNode = {
      name,
      host: n.host,
      os: n.os,
      arch: n.arch,
      user: n.user ?? d.user,
      sshPort: n.sshPort ?? d.sshPort,
      sshKeyPath: d.sshKeyPath,
      roles,
      docker: n.docker ?? false,
      builder: (n.builder ?? false) || roles.includes("toolchains"),
      tags: { ...(n.tags ?? {}) },
      perDialTimeoutSeconds: d.perDialTimeoutSeconds,
      dialErrorLimit: d.dialErrorLimit,
    };
    if (n.bootstrapHost !== undefined) node.bootstrapHost = n.bootstrapHost;
    if (n.profile !== undefined) node.profile = n.profile;
    const budget = n.budgetUsdPerSession ?? d.budgetUsdPerSession;
    if (budget !== undefined) node.budgetUsdPerSession = budget;
    if (n.iceccMaxJobs !== undefined) node.iceccMaxJobs = n.iceccMaxJobs;
    if (n.wslDistro !== undefined) node.wslDistro = n.wslDistro;
    return node;
  });
  const fleet: Fleet = {
    name: file.fleet,
    file: path,
    services: file.services,
    artifacts: file.artifacts,
    profiles: file.profiles,
    people: Object.fromEntries(Object.entries(file.people).sort(([a], [b]) => a.localeCompare(b))),
    nodes,
  };
  if (file.tailnet !== undefined) fleet.tailnet = file.tailnet;
  if (d.claude !== undefined) fleet.claude = d.claude;
  if (userRoles.length > 0) fleet.userRoles = [...userRoles];
  return fleet;
}
