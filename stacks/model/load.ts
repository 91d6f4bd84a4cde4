/**
 * Reads `fleet.yaml`: YAML parsed with source positions (the `yaml` package), the shape validated with zod,
 * the cross-field rules checked, then resolved into the {@link Fleet} model. Every problem in the file is
 * reported in one go as `FILE:LINE:COL path: message`.
 */
import { readFileSync } from "node:fs";
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import type { z } from "zod";
import { UserError } from "../../scripts/errors.js";
import { fleetFileSchema, type FleetFile } from "./schema.js";
import { checkRules, rolesOf, type Problem } from "./rules.js";
import type { Fleet, FleetNode } from "./fleet.js";
import { didYouMean } from "./suggest.js";

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
    const lines = problems.map((p) => `${p.file}:${p.line}:${p.col} ${p.field}: ${p.message}`);
    const n = problems.length;
    super(`${lines.join("\n")}\n${n} problem${n === 1 ? "" : "s"} in ${problems[0]?.file ?? "fleet file"}; fix ${n === 1 ? "it" : "them"} and run again.`, 2);
    this.name = "FleetError";
    this.problems = problems;
  }
}

type Path = (string | number)[];

function fieldName(path: Path): string {
  return path.length ? path.join(".") : "(root)";
}

/** Finds the YAML node for `path`, or the nearest ancestor that exists; `atKey` prefers the map key. */
function locate(doc: Document, path: Path, atKey: boolean): [number, number] | undefined {
  let node: unknown = doc.contents;
  let best: [number, number] | undefined = rangeOf(node);
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
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

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return `"${value}"`;
  return `${typeof value} ${String(value)}`;
}

/** A required field that is absent: blame the map that should hold it, at its key. */
function missing(path: Path, expected: string): Problem {
  const field = String(path.at(-1));
  return { path: path.slice(0, -1), atKey: true, message: `required field "${field}" is missing: add \`${field}:\` (${expected})`, field: path };
}

/** One zod issue as the problems it stands for (unknown keys give one problem each). */
function issueProblems(issue: z.core.$ZodIssue): Problem[] {
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
      const known = knownKeys(path);
      return issue.keys.map((key) => ({
        path: [...path, key],
        atKey: true,
        message: `unknown field "${key}"${didYouMean(key, known)}; allowed here: ${known.join(", ")}`,
      }));
    }
    case "invalid_key": {
      const inner = issue.issues[0];
      const why = inner && inner.code === "invalid_format" ? "" : "";
      return [{ path, atKey: true, message: `invalid name ${describe(path.at(-1))}: expected a lower-case hostname label (a-z, 0-9, '-')${why}` }];
    }
    case "invalid_format":
      return [{ path, message: `expected ${issue.message.startsWith("Invalid") ? `a valid ${issue.format}` : issue.message}, got ${describe(input)}` }];
    case "too_small":
    case "too_big": {
      const cmp = issue.code === "too_small" ? (issue.inclusive ? "≥" : ">") : issue.inclusive ? "≤" : "<";
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const what = issue.origin === "string" ? `a text of length ${cmp} ${bound}` : issue.origin === "array" ? `a list of ${cmp} ${bound} items` : `a number ${cmp} ${bound}`;
      return [{ path, message: `expected ${what}, got ${describe(input)}` }];
    }
    default:
      return [{ path, message: `${issue.message}${input !== undefined ? `, got ${describe(input)}` : ""}` }];
  }
}

/** The keys the schema allows at an object path (for "did you mean" on unknown fields). */
function knownKeys(path: Path): string[] {
  let schema: unknown = fleetFileSchema;
  for (const seg of path) {
    schema = unwrap(schema);
    const def = (schema as { def?: { type?: string; shape?: Record<string, unknown>; valueType?: unknown } }).def;
    if (def?.type === "object" && def.shape) schema = def.shape[String(seg)];
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

/**
 * Parses and validates fleet YAML text. `file` is used only in messages.
 * @returns the resolved fleet.
 * @throws FleetError listing every problem (YAML syntax, shape, cross-field rules), exit code 2.
 */
export function parseFleet(source: string, file: string): Fleet {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const place = (p: Problem): LocatedProblem => {
    const range = locate(doc, p.path, p.atKey ?? false);
    const pos = lineCounter.linePos(range ? range[0] : 0);
    return { file, line: pos.line, col: pos.col, field: fieldName(p.field ?? p.path), message: p.message };
  };

  if (doc.errors.length > 0) {
    throw new FleetError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        const msg = e.code === "DUPLICATE_KEY" ? "a key appears twice in one map (node names and fields must be unique)" : e.message.split("\n")[0];
        return { file, line: pos.line, col: pos.col, field: "(yaml)", message: msg };
      }),
    );
  }
  const data = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) {
    throw new FleetError([{ file, line: 1, col: 1, field: "(root)", message: "the file is empty: expected a map with fleet, defaults and nodes (see examples/)" }]);
  }
  const parsed = fleetFileSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap(issueProblems).map(place);
    throw new FleetError(sortProblems(problems));
  }
  const ruleProblems = checkRules(parsed.data);
  if (ruleProblems.length > 0) throw new FleetError(sortProblems(ruleProblems.map(place)));
  return resolve(parsed.data, file);
}

function sortProblems(problems: LocatedProblem[]): LocatedProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
}

/**
 * Reads and validates a fleet file from disk.
 * @throws FleetError when the file cannot be read or is invalid (exit code 2).
 */
export function loadFleet(file: string): Fleet {
  let source: string;
  try {
    source = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a folder" : (err as Error).message;
    throw new FleetError([{ file, line: 1, col: 1, field: "(file)", message: `cannot read the fleet file (${why}); pass an existing file with --fleet FILE or set fleetkit:fleetFile` }]);
  }
  return parseFleet(source, file);
}

function resolve(file: FleetFile, path: string): Fleet {
  const d = file.defaults;
  const nodes: FleetNode[] = Object.entries(file.nodes).map(([name, n]) => {
    const roles = rolesOf(file, n);
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
    claude: d.claude,
    services: file.services,
    artifacts: file.artifacts,
    profiles: file.profiles,
    people: Object.fromEntries(Object.entries(file.people).sort(([a], [b]) => a.localeCompare(b))),
    nodes,
  };
  if (file.tailnet !== undefined) fleet.tailnet = file.tailnet;
  return fleet;
}
