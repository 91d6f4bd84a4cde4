/**
 * User roles: fleet.yaml's `roleSources:` names folders outside the package (relative to the fleet file),
 * each a role with the same {@link RoleDefinition} contract as the built-in ones (README "Writing a role").
 * This module finds the role folders, imports each one's `index.ts` (TypeScript, through whatever loader
 * runs fleetkit: tsx for the CLI, ts-node for `pulumi up`; the compiled CLI registers tsx for them, see
 * {@link loadTypeScript}), checks the contract, registers the definitions
 * (roles/registry.ts) and then validates the fleet with them, so every verb and the Pulumi program see one
 * fleet model with the user roles in it.
 *
 * A source folder with an `index.ts` is one role, named after the folder; any other folder holds role
 * folders (each subfolder with an `index.ts`, in name order). A role that breaks the contract — no render
 * function, an OS fleetkit does not know, a name a built-in role has, a dependency on a role nobody defines —
 * is a located error at the `roleSources:` entry that brought it, exit 2, like any fleet.yaml mistake.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Fleet } from "../model/fleet.js";
import { nodeName } from "../model/grammar.js";
import { FleetError, parseFleet, readFleetText, roleSourceEntries, type LocatedProblem, type RoleSourceEntry } from "../model/load.js";
import { OS_NAMES, type UserRoleSpec } from "../model/schema.js";
import { describeValue } from "../model/text.js";
import { isBuiltinRole, registerUserRole } from "./registry.js";
import type { RoleDefinition } from "./types.js";

/** Record tags the probe (cli/probe.ts) and the built-in roles' probes print; a user role's record must differ. */
const RESERVED_RECORDS: readonly string[] = ["fk-probe", "fk-probe-end", "marker", "file", "svc", "disk", "reach", "tailscale", "agentapi", "icecc", "queue"];

/** One user role found in a source folder, before its module is checked. */
interface FoundRole {
  name: string;
  dir: string;
  entry: RoleSourceEntry;
}

/**
 * Reads, validates and resolves a fleet file together with the user roles its `roleSources:` bring.
 * @throws FleetError (exit 2) for a bad fleet file or a user role that breaks the contract, located.
 */
export async function loadFleetWithRoles(file: string): Promise<Fleet> {
  return parseFleetWithRoles(readFleetText(file), file);
}

/**
 * {@link loadFleetWithRoles} for text already read (`file` locates messages and anchors relative role
 * sources). A fleet without `roleSources:` is parsed exactly as model/load.ts `parseFleet` does.
 */
export async function parseFleetWithRoles(source: string, file: string): Promise<Fleet> {
  const entries = roleSourceEntries(source, file);
  if (entries.length === 0) return parseFleet(source, file);
  const base = dirname(resolve(file));
  const problems: LocatedProblem[] = [];
  const found: FoundRole[] = [];
  for (const entry of entries) {
    const dir = isAbsolute(entry.path) ? entry.path : resolve(base, entry.path);
    const roles = roleFolders(dir);
    if (typeof roles === "string") problems.push(entry.problem(roles));
    else for (const r of roles) found.push({ name: basename(r), dir: r, entry });
  }
  const names = new Map<string, FoundRole>();
  for (const role of found) {
    const where = shown(base, role.dir);
    const first = names.get(role.name);
    if (!nodeName.safeParse(role.name).success) {
      problems.push(role.entry.problem(`role folder ${where}: a role's name is its folder's name, which must be a lower-case hostname label (a-z, 0-9, '-'); rename the folder`));
    } else if (isBuiltinRole(role.name)) {
      problems.push(role.entry.problem(`role folder ${where} has the name of the built-in role ${role.name}; rename the folder (user roles cannot replace built-in ones)`));
    } else if (first) {
      problems.push(role.entry.problem(`role folder ${where} has the same name as ${shown(base, first.dir)}; role names must be unique`));
    } else names.set(role.name, role);
  }
  const specs: UserRoleSpec[] = [];
  const known = new Set([...names.keys()]);
  for (const role of names.values()) {
    const loaded = await importRole(role.dir);
    const where = `${shown(base, role.dir)}/index.ts`;
    if (typeof loaded === "string") {
      problems.push(role.entry.problem(`${where}: ${loaded}`));
      continue;
    }
    const broken = contractProblems(loaded, role.name, known);
    if (broken.length > 0) {
      problems.push(...broken.map((b) => role.entry.problem(`${where}: ${b}`)));
      continue;
    }
    const def = loaded as RoleDefinition;
    registerUserRole(role.dir, def);
    specs.push({ name: def.name, os: def.os, source: role.dir, ...(def.settings ? { settings: def.settings } : {}) });
  }
  if (problems.length > 0) throw new FleetError(problems);
  return parseFleet(source, file, { userRoles: specs });
}

/** `dir` relative to the fleet file's folder when inside it, else absolute; for messages. */
function shown(base: string, dir: string): string {
  const rel = relative(base, dir);
  return rel === "" ? "." : rel.startsWith("..") || isAbsolute(rel) ? dir : `./${rel}`;
}

/** The role folders of one source: itself when it has an index.ts, else its subfolders that do; or why none. */
function roleFolders(dir: string): string[] | string {
  if (!existsSync(dir)) return `role source ${dir} does not exist; create it or fix the path (relative to the fleet file)`;
  if (!statSync(dir).isDirectory()) return `role source ${dir} is not a folder; name a role's folder or a folder of role folders`;
  if (existsSync(join(dir, "index.ts"))) return [dir];
  const subs = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, "index.ts")))
    .map((e) => join(dir, e.name))
    .sort();
  return subs.length ? subs : `role source ${dir} has no index.ts and no subfolder with one; a role is a folder with an index.ts exporting \`definition\``;
}

