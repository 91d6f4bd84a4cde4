/**
 * The static level's table: every artifact of every bundle of every real fleet (`fleet.yaml` and each
 * `examples/*.fleet.yaml`), found through `renderFleetBundles` — no list of roles or nodes, so a role that
 * lands in `roles/index.ts` is checked by the static level the moment it renders.
 */
import { readdirSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { loadFleetWithRoles } from "../../roles/sources.js";
import type { Fleet } from "../../model/fleet.js";
import { renderFleetBundles } from "../../roles/index.js";
import type { Bundle, BundleFile, ScriptTarget } from "../../roles/types.js";

/** The repository root (the fleets' paths are relative to it, as users pass them). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * What checks an artifact: `sh` (POSIX sh: install/uninstall of node and WSL bundles, shell files),
 * `powershell` (install/uninstall of Windows host bundles), or a {@link BundleFile} kind.
 */
export type ArtifactKind = "sh" | "powershell" | Exclude<BundleFile["kind"], "shell">;

/** One thing a real checker looks at, named by where it comes from. */
export interface Artifact {
  /** `fleet › node › role › what`: the name every finding and test title carries. */
  id: string;
  /** Fleet file, relative to the repository root (`fleet.yaml`, `examples/x.fleet.yaml`). */
  fleet: string;
  node: string;
  role: string;
  target: ScriptTarget;
  /** `install`, `uninstall`, or the file's absolute path on the node. */
  what: string;
  kind: ArtifactKind;
  content: string;
  /** The file's permission bits (files only). */
  mode?: number;
}

/** One rendered bundle with the fleet it came from. */
export interface FleetBundle {
  fleet: string;
  model: Fleet;
  bundle: Bundle;
}

/** The real fleets: `fleet.yaml` and every `examples/*.fleet.yaml`, sorted. */
export function realFleetFiles(): string[] {
  const examples = readdirSync(new URL("examples/", `file://${REPO_ROOT}`))
    .filter((f) => f.endsWith(".fleet.yaml"))
    .sort()
    .map((f) => `examples/${f}`);
  return ["fleet.yaml", ...examples];
}

/** Every bundle of every node of every real fleet, in fleet then node then role order. */
export async function realBundles(): Promise<FleetBundle[]> {
  const fleets = await Promise.all(realFleetFiles().map(async (fleet) => ({ fleet, model: await loadFleetWithRoles(`${REPO_ROOT}${fleet}`) })));
  return fleets.flatMap(({ fleet, model }) => [...renderFleetBundles(model).values()].flat().map((bundle) => ({ fleet, model, bundle })));
}

/**
 * Shell scripts an install script carries inside itself: a quoted heredoc fed to `base64 --decode` (the
 * queue and worker roles ship their runtime that way, as a gzip of `fk_put` calls the install sources).
 * Decoded (and gunzipped when gzip); binary payloads are left out, they are not scripts.
 */
export function embeddedScripts(script: string): string[] {
  const out: string[] = [];
  for (const m of script.matchAll(/base64 (?:--decode|-d)\b[^\n]*<<'(\w+)'\n([\s\S]*?)\n\1\n/g)) {
    let bytes = Buffer.from(m[2], "base64");
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
    if (!bytes.includes(0)) out.push(bytes.toString("utf8"));
  }
  return out;
}

/** The artifacts of one bundle: its two scripts (and scripts embedded in them), then its files. */
export function bundleArtifacts({ fleet, bundle: b }: FleetBundle): Artifact[] {
  const base = { fleet, node: b.node, role: b.role, target: b.target };
  const scriptKind: ArtifactKind = b.target === "windows-host" ? "powershell" : "sh";
  const id = (what: string) => `${fleet} › ${b.node} › ${b.role} › ${what}`;
  return [
    { ...base, id: id("install"), what: "install", kind: scriptKind, content: b.install },
    ...(scriptKind === "sh" ? embeddedScripts(b.install) : []).map((content, i): Artifact => ({ ...base, id: id(`install › embedded script ${i + 1}`), what: `install › embedded script ${i + 1}`, kind: "sh", content })),
    { ...base, id: id("uninstall"), what: "uninstall", kind: scriptKind, content: b.uninstall },
    ...b.files.map((f): Artifact => ({ ...base, id: id(f.path), what: f.path, kind: f.kind === "shell" ? "sh" : f.kind, content: f.content, mode: f.mode })),
  ];
}

/** Every artifact of every real fleet. */
export function realArtifacts(bundles: FleetBundle[]): Artifact[] {
  return bundles.flatMap(bundleArtifacts);
}
