/**
 * Every PowerShell script fleetkit renders for a Windows host (target `windows-host`), parsed by a real
 * PowerShell grammar (tree-sitter-powershell through web-tree-sitter; pwsh itself is not installable
 * here): no syntax errors, and native programs only ever receive their arguments as one array.
 */
import { describe, expect, it, beforeAll } from "vitest";
import { Language, Parser } from "web-tree-sitter";
import { readTemplate } from "../../roles/bundle.js";
import { WINDOWS_COMMANDS } from "./windows-commands.js";

let parser: Parser;
beforeAll(async () => {
  await Parser.init();
  const wasm = new URL("../../node_modules/tree-sitter-powershell/tree-sitter-powershell.wasm", import.meta.url);
  parser = new Parser();
  parser.setLanguage(await Language.load(wasm.pathname));
});

/** Syntax problems as `line:col text` (ERROR nodes and nodes the parser had to invent). */
function syntaxErrors(source: string): string[] {
  const tree = parser.parse(source)!;
  const out: string[] = [];
  const walk = (n: NonNullable<typeof tree>["rootNode"]) => {
    if (n.type === "ERROR" || n.isMissing) out.push(`${n.startPosition.row + 1}:${n.startPosition.column + 1} ${n.isMissing ? `missing ${n.type}` : n.text.slice(0, 60)}`);
    for (const c of n.children) if (c) walk(c);
  };
  walk(tree.rootNode);
  return out;
}

const windowsScripts = WINDOWS_COMMANDS.filter((c) => c.target === "windows-host").map((c) => [c.what, c.script, c.line] as const);

describe("Windows host PowerShell", () => {
  it("there are Windows host scripts to check (both Windows nodes of the mesh)", () => {
    expect(windowsScripts.map(([name]) => name)).toEqual([
      "windows-desktop/tailscale install", "windows-desktop/tailscale uninstall",
      "windows-laptop/tailscale install", "windows-laptop/tailscale uninstall",
    ]);
  });

  it.each(windowsScripts)("%s parses without syntax errors", (_, script) => {
    expect(syntaxErrors(script)).toEqual([]);
  });

  it("the parser does catch a broken script (negative control)", () => {
    expect(syntaxErrors(readTemplate("wsl/prelude.ps1").replace("function Fk-Log([string]$Message) {", "function Fk-Log([string]$Message) {{"))).not.toEqual([]);
  });

  it.each(windowsScripts)("%s: Fk-Run/Fk-Capture always pass native arguments as one @(...) array", (_, script) => {
    const calls = script.split("\n").flatMap((l) => [...l.matchAll(/Fk-(?:Run|Capture) (\S+) (\S+)/g)].map((m) => [m[1], m[2]]));
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.filter(([exe, first]) => exe !== "EXE" && !first.startsWith("@("))).toEqual([]);
  });

  // cmd.exe, OpenSSH's default DefaultShell, takes at most 8,191 characters (test/roles/wsl.test.ts checks
  // every Windows command line's shape and content).
  it.each(windowsScripts)("%s: the SSH command fits a cmd.exe command line", (_, __, command) => {
    expect(command.startsWith('powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "iex ')).toBe(true);
    expect(command.length).toBeLessThanOrEqual(8191);
  });
});
