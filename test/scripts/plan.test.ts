/**
 * `fleet plan` as users run it (`node bin/fleet.mjs plan …`, what `npm run plan` runs): the human output for a
 * real example fleet against a golden file (bundle hashes checked against planFleet, masked in the golden
 * so template edits do not churn it), `--json` equal to planFleet, and bad input exiting 2 with the
 * loader's one-line-per-problem message and no stack trace.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadFleet } from "../../stacks/model/load.js";
import { planFleet } from "../../stacks/plan.js";

const fleetCli = (...args: string[]) => {
  const r = spawnSync(process.execPath, ["bin/fleet.mjs", "plan", ...args], { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};
const HASH = /^( {2}\S+ +)([0-9a-f]{12})( {2})/gm;

describe("fleet plan", () => {
  it("prints the shared-fs-queue example as the golden file, with each role's bundle hash", () => {
    const file = "examples/shared-fs-queue.fleet.yaml";
    const run = fleetCli("--fleet", file);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: "" });
    expect(run.stdout.replace(HASH, "$1############$3")).toBe(readFileSync("test/scripts/fixtures/plan-shared-fs-queue.txt", "utf8"));
    const hashes = [...run.stdout.matchAll(HASH)].map((m) => m[2]);
    expect(hashes).toEqual(planFleet(loadFleet(file)).nodes.flatMap((n) => n.roles.map((r) => r.bundleHash.slice(0, 12))));
  });

  it("counts repeated resource types and lists only other roles' resources after 'after' (root fleet's queue)", () => {
    const run = fleetCli();
    const queue = run.stdout.split("\n").find((l) => l.startsWith("  queue "))!;
    expect(queue.replace(HASH, "$1############$3")).toBe(
      "  queue            ############  Queue + RandomPassword ×3 + Command  after arch-orchestrator-tailscale-install, arch-orchestrator-ntfy-token, " +
        "arch-orchestrator-queue-token, imac-queue-token, macbook1-queue-token, rpi1-queue-token, rpi2-queue-token, rpi3-queue-token",
    );
  });

  it("--json prints planFleet's plan for the root fleet: 9 nodes, 43 roles, 105 resources", () => {
    const run = fleetCli("--json");
    expect(run.status).toBe(0);
    const json = JSON.parse(run.stdout);
    expect(json).toEqual(JSON.parse(JSON.stringify(planFleet(loadFleet("fleet.yaml")))));
    expect(Object.keys(json)).toEqual(["fleet", "nodes"]);
    expect(Object.keys(json.nodes[0])).toEqual(["name", "os", "arch", "host", "roles"]);
    expect(Object.keys(json.nodes[0].roles[0])).toEqual(["role", "bundleHash", "resources"]);
    expect(Object.keys(json.nodes[0].roles[0].resources[0])).toEqual(["type", "name", "dependsOn"]);
    const roles = json.nodes.flatMap((n: { roles: { resources: unknown[] }[] }) => n.roles);
    expect([json.nodes.length, roles.length, roles.flatMap((r: { resources: unknown[] }) => r.resources).length]).toEqual([9, 43, 105]);
  });

  it.each([
    [
      "a misspelt OS and a missing section",
      "fleet: x\nnodes:\n  a: { host: a, os: raspbian, arch: x86_64, roles: [tailscale] }\n",
      'FILE:1:1 defaults: required field "defaults" is missing: add `defaults:` (a map)\n' +
        'FILE:3:21 nodes.a.os: expected one of macos|debian|raspios|arch|windows-wsl, got "raspbian" (did you mean raspios?)\n' +
        "2 problems in FILE; fix them and run again.\n",
    ],
  ])("refuses %s with exit 2 and every problem, no stack trace", (_what, text, expected) => {
    const file = join(mkdtempSync(join(tmpdir(), "fleet-plan-")), "fleet.yaml");
    writeFileSync(file, text);
    const run = fleetCli("--fleet", file);
    expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({ status: 2, stdout: "", stderr: expected.replaceAll("FILE", file) });
  });

  it("refuses an unknown option with exit 2 and the usage", () => {
    const run = fleetCli("--bogus");
    expect(run.status).toBe(2);
    expect(run.stderr.split("\n").slice(0, 2)).toEqual(["fleet plan: unknown option --bogus", "usage: fleet plan [--fleet FILE] [--json]"]);
  });
});
