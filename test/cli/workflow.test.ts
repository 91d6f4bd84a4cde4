// @needs shellcheck
/**
 * `.github/workflows/drift.yml` passes a real workflow linter (@action-validator/core: GitHub's workflow
 * JSON Schema, compiled to WebAssembly; actionlint is not packaged for Debian bookworm), its `run:` blocks
 * pass shellcheck as the bash GitHub runs them with, and it does what the issue asks.
 */
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { validateWorkflow } from "@action-validator/core";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";

const text = readFileSync(new URL("../../.github/workflows/drift.yml", import.meta.url), "utf8");
type Step = { name?: string; uses?: string; run?: string; with?: Record<string, string>; env?: Record<string, string>; if?: string; id?: string };
const wf = parse(text) as { on: Record<string, unknown>; jobs: Record<string, { steps: Step[] }> };
const steps = wf.jobs.drift.steps;

describe("drift.yml", () => {
  it("is a valid workflow for the linter, which does reject a broken one", () => {
    expect(validateWorkflow(text).errors).toEqual([]);
    const broken = text.replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04");
    expect(validateWorkflow(broken).errors.length).toBeGreaterThan(0);
  });

  it.each(steps.filter((s) => s.run).map((s) => [s.name ?? s.run!.slice(0, 30), s.run!]))("run block %j passes shellcheck", (_name, run) => {
    // GitHub runs `run:` with `bash -e {0}`; expressions are substituted before, so stand in a word for them.
    const script = `#!/bin/bash\nset -e\n${run.replace(/\$\{\{[^}]*\}\}/g, "EXPR")}`;
    const r = spawnSync("shellcheck", ["-s", "bash", "-"], { input: script, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
  });

  it("runs on a schedule and on pull requests: install, test, plan, tailnet, drift --json, upload, fail on drift", () => {
    expect(Object.keys(wf.on)).toEqual(expect.arrayContaining(["schedule", "pull_request"]));
    const order = (pred: (s: Step) => boolean) => steps.findIndex(pred);
    const install = order((s) => s.run === "npm ci --no-audit --no-fund");
    const test = order((s) => s.run === "npm test");
    const plan = order((s) => /npx fleet plan/.test(s.run ?? ""));
    const tailnet = order((s) => s.uses?.startsWith("tailscale/github-action@") ?? false);
    const drift = order((s) => /npx fleet drift .*--json/.test(s.run ?? ""));
    const upload = order((s) => s.uses?.startsWith("actions/upload-artifact@") ?? false);
    const fail = order((s) => s.if === "steps.drift.outputs.exit-code != '0'");
    expect([install, test, plan, tailnet, drift, upload, fail].every((i, k, all) => i >= 0 && (k === 0 || i > all[k - 1]))).toBe(true);
    expect(steps[tailnet].with?.authkey).toBe("${{ secrets.TS_AUTHKEY }}");
    expect(steps[drift].env?.PULUMI_CONFIG_PASSPHRASE).toBe("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
    expect(steps[upload].if).toBe("always()");
    // No secret is ever placed in a command line: they reach steps only as env or action inputs.
    for (const s of steps) expect(s.run ?? "").not.toMatch(/secrets\./);
  });
});
