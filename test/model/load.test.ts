import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FleetError, loadFleet, parseFleet } from "../../model/load.js";
import { renderFleetBundles } from "../../roles/index.js";
import { BAD_CASES, VALID } from "./cases.js";

function problemsOf(text: string): string[] {
  try {
    parseFleet(text, "F");
  } catch (err) {
    expect(err).toBeInstanceOf(FleetError);
    expect((err as FleetError).exitCode).toBe(2);
    const lines = (err as FleetError).message.split("\n");
    const n = lines.length - 1;
    expect(lines[n]).toBe(`${n} problem${n === 1 ? "" : "s"} in F; fix ${n === 1 ? "it" : "them"} and run again.`);
    return lines.slice(0, n);
  }
  throw new Error("expected the fleet to be rejected");
}

describe("fleet model: bad input", () => {
  it("has at least 20 bad fleets", () => expect(BAD_CASES.length).toBeGreaterThanOrEqual(20));

  it.each(BAD_CASES)("$name", ({ edit, expected }) => {
    expect(problemsOf(edit(VALID))).toEqual(expected);
  });

  it("reports every problem of a file in one run, in file order", () => {
    const text = VALID.replace("os: raspios", "os: raspbian").replace("arch: x86_64", "arch: amd64").replace("budgetUsdPerSession: 5", "budgetUsdPerSession: -5");
    expect(problemsOf(text)).toEqual([
      "F:3:24 defaults.budgetUsdPerSession: expected a number > 0, got number -5",
      'F:12:11 nodes.hub.arch: expected one of x86_64|aarch64, got "amd64" (did you mean x86_64?)',
      'F:16:9 nodes.pi.os: expected one of macos|debian|raspios|arch|windows-wsl, got "raspbian" (did you mean raspios?)',
    ]);
  });

  it("names a missing file with the fix", () => {
    expect(() => loadFleet("/nonexistent/fleet.yaml")).toThrowError(
      "/nonexistent/fleet.yaml:1:1 (file): cannot read the fleet file (no such file); pass an existing file with --fleet FILE or set fleetkit:fleetFile",
    );
  });
});

describe("fleet model: the valid test fleet", () => {
  it("resolves defaults, profiles and canonical role order", () => {
    const fleet = parseFleet(VALID, "F");
    expect(fleet.nodes.map((n) => [n.name, n.user, n.sshPort, n.budgetUsdPerSession, n.roles])).toEqual([
      ["hub", "fleet", 22, 5, ["tailscale", "claude", "icecc-scheduler", "iceccd", "queue", "worker"]],
      ["pi", "fleet", 22, 5, ["tailscale", "claude", "iceccd", "worker"]],
    ]);
    expect(fleet.services).toEqual({
      ntfy: { port: 8091, topic: "fleet-tasks", image: "binwiederhier/ntfy:v2.14.0", allowFrom: ["fleet", "tailnet"] },
      queue: { port: 8787, allowFrom: [], retentionDays: 30 },
      agentapi: { port: 3284 },
    });
  });

  it("a fleet where no node runs claude needs no defaults.claude, renders and plans", () => {
    const text = "fleet: compile-only\ndefaults: {}\nnodes:\n  hub:\n    host: hub\n    os: debian\n    arch: x86_64\n    roles: [icecc-scheduler, iceccd]\n  box:\n    host: box\n    os: arch\n    arch: x86_64\n    roles: [iceccd]\n";
    const fleet = parseFleet(text, "F");
    expect(fleet.claude).toBeUndefined();
    expect(fleet.nodes.map((n) => [n.name, n.roles])).toEqual([["hub", ["icecc-scheduler", "iceccd"]], ["box", ["iceccd"]]]);
    expect([...renderFleetBundles(fleet).values()].flat().map((b) => `${b.node}/${b.role}`)).toEqual(["hub/icecc-scheduler", "hub/iceccd", "box/iceccd"]);
  });

  it("loads from disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "fleetkit-model-"));
    writeFileSync(join(dir, "fleet.yaml"), VALID);
    expect(loadFleet(join(dir, "fleet.yaml")).nodes).toHaveLength(2);
  });
});
