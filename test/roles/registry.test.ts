/**
 * The role registry (roles/registry.ts): one definition per role, each in its own folder, and the plan's
 * dependencies taken from what the definitions declare.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import { ROLE_NAMES, ROLE_SUPPORT } from "../../model/schema.js";
import { ROLES } from "../../roles/index.js";
import { roleDependencies } from "../../stacks/plan.js";
import { COMPONENTS } from "../../stacks/node.js";

describe("role registry", () => {
  it("has exactly the model's roles, in its order, each named after its key with the model's OS list", () => {
    expect(Object.keys(ROLES)).toEqual([...ROLE_NAMES]);
    expect(Object.entries(ROLES).filter(([k, d]) => d.name !== k || d.os !== ROLE_SUPPORT[k as keyof typeof ROLE_SUPPORT] || d.docs.length < 20)).toEqual([]);
    expect(Object.keys(COMPONENTS)).toEqual([...ROLE_NAMES]);
    // The roles whose components create Pulumi children besides the install command declare them.
    expect(Object.values(ROLES).filter((d) => d.children).map((d) => d.name)).toEqual(["tailscale", "iceccd", "toolchains", "ntfy"]);
  });

  it("each role is a folder under roles/ with index.ts and render.ts", () => {
    const folders = readdirSync("roles", { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    expect(folders).toEqual([...ROLE_NAMES].sort());
    expect(folders.filter((f) => !["index.ts", "render.ts"].every((x) => readdirSync(`roles/${f}`).includes(x)))).toEqual([]);
    // component.ts exactly where the role's component has Pulumi children of its own (the definition's `children`).
    expect(folders.filter((f) => readdirSync(`roles/${f}`).includes("component.ts"))).toEqual(Object.values(ROLES).filter((d) => d.children).map((d) => d.name).sort());
  });

  it("declared dependencies become the plan's: local ones when the node runs them, fleet ones on their holder", () => {
    const mesh = loadFleet("fleet.yaml");
    const node = (n: string) => mesh.nodes.find((x) => x.name === n)!;
    expect(
      [
        ["rpi1", "tailscale"],
        ["rpi1", "iceccd"],
        ["rpi1", "agentapi"],
        ["rpi1", "worker"],
        ["arch-orchestrator", "toolchains"],
        ["arch-orchestrator", "worker"],
        ["windows-desktop", "iceccd"],
      ].map(([n, r]) => [n, r, roleDependencies(mesh, node(n!), r as never)]),
    ).toEqual([
      ["rpi1", "tailscale", []],
      ["rpi1", "iceccd", ["rpi1-tailscale", "arch-orchestrator-icecc-scheduler"]],
      ["rpi1", "agentapi", ["rpi1-tailscale", "rpi1-claude"]],
      ["rpi1", "worker", ["rpi1-tailscale", "rpi1-claude", "arch-orchestrator-queue"]],
      ["arch-orchestrator", "toolchains", ["arch-orchestrator-tailscale", "arch-orchestrator-icecc-scheduler"]],
      ["arch-orchestrator", "worker", ["arch-orchestrator-tailscale", "arch-orchestrator-claude", "arch-orchestrator-queue"]],
      ["windows-desktop", "iceccd", ["windows-desktop-tailscale", "arch-orchestrator-icecc-scheduler"]],
    ]);
  });
});