let typeScriptLoader: Promise<void> | undefined;
/**
 * Makes `import()` of a .ts file work here. Running from the sources (tsx, ts-node, vitest), this module is
 * itself TypeScript and the loader is there. Running compiled (dist/, bin/build-cli.mjs), nothing loads
 * TypeScript, so tsx's loader is registered once, on the first user role: fleets without roles never pay
 * for it. A user role's imports of fleetkit (`roles/bundle.js`…) then load those sources through tsx, a
 * second copy of the stateless helpers it uses beside the bundle's.
 */
function loadTypeScript(): Promise<void> {
  if (import.meta.url.endsWith(".ts")) return Promise.resolve();
  return (typeScriptLoader ??= import("tsx/esm/api").then(({ register }) => void register()));
}

/** Imports a role folder's index.ts and returns its `definition` (or default) export, or why it cannot. */
async function importRole(dir: string): Promise<unknown> {
  let mod: Record<string, unknown>;
  await loadTypeScript();
  try {
    mod = (await import(pathToFileURL(join(dir, "index.ts")).href)) as Record<string, unknown>;
  } catch (err) {
    const why = String((err as Error).message ?? err).split("\n")[0];
    // Outside an ES module package, tsx and ts-node load a .ts file as CommonJS, which `export` breaks.
    const hint = inModulePackage(dir) ? "" : `; a role is an ES module: put a package.json with {"type": "module"} in ${dirname(dir)} (or above)`;
    return `cannot be loaded: ${why}${hint}`;
  }
  const def = mod.definition ?? mod.default;
  return def === undefined ? "exports no `definition` (export const definition: RoleDefinition = { … })" : def;
}

/** Whether the nearest package.json above `dir` says `"type": "module"` (Node's rule for how .ts/.js load). */
function inModulePackage(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    const pkg = join(d, "package.json");
    if (existsSync(pkg)) {
      try {
        return (JSON.parse(readFileSync(pkg, "utf8")) as { type?: unknown }).type === "module";
      } catch {
        return false;
      }
    }
    if (dirname(d) === d) return false;
  }
}

/**
 * How `def` breaks the {@link RoleDefinition} contract for a user role in folder `name`, one phrase each;
 * [] = it keeps it. `known` holds the user roles' names (dependencies may name those or built-in roles).
 */
export function contractProblems(def: unknown, name: string, known: ReadonlySet<string>): string[] {
  if (typeof def !== "object" || def === null) return [`\`definition\` must be an object (a RoleDefinition), got ${describeValue(def)}`];
  const d = def as Record<string, unknown>;
  const problems: string[] = [];
  const fn = (key: string, what: string) => {
    if (d[key] !== undefined && typeof d[key] !== "function") problems.push(`definition.${key}: expected ${what}, got ${describeValue(d[key])}`);
  };
  if (d.name !== name) problems.push(`definition.name: expected ${describeValue(name)} (the folder's name), got ${describeValue(d.name)}`);
  if (typeof d.docs !== "string" || d.docs.trim() === "") problems.push(`definition.docs: expected one line saying what the role puts on a node, got ${describeValue(d.docs)}`);
  if (!Array.isArray(d.os) || d.os.length === 0 || d.os.some((o) => !(OS_NAMES as readonly unknown[]).includes(o))) {
    problems.push(`definition.os: expected a non-empty list of ${OS_NAMES.join("|")}, got ${describeValue(d.os)}`);
  }
  if (typeof d.render !== "function") problems.push(`definition.render: expected a function (fleet, node, settings) => RoleParts, got ${describeValue(d.render)}`);
  if (!Array.isArray(d.after)) problems.push(`definition.after: expected a list of { role, where: local|fleet } (may be empty), got ${describeValue(d.after)}`);
  else {
    d.after.forEach((dep: unknown, i) => {
      const x = dep as { role?: unknown; where?: unknown } | null;
      const role = x?.role;
      if (typeof role !== "string" || (!isBuiltinRole(role) && !known.has(role)) || role === name || (x?.where !== "local" && x?.where !== "fleet")) {
        problems.push(`definition.after[${i}]: expected { role: <a built-in or user role other than ${name}>, where: local|fleet }, got ${describeValue(dep)}`);
      }
    });
  }
  const settings = d.settings as { safeParse?: unknown; prefault?: unknown } | undefined;
  if (settings !== undefined && (typeof settings?.safeParse !== "function" || typeof settings?.prefault !== "function")) {
    problems.push(`definition.settings: expected a zod schema of services.${name}, got ${describeValue(d.settings)}`);
  }
  fn("listens", "a function (fleet, node, settings) => RoleListen[]");
  if (d.probe !== undefined) {
    const p = d.probe as Record<string, unknown> | null;
    const missing = ["script", "parse", "judge"].filter((k) => typeof p?.[k] !== "function");
    if (missing.length) problems.push(`definition.probe: expected { script, parse, judge } functions, missing ${missing.join(", ")}`);
    const tag = p?.record ?? name;
    if (RESERVED_RECORDS.includes(tag as string)) problems.push(`definition.probe.record: ${describeValue(tag)} is a record the probe itself prints; name the record after the role (the default)`);
  }
  if (d.children !== undefined) problems.push("definition.children: user roles are their install command only; remove `children`");
  return problems;
}
