/**
 * How the worker runtime (`runtime/`) reaches a node: as its TypeScript sources plus a pinned npm install,
 * rendered into the `queue` and `worker` bundles (no build step, no generated artifact in git).
 *
 * For one entry module (`cli/queue.ts`, `cli/worker.ts`) the renderer ships:
 * - every repository file that entry reaches through static relative imports (`import … from "./x.js"`,
 *   `export … from`, side-effect imports; `.js` specifiers map to the `.ts` sources), read from this
 *   checkout, so a change to any of them changes the bundle hash and re-deploys the role;
 * - `fleet.mjs`, a small entry that registers tsx (the same loader `bin/fleet.mjs` uses) and runs the verb
 *   through the CLI's own dispatcher (cli/fleet.ts, shipped with the closure, `NODE_VERBS`);
 * - `package.json` naming exactly the npm packages those files import (plus `tsx` and the packages whose
 *   files the runtime serves, {@link RUNTIME_ASSET_PACKAGES}), at the versions this
 *   checkout's `package-lock.json` resolved, and a `package-lock.json` that is the subset of ours reachable
 *   from them (same resolved URLs and integrity hashes), so `npm ci --omit=dev` on the node installs
 *   byte-for-byte the dependency tree our tests ran against.
 *
 * Each role gets its own directory (`<binDir>/queue`, `<binDir>/worker`), so removing one role never breaks
 * the other on a node that runs both, and a worker (zod + tsx only) never builds better-sqlite3.
 *
 * Pure apart from reading repository files (like templates); results are cached per entry.
 */
import { readFileSync } from "node:fs";
import { posix } from "node:path";
import { gzipSync } from "node:zlib";
import type { FleetNode } from "../model/fleet.js";
import { Fragment, putFile, readTemplate } from "./bundle.js";
import { platformFor } from "./platform.js";
import type { BundleFile } from "./types.js";

const REPO = new URL("../", import.meta.url);

/** One file of a shipped runtime, path relative to the role's runtime directory. */
export interface RuntimeFile {
  /** Relative path, e.g. `cli/queue.ts` or `package.json`. */
  path: string;
  content: string;
  /** Permission bits on the node (default 0644; programs the runtime executes 0755). */
  mode?: number;
}

/**
 * Other CLI verbs a runtime package ships (cli/fleet.ts `NODE_VERBS`): the worker's carries `task`, which the
 * node's `fleet` command (roles/worker) runs for delegation from the node's shell and Claude sessions.
 */
export const RUNTIME_EXTRA_VERBS: Readonly<Record<"queue" | "worker", readonly string[]>> = { queue: [], worker: ["task"] };

/**
 * Files a runtime executes as programs instead of importing them, which no import scan finds: shipped beside
 * the sources, mode 0755 (the worker starts every run through `runtime/supervise.sh`, and the worker role's
 * sudoers rule names it).
 */
export const RUNTIME_PROGRAMS: Readonly<Record<"queue" | "worker", readonly string[]>> = { queue: [], worker: ["runtime/supervise.sh"] };

/**
 * npm packages a runtime serves files from instead of importing them, which no import scan finds either:
 * installed with the runtime's other packages. The queue's dashboard (runtime/dashboard.ts) serves htmx, its
 * SSE extension and uPlot (the charts) to browsers from these packages' `dist/` folders (no CDN).
 */
export const RUNTIME_ASSET_PACKAGES: Readonly<Record<"queue" | "worker", readonly string[]>> = { queue: ["htmx-ext-sse", "htmx.org", "uplot"], worker: [] };

/** A runtime package for one entry: files to place, the npm packages it needs and the Node.js it needs. */
export interface RuntimePackage {
  /** Sources, `fleet.mjs`, `package.json`, `package-lock.json`, in a fixed order (sorted paths). */
  files: RuntimeFile[];
  /** npm package name → exact version (the direct dependencies in package.json). */
  dependencies: Record<string, string>;
  /**
   * Lowest Node.js major version the direct dependencies accept: for each `engines.node` the smallest major
   * it names, then the largest of those (better-sqlite3 12 names `20.x || …`, so the queue needs 20).
   */
  minNodeMajor: number;
}

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  engines?: { node?: string } | string[];
  dev?: boolean;
  link?: boolean;
  [k: string]: unknown;
}

interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
}

