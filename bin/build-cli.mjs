#!/usr/bin/env node
/**
 * `npm run build` (also `prepare`, so `npm install` / `npm ci` run it): compiles the `fleet` CLI
 * (cli/fleet.ts and everything it imports, verbs included) to JavaScript in `dist/` (git-ignored), which
 * bin/fleet.mjs runs instead of compiling TypeScript through tsx on every call.
 *
 * One esbuild bundle in ES module format with code splitting: `dist/fleet.js` holds the dispatcher, each
 * verb's lazy `import()` becomes its own chunk (`dist/<name>-<content hash>.js`), so `fleet --help` loads
 * no verb. npm packages stay imports (`packages: "external"`), resolved from the repository's node_modules.
 * Every output file sits directly in `dist/`, one folder below the repository root like the sources
 * (cli/, model/, roles/, runtime/): a module's `new URL("../templates/", import.meta.url)` names the same
 * file from `dist/x.js` as from `roles/x.ts` (the reason `chunkNames` keeps chunks flat).
 *
 * Deterministic: the same sources and esbuild version give the same files byte for byte (no timestamps, no
 * absolute paths; test/cli/build.test.ts rebuilds into a temp folder and compares). Besides the bundle,
 * `dist/inputs.json` lists the source files (repository-relative, sorted): bin/fleet.mjs runs the bundle only
 * while none of them is newer than it. The build happens in a sibling temp folder renamed onto `dist/` at the
 * end, so an interrupted build leaves the previous one (or none), never half of one.
 *
 * `node bin/build-cli.mjs [--out DIR]` builds into DIR (default dist/; replaced whole). `--check [DIR]`
 * rebuilds into a temp folder and compares it with DIR (default dist/) file by file: exit 0 when they are the
 * same, else 1 with one line per file that differs, is missing or is extra (test/cli/build.test.ts, so CI
 * fails on a stale or hand-edited build). A source that does not compile prints esbuild's located errors and
 * exits 1.
 */
import { build } from "esbuild";
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/** The repository root (this file is bin/build-cli.mjs). */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Where `npm install` builds the CLI; bin/fleet.mjs runs `${DIST}/fleet.js`. */
export const DIST = join(ROOT, "dist");
/** The file listing the bundle's sources, relative to the output folder. */
export const INPUTS_FILE = "inputs.json";

/**
 * Compiles cli/fleet.ts into `outdir` (created; must not exist or be empty). Returns the written files'
 * names relative to `outdir`, sorted. Throws esbuild's error (with its located messages, already printed on
 * stderr) when a source does not compile.
 * @param {string} outdir absolute path
 * @param {number} [stampMs] time (ms since the epoch) given to `fleet.js` as its mtime: the start of the
 *   build, so a source saved while it ran counts as newer than the bundle
 * @returns {Promise<string[]>}
 */
export async function buildCli(outdir, stampMs = Date.now()) {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { fleet: "cli/fleet.ts" },
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    chunkNames: "[name]-[hash]",
    metafile: true,
    legalComments: "none",
    logLevel: "warning",
  });
  const inputs = Object.keys(result.metafile.inputs).sort();
  writeFileSync(join(outdir, INPUTS_FILE), `${JSON.stringify(inputs, null, 1)}\n`);
  const stamp = new Date(stampMs);
  utimesSync(join(outdir, "fleet.js"), stamp, stamp);
  return [...Object.keys(result.metafile.outputs).map((f) => relative(outdir, join(ROOT, f))), INPUTS_FILE].sort();
}

/** `dir` as messages name it: relative to the working directory when inside it, else absolute. */
function shown(dir) {
  const rel = relative(process.cwd(), dir);
  return rel === "" ? "." : rel.startsWith("..") ? dir : rel;
}

/** Builds into a temp folder beside `out`, then replaces `out` with it. */
async function buildInto(out) {
  const start = Date.now();
  const tmp = mkdtempSync(join(dirname(out), ".dist-"));
  try {
    const files = await buildCli(tmp, start);
    rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    return `build: ${shown(out)}/ holds the compiled fleet CLI (${files.length} files)`;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Rebuilds into a temp folder and compares with `dir`: the problems, one line per file (sorted by name), or
 * none when `dir` holds exactly what the sources compile to.
 * @param {string} dir
 * @returns {Promise<string[]>}
 */
async function compareWith(dir) {
  if (!existsSync(dir)) return [`${dir} does not exist`];
  const tmp = mkdtempSync(join(tmpdir(), "fleet-build-check-"));
  try {
    const fresh = await buildCli(tmp);
    const have = readdirSync(dir).sort();
    const names = [...new Set([...fresh, ...have])].sort();
    return names.flatMap((f) => {
      if (!have.includes(f)) return [`${f}: missing (the sources compile to it)`];
      if (!fresh.includes(f)) return [`${f}: extra (the sources do not compile to it)`];
      return readFileSync(join(tmp, f)).equals(readFileSync(join(dir, f))) ? [] : [`${f}: differs from what the sources compile to`];
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main() {
  let args;
  try {
    args = parseArgs({ options: { out: { type: "string" }, check: { type: "boolean" } }, allowPositionals: true, strict: true });
    if (args.positionals.length > (args.values.check ? 1 : 0)) throw new Error(`unexpected argument "${args.positionals.at(-1)}"`);
  } catch (err) {
    process.stderr.write(`build: ${err.message.split(". ")[0]}\nusage: node bin/build-cli.mjs [--out DIR] | --check [DIR]\n`);
    return 2;
  }
  try {
    if (args.values.check) {
      const dir = resolve(args.positionals[0] ?? DIST);
      const problems = await compareWith(dir);
      const name = shown(dir);
      if (problems.length === 0) {
        process.stdout.write(`build: ${name}/ matches the sources (${readdirSync(dir).length} files)\n`);
        return 0;
      }
      process.stdout.write(`build: ${name}/ does not match the sources; run npm run build\n${problems.map((p) => `  ${p}\n`).join("")}`);
      return 1;
    }
    process.stdout.write(`${await buildInto(resolve(args.values.out ?? DIST))}\n`);
    return 0;
  } catch (err) {
    // esbuild has printed the located errors; anything else is one line.
    if (!(err && Array.isArray(err.errors))) process.stderr.write(`build: ${err?.message ?? err}\n`);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = await main();
