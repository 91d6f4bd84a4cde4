/**
 * Pulumi.yaml and the program as Pulumi's own Node.js harness sees them: the project file's settings, the
 * conditions under which @pulumi/pulumi/cmd/run/run.js picks its automatic ESM mode, and a real load of
 * stacks/index.ts through the ts-node hooks that mode registers (type-checked, as ts-node does by default).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { planFleet } from "../../stacks/plan.js";
import { loadFleet } from "../../model/load.js";

const require = createRequire(import.meta.url);

describe("Pulumi's Node.js harness", () => {
  it("reads Pulumi.yaml: project fleetkit, main stacks/index.ts, TypeScript on, local file state", () => {
    expect(parse(readFileSync("Pulumi.yaml", "utf8"))).toMatchObject({
      name: "fleetkit",
      main: "stacks/index.ts",
      runtime: { name: "nodejs", options: { typescript: true, packagemanager: "npm" } },
      backend: { url: "file://./.pulumi-state" },
    });
    expect(readFileSync(".gitignore", "utf8").split("\n")).toContain(".pulumi-state/");
  });

  it("meets run.js's conditions for its automatic ESM mode: type module, TypeScript >= 4.7 (< 7), ts-node/esm resolvable", () => {
    expect(JSON.parse(readFileSync("package.json", "utf8")).type).toBe("module");
    const [major, minor] = (require("typescript") as { version: string }).version.split(".").map(Number);
    expect(major > 4 || (major === 4 && minor >= 7)).toBe(true);
    expect(major).toBeLessThan(7);
    expect(require.resolve("ts-node/esm")).toMatch(/ts-node\/esm\.(m?js)$/);
  });

  it("loads and type-checks stacks/index.ts through Pulumi's ts-node hooks and registers the fleet", () => {
    const config = {
      "fleetkit:fleetFile": "examples/shared-fs-queue.fleet.yaml",
      "fleetkit:sshPrivateKey": "test-key",
      "fleetkit:tailscaleAuthKey": "tskey-test",
      "fleetkit:anthropicApiKey": "sk-ant-test",
    };
    const run = spawnSync(process.execPath, ["test/program/fixtures/load-with-pulumi-hooks.mjs"], {
      encoding: "utf8",
      timeout: 120_000,
      env: { ...process.env, FLEETKIT_TEST_CONFIG: JSON.stringify(config), FLEETKIT_TEST_SECRET_KEYS: JSON.stringify(Object.keys(config).slice(1)) },
    });
    expect(run.stderr.split("\n").filter((l) => l && !/ExperimentalWarning|--trace-warnings|npm warn/.test(l))).toEqual([]);
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout) as { registered: string[]; fleetName: string; transpileOnly: boolean };
    expect(summary.transpileOnly).toBe(false);
    expect(summary.fleetName).toBe("shared-fs-queue");
    const plan = planFleet(loadFleet("examples/shared-fs-queue.fleet.yaml"));
    const planned = plan.nodes.flatMap((n) => [...n.resources, ...n.roles.flatMap((r) => r.resources)].map((x) => `${x.type} ${x.name}`));
    expect(summary.registered.sort()).toEqual(
      ["fleetkit:index:Fleet shared-fs-queue", ...plan.nodes.map((n) => `fleetkit:index:Node ${n.name}`), ...planned].sort(),
    );
  });
});
