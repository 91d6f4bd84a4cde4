// @needs shellcheck systemd-analyze python3
/**
 * The static level (DESIGN.md "How we know it works"): every artifact of every bundle of every real fleet,
 * all five OS families, through its real checker — shellcheck (scripts, shell files, scripts embedded in an
 * install), systemd-analyze verify, Python's plistlib, the yaml package with ntfy's documented keys,
 * JSON.parse, node --check, a PowerShell grammar — one test per (fleet, node, role, artifact), so a failure
 * names exactly the artifact and prints the checker's findings. Also per bundle: the install's last line is
 * fk_finish and, run by dash with the script's own prelude, prints `changed` then `unchanged`; files that
 * may hold secrets are 0600. The table comes from renderFleetBundles, so a new role is checked here as
 * soon as it renders. The checkers' own negative tests are in checkers.test.ts.
 */
import { basename, extname } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { embeddedScripts, realArtifacts, realBundles, type Artifact } from "./artifacts.js";
import { nodeCheck, plistCheck, powershellProblems, runFinish, shellcheck, systemdVerify, jsonProblems, yamlProblems, yamlTopLevelKeys, type Findings, type FinishRuns } from "./checkers.js";
import { placedFiles, secretModeProblem, secretRuleApplies, type PlacedFile } from "./placed-files.js";
import { appendedYamlKeys, isDocumentedNtfyKey } from "./ntfy-keys.js";

const bundles = await realBundles();
const artifacts = realArtifacts(bundles);
const ofKind = (kind: Artifact["kind"]) => artifacts.filter((a) => a.kind === kind).map((a) => [a.id, a] as const);

const sh = ofKind("sh");
const powershell = ofKind("powershell");
const units = ofKind("systemd");
const plists = ofKind("launchd");
const jsons = ofKind("json");
const yamls = ofKind("yaml");
const javascript = ofKind("text").filter(([, a]) => /\.[cm]?js$/.test(a.what));
const bundleRows = bundles.map((fb) => [`${fb.fleet} › ${fb.bundle.node} › ${fb.bundle.role}`, fb] as const);

// ntfy's server.yml = the rendered public part (a yaml bundle file) + the keys the install appends.
const ntfyConfigs = bundleRows
  .filter(([, fb]) => fb.bundle.role === "ntfy")
  .map(([id, fb]) => {
    const keys = [...fb.bundle.files.filter((f) => f.kind === "yaml").flatMap((f) => yamlTopLevelKeys(f.content)), ...appendedYamlKeys(fb.bundle.install)];
    return [id, keys] as const;
  });

const secretRows = bundleRows
  .filter(([, fb]) => fb.bundle.target !== "windows-host")
  .flatMap(([id, fb]) => [fb.bundle.install, ...embeddedScripts(fb.bundle.install)].flatMap(placedFiles).filter(secretRuleApplies).map((f) => [`${id} › ${f.path}`, f] as const));

let shellFindings: Findings;
let unitFindings: Findings;
let plistFindings: Findings;
let finishRuns: Map<string, FinishRuns>;
let jsFindings: Findings;

beforeAll(async () => {
  const shBundles = bundleRows.filter(([, fb]) => fb.bundle.target !== "windows-host");
  const finishing = Promise.all(shBundles.map(async ([id, fb]) => [id, await runFinish(fb.bundle.install)] as const));
  [shellFindings, unitFindings, plistFindings, jsFindings] = await Promise.all([
    shellcheck(sh.map(([, a]) => a)),
    systemdVerify(units.map(([, a]) => ({ ...a, unit: basename(a.what), group: `${a.fleet} › ${a.node}` }))),
    plistCheck(plists.map(([, a]) => ({ ...a, expectedLabel: basename(a.what, ".plist") }))),
    nodeCheck(javascript.map(([, a]) => ({ ...a, ext: extname(a.what) }))),
  ]);
  finishRuns = new Map(await finishing);
}, 300_000);