const IMPORT_RE = /^\s*(?:import|export)\s(?:[^;'"]*?\sfrom\s+)?["']([^"']+)["']/gm;

/** Static import specifiers of a module's source (type-only imports included: harmless and small). */
export function staticImports(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT_RE)) out.push(m[1]!);
  return out;
}

/** npm package name of a bare specifier (`@scope/name/sub` → `@scope/name`), or undefined for builtins. */
function packageName(spec: string): string | undefined {
  if (spec.startsWith("node:") || spec.startsWith(".") || spec.startsWith("/")) return undefined;
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

function readRepo(rel: string): string {
  return readFileSync(new URL(rel, REPO), "utf8");
}

/**
 * The repository files `entries` reach through static relative imports, and the npm packages they import.
 * @throws Error naming the importing file when a relative import has no source file (a broken checkout).
 */
export function importClosure(entries: string[]): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [...entries];
  while (queue.length) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    let source: string;
    try {
      source = readRepo(file);
    } catch {
      throw new Error(`runtime packaging: ${file} does not exist (imported by the runtime entry set ${entries.join(", ")})`);
    }
    for (const spec of staticImports(source)) {
      const pkg = packageName(spec);
      if (pkg) {
        packages.add(pkg);
        continue;
      }
      if (!spec.startsWith(".")) continue;
      const target = posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, ".ts");
      queue.push(target);
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort() };
}

let lockCache: Lockfile | undefined;
function repoLock(): Lockfile {
  lockCache ??= JSON.parse(readRepo("package-lock.json")) as Lockfile;
  return lockCache;
}

