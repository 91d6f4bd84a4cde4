/**
 * The real fleet files the program tests run, and variants written to a temp folder (a node added, a role
 * removed) with the `yaml` package, so comments and layout of the rest stay as they are.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import type { RoleName } from "../../model/fleet.js";

/** The three real fleets: the nine-machine mesh and the two examples. */
export const REAL_FLEETS = ["fleet.yaml", "examples/remote-tasks.fleet.yaml", "examples/shared-fs-queue.fleet.yaml"] as const;

const dir = mkdtempSync(join(tmpdir(), "fleetkit-program-"));
let counter = 0;

/** Writes `text` to a new temp fleet file and returns its path. */
export function writeFleet(text: string): string {
  const path = join(dir, `fleet-${++counter}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** `file` with `yamlNode` (a YAML map text for one node) added under `nodes` as `name`. */
export function withNode(file: string, name: string, yamlNode: Record<string, unknown>): string {
  const doc = parseDocument(readFileSync(file, "utf8"));
  doc.setIn(["nodes", name], doc.createNode(yamlNode));
  return writeFleet(doc.toString());
}

/** `file` with a `people:` map (name → operator | viewer). */
export function withPeople(file: string, people: Record<string, "operator" | "viewer">): string {
  const doc = parseDocument(readFileSync(file, "utf8"));
  doc.set("people", doc.createNode(people));
  return writeFleet(doc.toString());
}

/** `file` with `role` taken off node `name`: its profile is replaced by the profile's roles minus `role`. */
export function withoutRole(file: string, name: string, role: RoleName): string {
  const doc = parseDocument(readFileSync(file, "utf8"));
  const profile = doc.getIn(["nodes", name, "profile"]) as string | undefined;
  const fromProfile = profile ? ((doc.getIn(["profiles", profile]) as { toJSON(): RoleName[] }).toJSON() ?? []) : [];
  const own = ((doc.getIn(["nodes", name, "roles"]) as { toJSON(): RoleName[] } | undefined)?.toJSON() ?? []) as RoleName[];
  const roles = [...new Set([...fromProfile, ...own])].filter((r) => r !== role);
  doc.deleteIn(["nodes", name, "profile"]);
  doc.setIn(["nodes", name, "roles"], doc.createNode(roles));
  return writeFleet(doc.toString());
}

/** A fleet.yaml of `n` nodes in the mix of the root fleet. */
export function generatedFleet(n: number): string {
  const lines = [
    `fleet: scale-${n}`,
    "tailnet: tail-scale.ts.net",
    "defaults:",
    "  user: fleet",
    "  budgetUsdPerSession: 5",
    "  claude: { version: 2.1.331 }",
    "profiles:",
    "  hub: [tailscale, claude, icecc-scheduler, iceccd, toolchains, ntfy, queue, worker]",
    "  builder: [tailscale, claude, iceccd, toolchains, worker]",
    "  pi: [tailscale, claude, agentapi, iceccd, worker]",
    "  mac: [tailscale, claude, iceccd, worker]",
    "nodes:",
    "  hub: { host: hub, os: arch, arch: x86_64, profile: hub, docker: true }",
    "  builder: { host: builder, os: debian, arch: aarch64, profile: builder }",
  ];
  const kinds = [
    (i: number) => `  pi${i}: { host: pi${i}, os: raspios, arch: aarch64, profile: pi }`,
    (i: number) => `  mac${i}: { host: mac${i}, os: macos, arch: x86_64, profile: mac }`,
  ];
  for (let i = 0; i < n - 2; i++) lines.push(kinds[i % kinds.length]!(i));
  return lines.join("\n") + "\n";
}
