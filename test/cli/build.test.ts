/**
 * The compiled CLI (bin/build-cli.mjs, run by `npm install` / `npm ci` as `prepare`): dist/ is exactly what
 * the current sources compile to (a fresh build in a temp folder compared file by file, so CI fails on a stale
 * or hand-edited build), the comparison names each file that differs, and bin/fleet.mjs runs dist/ only while
 * it is current, the TypeScript sources through tsx otherwise. Real processes, real esbuild builds.
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const BUILD = join(ROOT, "bin/build-cli.mjs");
const temps: string[] = [];
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

function temp(): string {
  const d = mkdtempSync(join(tmpdir(), "fleet-build-test-"));
  temps.push(d);
  return d;
}

function node(args: string[], cwd = ROOT): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd, encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("dist/, the compiled fleet CLI", () => {
  it("is exactly what the current sources compile to (run npm run build after changing a source)", () => {
    const r = node([BUILD, "--check"]);
    expect(r.stdout + r.stderr).toBe(`build: dist/ matches the sources (${readdirSync(join(ROOT, "dist")).length} files)\n`);
    expect(r.status).toBe(0);
  });

  it("a check names each file that differs from, is missing from or is extra to a fresh build", () => {
    const out = join(temp(), "out");
    const built = node([BUILD, "--out", out]);
    expect(built.stdout).toBe(`build: ${out}/ holds the compiled fleet CLI (${readdirSync(out).length} files)\n`);
    expect(node([BUILD, "--check", out]).status).toBe(0);
    appendFileSync(join(out, "fleet.js"), "\n");
    rmSync(join(out, "inputs.json"));
    writeFileSync(join(out, "stray.js"), "");
    const r = node([BUILD, "--check", out]);
    expect(r.stdout).toBe(
      [
        `build: ${out}/ does not match the sources; run npm run build`,
        "  fleet.js: differs from what the sources compile to",
        "  inputs.json: missing (the sources compile to it)",
        "  stray.js: extra (the sources do not compile to it)",
        "",
      ].join("\n"),
    );
    expect(r.status).toBe(1);
  });

  it("prints the same usage as the sources run through tsx", () => {
    for (const argv of [["--help"], ["task", "--help"], ["queue", "--help"]]) {
      const compiled = node([join(ROOT, "bin/fleet.mjs"), ...argv]);
      const sources = node(["--import", "tsx", join(ROOT, "cli/fleet.ts"), ...argv]);
      expect(compiled).toEqual(sources);
      expect(compiled.status).toBe(0);
    }
  });
});

describe("bin/fleet.mjs", () => {
  /**
   * A tree shaped like the repository around a copy of the real bin/fleet.mjs: dist/fleet.js and
   * cli/fleet.ts each print which one ran; node_modules is the repository's (tsx).
   */
  function tree(): string {
    const d = temp();
    mkdirSync(join(d, "bin"));
    mkdirSync(join(d, "dist"));
    mkdirSync(join(d, "cli"));
    copyFileSync(join(ROOT, "bin/fleet.mjs"), join(d, "bin/fleet.mjs"));
    symlinkSync(join(ROOT, "node_modules"), join(d, "node_modules"));
    writeFileSync(join(d, "package.json"), '{ "type": "module" }\n');
    writeFileSync(join(d, "dist/fleet.js"), 'export function runCli() { console.log("compiled", process.argv.slice(2).join(" ")); }\n');
    writeFileSync(join(d, "dist/inputs.json"), '["cli/fleet.ts"]\n');
    writeFileSync(join(d, "cli/fleet.ts"), 'export function runCli(): void { console.log("sources", process.argv.slice(2).join(" ")); }\n');
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(d, "cli/fleet.ts"), past, past);
    return d;
  }
  const run = (d: string) => node([join(d, "bin/fleet.mjs"), "task", "status"], d).stdout;

  it("runs dist/fleet.js when no source it lists is newer", () => {
    expect(run(tree())).toBe("compiled task status\n");
  });

  it("runs the sources through tsx when one of them changed after the build", () => {
    const d = tree();
    const future = new Date(Date.now() + 60_000);
    utimesSync(join(d, "cli/fleet.ts"), future, future);
    expect(run(d)).toBe("sources task status\n");
  });

  it("runs the sources through tsx when dist/ is not built, or lists a source that is gone", () => {
    const d = tree();
    writeFileSync(join(d, "dist/inputs.json"), '["cli/fleet.ts", "cli/gone.ts"]\n');
    expect(run(d)).toBe("sources task status\n");
    rmSync(join(d, "dist"), { recursive: true });
    expect(run(d)).toBe("sources task status\n");
  });
});
