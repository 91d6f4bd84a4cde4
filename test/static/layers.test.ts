/**
 * The layers point one way: `cli` (the `fleet` CLI, every verb) → `stacks` (the Pulumi program) → `roles` | `runtime` →
 * `model`. Every relative import (static, `export … from`, dynamic `import()` and `import("…")` types) of
 * every TypeScript file in those folders is read with TypeScript's own pre-processor
 * (`ts.preProcessFile`), resolved to the folder it lands in, and checked against the table below; a test
 * fails naming each file, line and arrow that goes the wrong way.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Layer → the layers its files may import (itself included). `bin/` starts the CLI: `cli/`, or `dist/`, the same compiled (bin/build-cli.mjs). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  model: ["model"],
  roles: ["roles", "model"],
  runtime: ["runtime", "model"],
  stacks: ["stacks", "roles", "model"],
  cli: ["cli", "stacks", "roles", "runtime", "model"],
  bin: ["bin", "cli", "dist"],
};

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts|mjs)$/.test(e.name) && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Every relative import of `file` as [line (1-based), specifier, layer it resolves into (top folder, or "." for the root)]. */
export function relativeImports(file: string): [number, string, string][] {
  const text = readFileSync(file, "utf8");
  const info = ts.preProcessFile(text, true, true);
  const lineOf = (pos: number) => text.slice(0, pos).split("\n").length;
  return [...info.importedFiles, ...info.referencedFiles]
    .filter((r) => r.fileName.startsWith("."))
    .map((r) => {
      const target = relative(ROOT, resolve(dirname(file), r.fileName));
      return [lineOf(r.pos), r.fileName, target.includes("/") ? target.split("/")[0]! : "."] as [number, string, string];
    });
}

/** Arrows from `layer`'s files that the table does not allow, as `file:line → specifier (layer)`. */
function violations(layer: string): string[] {
  const out: string[] = [];
  for (const file of sources(join(ROOT, layer))) {
    for (const [line, spec, into] of relativeImports(file)) {
      if (!MAY_IMPORT[layer]!.includes(into)) out.push(`${relative(ROOT, file)}:${line} → ${spec} (${into})`);
    }
  }
  return out;
}

describe("layers point one way: cli → stacks → roles | runtime → model", () => {
  it.each(Object.keys(MAY_IMPORT))("%s imports only what is below it", (layer) => {
    expect(violations(layer)).toEqual([]);
  });

  it("the check sees every kind of import and names the wrong arrows", () => {
    // A file of the model layer that reaches up three ways; read from a string placed where model files live.
    const text = [
      'import { x } from "../roles/bundle.js";',
      'export { y } from "../stacks/node.js";',
      'type F = import("../cli/plan.js").Plan;',
      'const z = await import("./grammar.js");',
      'import { readFileSync } from "node:fs";',
    ].join("\n");
    const info = ts.preProcessFile(text, true, true);
    const into = info.importedFiles.filter((r) => r.fileName.startsWith(".")).map((r) => relative(ROOT, resolve(join(ROOT, "model"), r.fileName)).split("/")[0]);
    expect(into).toEqual(["roles", "stacks", "cli", "model"]);
    expect(into.filter((l) => !MAY_IMPORT.model!.includes(l!))).toEqual(["roles", "stacks", "cli"]);
  });

  it("the model imports nothing of ours outside model/ (only Node built-ins and npm packages)", () => {
    const external = sources(join(ROOT, "model")).flatMap((f) => relativeImports(f).filter(([, , into]) => into !== "model"));
    expect(external).toEqual([]);
  });
});