describe("static level: the table covers every real fleet", () => {
  it("spans all five OS families, every artifact kind, and every role the fleets give a node", () => {
    const families = new Set(bundles.map((fb) => fb.model.nodes.find((n) => n.name === fb.bundle.node)!.os));
    expect([...families].sort()).toEqual(["arch", "debian", "macos", "raspios", "windows-wsl"]);
    const kinds = new Set(artifacts.map((a) => a.kind));
    for (const k of ["sh", "powershell", "systemd", "launchd", "json", "yaml"] as const) expect(kinds).toContain(k);
    const rendered = new Set(bundles.map((fb) => `${fb.fleet}/${fb.bundle.node}/${fb.bundle.role}`));
    const declared = bundles.flatMap((fb) => fb.model.nodes.flatMap((n) => n.roles.map((r) => `${fb.fleet}/${n.name}/${r}`)));
    expect([...new Set(declared)].filter((d) => !rendered.has(d))).toEqual([]);
    expect(ntfyConfigs.length).toBeGreaterThan(0);
  });
});

describe("shell scripts: shellcheck -S warning (POSIX sh unless the script says otherwise)", () => {
  it.each(sh)("%s", (id) => {
    expect(shellFindings.get(id)).toEqual([]);
  });
});

describe("Windows host PowerShell: tree-sitter-powershell grammar parse (pwsh and PSScriptAnalyzer are not installable here; no lint)", () => {
  it.each(powershell)("%s", async (_, a) => {
    expect(await powershellProblems(a.content)).toEqual([]);
  });
});

describe("systemd units: systemd-analyze verify prints nothing (node's units in one root, Exec binaries stubbed)", () => {
  it.each(units)("%s", (id) => {
    expect(unitFindings.get(id)).toEqual([]);
  });
});

describe("launchd plists: plistlib parses them; Label = file name, ProgramArguments, RunAtLoad, KeepAlive", () => {
  it.each(plists)("%s", (id) => {
    expect(plistFindings.get(id)).toEqual([]);
  });
});

describe("config files parse", () => {
  it.each(jsons)("%s (JSON)", (_, a) => {
    expect(jsonProblems(a.content)).toEqual([]);
  });
  it.each(yamls)("%s (YAML, unique keys)", (_, a) => {
    expect(yamlProblems(a.content)).toEqual([]);
  });
  it.each(javascript)("%s (JavaScript: node --check)", (id) => {
    expect(jsFindings.get(id)).toEqual([]);
  });
  it.each(ntfyConfigs)("%s: every key of server.yml is one ntfy documents", (_, keys) => {
    expect(keys).toContain("auth-tokens"); // the appended secret part was found
    expect(keys.filter((k) => !isDocumentedNtfyKey(k))).toEqual([]);
  });
});

describe("every install ends by printing the fleetkit changed/unchanged line", () => {
  it.each(bundleRows)("%s", (id, { bundle: b }) => {
    if (b.target === "windows-host") {
      expect(b.install.trimEnd().split("\n").pop()).toBe(`Fk-Finish '${b.role}' '${b.hash}'`);
      expect(b.install).toMatch(/function Fk-Finish\(.*\n(?:.*\n)*?.*Write-Output "fleetkit: \$Role changed" \} else \{ Write-Output "fleetkit: \$Role unchanged" \}/);
      return;
    }
    // The script's own prelude and last line, run by dash: a new marker, then the same one again.
    const { lastLine, runs } = finishRuns.get(id)!;
    expect(lastLine).toMatch(new RegExp(`^fk_finish ${b.role} ${b.hash}( [a-z0-9._@+-]+)*$`));
    expect(runs.map((r) => [r.status, r.stdout])).toEqual([
      [0, `fleetkit: ${b.role} changed\n`],
      [0, `fleetkit: ${b.role} unchanged\n`],
    ]);
  });
});

describe("files that may hold secrets are 0600", () => {
  it.each(bundleRows.filter(([, fb]) => fb.bundle.target !== "windows-host"))("%s: the script places exactly its bundle files, with their modes and content", (_, { bundle: b }) => {
    const fromBundle = placedFiles(b.install).filter((f) => f.source === "bundle");
    expect(fromBundle.map((f) => [f.path, f.mode, f.content])).toEqual(b.files.map((f) => [f.path, f.mode, f.content]));
  });
  it.each(secretRows)("%s", (_, f: PlacedFile) => {
    expect(secretModeProblem(f)).toBeNull();
  });
});