/** Where npm would find `name` when required from the package installed at `from` (lockfile path). */
function resolveIn(lock: Lockfile, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = base ? `${base}/node_modules/${name}` : `node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (!base) return undefined;
    const i = base.lastIndexOf("/node_modules/");
    base = i < 0 ? "" : base.slice(0, i);
  }
}

/**
 * The subset of this checkout's package-lock.json that `roots` need: every package reachable through
 * dependencies, optionalDependencies and (installed) peerDependencies, entries copied unchanged.
 * @throws Error when a required dependency is missing from the lock (run `npm install`).
 */
export function lockSubset(roots: string[], name: string): { lock: Record<string, unknown>; dependencies: Record<string, string>; minNodeMajor: number } {
  const lock = repoLock();
  const picked = new Map<string, LockEntry>();
  const dependencies: Record<string, string> = {};
  const visit = (path: string) => {
    if (picked.has(path)) return;
    const entry = lock.packages[path]!;
    if (entry.dev) throw new Error(`runtime packaging: ${path} is a dev-only package in package-lock.json; add it to dependencies`);
    picked.set(path, entry);
    const optional = new Set([...Object.keys(entry.optionalDependencies ?? {}), ...Object.entries(entry.peerDependenciesMeta ?? {}).filter(([, m]) => m.optional).map(([k]) => k)]);
    for (const dep of [...Object.keys(entry.dependencies ?? {}), ...Object.keys(entry.optionalDependencies ?? {}), ...Object.keys(entry.peerDependencies ?? {})]) {
      const at = resolveIn(lock, path, dep);
      if (at) visit(at);
      else if (!optional.has(dep) && !(entry.peerDependencies && dep in entry.peerDependencies)) {
        throw new Error(`runtime packaging: ${dep} (needed by ${path}) is missing from package-lock.json; run npm install`);
      }
    }
  };
  for (const root of roots) {
    const path = `node_modules/${root}`;
    const entry = lock.packages[path];
    if (!entry?.version) throw new Error(`runtime packaging: the runtime imports ${root}, which package-lock.json does not list; npm install --save ${root}`);
    dependencies[root] = entry.version;
    visit(path);
  }
  // Only direct dependencies count: transitive `engines` are advisory and often ahead of reality (cookie 1.x
  // says >=22 while this repository's suite runs fastify on Node 20).
  let minNodeMajor = 0;
  for (const entry of roots.map((r) => lock.packages[`node_modules/${r}`]!)) {
    const range = !Array.isArray(entry.engines) ? entry.engines?.node : undefined;
    const majors = range ? [...range.matchAll(/(\d+)(?:\.[\dx*]+)*/g)].map((m) => Number(m[1])) : [];
    if (majors.length) minNodeMajor = Math.max(minNodeMajor, Math.min(...majors));
  }
  const packages: Record<string, unknown> = { "": { name, dependencies } };
  for (const path of [...picked.keys()].sort()) packages[path] = picked.get(path);
  return { lock: { name, lockfileVersion: 3, requires: true, packages }, dependencies, minNodeMajor };
}

const cache = new Map<string, RuntimePackage>();

/**
 * The runtime package for `verb` (`queue` or `worker`): the closure of `cli/<verb>.ts`, the entry
 * `fleet.mjs`, package.json and the lock subset. Cached; the same checkout gives the same bytes.
 * @param entryTemplate text of `fleet.mjs` (rendered by the caller from templates/).
 */
export function runtimePackage(verb: "queue" | "worker", entryTemplate: string): RuntimePackage {
  const key = `${verb}\0${entryTemplate}`;
  const hit = cache.get(key);
  if (hit) return hit;
  // The verb's module and the CLI dispatcher the entry (fleet.mjs) runs it through; the dispatcher's other
  // verbs are dynamic imports, which the closure does not follow: they are not shipped.
  const closure = importClosure([`cli/${verb}.ts`, "cli/fleet.ts", ...RUNTIME_EXTRA_VERBS[verb].map((v) => `cli/${v}.ts`)]);
  const roots = [...new Set([...closure.packages, ...RUNTIME_ASSET_PACKAGES[verb], "tsx"])].sort();
  const name = `fleetkit-${verb}`;
  const { lock, dependencies, minNodeMajor } = lockSubset(roots, name);
  const pkg = { name, private: true, type: "module", description: `fleetkit ${verb} runtime, rendered by the ${verb} role`, dependencies, allowScripts: { "better-sqlite3": true } };
  const files: RuntimeFile[] = [
    ...closure.files.map((path) => ({ path, content: ensureNewline(readRepo(path)) })),
    ...RUNTIME_PROGRAMS[verb].map((path) => ({ path, content: ensureNewline(readRepo(path)), mode: 0o755 })),
    { path: "fleet.mjs", content: ensureNewline(entryTemplate) },
    { path: "package.json", content: `${JSON.stringify(pkg, null, 2)}\n` },
    { path: "package-lock.json", content: `${JSON.stringify(lock, null, 2)}\n` },
  ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const result = { files, dependencies, minNodeMajor };
  cache.set(key, result);
  return result;
}

function ensureNewline(s: string): string {
  return s.endsWith("\n") ? s : `${s}\n`;
}

/** Payloads by package, then by directory and platform (see {@link runtimePayload}). */
const payloads = new WeakMap<RuntimePackage, Map<string, RuntimePayload>>();

/** Encoded payloads by their fk_put text (a handful per checkout: one per runtime, OS family and directory). */
const payloadCache = new Map<string, Fragment>();

/** The runtime package as the install script carries it: fk_put lines, gzip-compressed, base64 in 76-column lines. */
export interface RuntimePayload {
  /** Base64 (76-column lines) of the gzip of a sh fragment that places every runtime file with fk_put (root, 0644). */
  base64: Fragment;
  /** See {@link RuntimePackage.minNodeMajor}. */
  minNodeMajor: number;
  /** Absolute paths the fragment writes, sorted. */
  paths: string[];
}

/**
 * The {@link runtimePackage} of `verb` for `node`, ready to embed in an install script that unpacks it into
 * `dir`. gzip runs at level 9 with no name and mtime 0, so the same checkout gives the same bytes.
 */
export function runtimePayload(node: FleetNode, verb: "queue" | "worker", dir: string): RuntimePayload {
  const pkg = runtimePackage(verb, readTemplate("queue/fleet.mjs"));
  const platform = platformFor(node);
  // The payload depends on the package, the directory and the platform only: nodes of one platform share it,
  // without placing every file again for each (a tenth of a 500-node render, bench/program.bench.ts).
  const byPlace = payloads.get(pkg) ?? new Map<string, RuntimePayload>();
  payloads.set(pkg, byPlace);
  const place = `${dir}\0${JSON.stringify(platform)}`;
  const known = byPlace.get(place);
  if (known) return known;
  const files: BundleFile[] = pkg.files.map((f) => ({ path: `${dir}/${f.path}`, mode: f.mode ?? 0o644, owner: "root", kind: "text", content: f.content }));
  const script = `${files.map((f) => putFile(f, platform)).join("\n")}\n`;
  // Every node of one OS family unpacks the same text: gzip (most of a worker's render) runs once per text.
  let base64 = payloadCache.get(script);
  if (!base64) {
    base64 = Fragment.base64Lines(gzipSync(Buffer.from(script, "utf8"), { level: 9 }));
    payloadCache.set(script, base64);
  }
  const payload = { base64, minNodeMajor: pkg.minNodeMajor, paths: files.map((f) => f.path) };
  byPlace.set(place, payload);
  return payload;
}
