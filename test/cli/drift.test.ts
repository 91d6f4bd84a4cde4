/**
 * The state half of `fleet drift` (reading `pulumi preview --json`) and the exit-code rule. Preview
 * outputs below follow Pulumi's preview digest (`--json`: steps with op/urn, changeSummary, diagnostics).
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { driftExitCode, parsePreview, stateCheck, type NodeDrift, type StateCheck } from "../../cli/drift.js";

const URN = "urn:pulumi:agent-mesh::fleetkit::fleetkit:index:Fleet$fleetkit:role:Iceccd::rpi1-iceccd";
const digest = (steps: { op: string; urn: string }[], summary: Record<string, number>, diagnostics: { message: string; severity: string }[] = []) =>
  JSON.stringify({ config: {}, steps, duration: 1200000000, changeSummary: summary, diagnostics }, null, 4);

describe("parsePreview", () => {
  it.each<[string, string, string, number, StateCheck]>([
    ["no changes", digest([{ op: "same", urn: URN }], { same: 1 }), "", 0, { status: "clean", summary: "the stack matches the program (pulumi preview: no changes)", changes: [] }],
    [
      "refresh found a hand change (non-zero exit, same code as an error)",
      digest(
        [{ op: "refresh", urn: URN }, { op: "update", urn: URN }, { op: "same", urn: "urn:x" }],
        { update: 1, same: 1 },
        [{ message: "error: no changes were expected but changes were proposed\n", severity: "error" }],
      ),
      "",
      255,
      { status: "drift", summary: "the stack differs from the program: 1 to update", changes: [{ urn: URN, op: "update" }] },
    ],
    [
      "a real error with a JSON digest",
      digest([], {}, [{ message: "error: failed to dial rpi1:22: i/o timeout\nmore", severity: "error" }]),
      "",
      255,
      { status: "error", summary: "pulumi preview failed: error: failed to dial rpi1:22: i/o timeout", changes: [] },
    ],
    [
      "no JSON at all (no stack selected)",
      "",
      "error: no stack named 'agent-mesh' found\n",
      255,
      { status: "error", summary: "pulumi preview failed: error: no stack named 'agent-mesh' found", changes: [] },
    ],
    [
      "non-zero exit without changes or diagnostics",
      digest([{ op: "same", urn: URN }], { same: 1 }),
      "killed\n",
      137,
      { status: "error", summary: "pulumi preview exited 137 without proposing changes: killed", changes: [] },
    ],
  ])("%s", (_what, stdout, stderr, code, expected) => {
    expect(parsePreview(stdout, stderr, code)).toEqual(expected);
  });
});

describe("driftExitCode", () => {
  const clean: NodeDrift = { node: "a", checked: true, findings: [] };
  const drifted: NodeDrift = { node: "b", checked: true, findings: [{ node: "b", role: "iceccd", kind: "marker-missing" }] };
  const offline: NodeDrift = { node: "c", checked: false, reason: "offline", findings: [] };
  const state = (status: StateCheck["status"]): StateCheck => ({ status, summary: "", changes: [] });
  it.each<[string, NodeDrift[], StateCheck["status"], number]>([
    ["all clean, state skipped", [clean], "skipped", 0],
    ["all clean, state clean", [clean], "clean", 0],
    ["a drifted node", [clean, drifted], "clean", 1],
    ["drift in the state only", [clean], "drift", 1],
    ["drift wins over an offline node", [drifted, offline], "skipped", 1],
    ["an offline node", [clean, offline], "clean", 2],
    ["a failed preview", [clean], "error", 2],
  ])("%s → %i", (_what, live, s, code) => {
    expect(driftExitCode(live, state(s))).toBe(code);
  });
});

describe("stateCheck", () => {
  // The `pulumi` npm package's launcher is on PATH under npm/npx; without network it cannot fetch the CLI.
  const cliWorks = spawnSync("pulumi", ["version"], { encoding: "utf8", timeout: 120_000 }).status === 0;

  it("skips (auto) or fails (required) when the Pulumi CLI does not work here", async () => {
    if (cliWorks) {
      expect((await stateCheck("no-such-stack-fleetkit-test", "auto")).status).not.toBe("skipped");
      return;
    }
    expect(await stateCheck("agent-mesh", "auto")).toEqual({ status: "skipped", summary: "state check skipped: Pulumi CLI not installed", changes: [] });
    expect(await stateCheck("agent-mesh", "required")).toEqual({ status: "error", summary: "state check skipped: Pulumi CLI not installed (--state required)", changes: [] });
  });

  it("--state skip never runs it", async () => {
    expect(await stateCheck("agent-mesh", "skip")).toEqual({ status: "skipped", summary: "state check skipped (--state skip)", changes: [] });
  });
});
