/**
 * `fleet plan` as users run it (`node bin/fleet.mjs plan …`, what `npm run plan` runs): the human output for a
 * real example fleet against a golden file (bundle hashes checked against planFleet, masked in the golden
 * so template edits do not churn it), `--json` equal to planFleet, and bad input exiting 2 with the
 * loader's one-line-per-problem message and no stack trace.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import { planFleet } from "../../stacks/plan.js";

const BIN = resolve("bin/fleet.mjs");
const fleetCliIn = (cwd: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, "plan", ...args], { cwd, encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};
const fleetCli = (...args: string[]) => fleetCliIn(process.cwd(), ...args);

/** A copy of the project's Pulumi.yaml and real fleets in a temp folder, with stack config files `stacks`. */
function project(stacks: Record<string, string>, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "fleet-plan-stack-"));
  for (const f of ["Pulumi.yaml", "fleet.yaml", "examples"]) cpSync(f, join(dir, f), { recursive: true });
  for (const [name, text] of Object.entries({ ...Object.fromEntries(Object.entries(stacks).map(([k, v]) => [`Pulumi.${k}.yaml`, v])), ...extra })) writeFileSync(join(dir, name), text);
  return dir;
}
const SECURE = "\n    secure: v1:UNDECRYPTABLEAAAA==";
const HASH = /^( {2}\S+ +)([0-9a-f]{12})( {2})/gm;

describe("fleet plan", () => {
  it("prints the shared-fs-queue example as the golden file, with each role's bundle hash", () => {
    const file = "examples/shared-fs-queue.fleet.yaml";
    const run = fleetCli("--fleet", file);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: "" });
    expect(run.stdout.replace(HASH, "$1############$3")).toBe(readFileSync("test/cli/fixtures/plan-shared-fs-queue.txt", "utf8"));
    const hashes = [...run.stdout.matchAll(HASH)].map((m) => m[2]);
    expect(hashes).toEqual(planFleet(loadFleet(file)).nodes.flatMap((n) => n.roles.map((r) => r.bundleHash.slice(0, 12))));
  });

  it("README's trimmed plan is the real one: each of its lines (but the … elisions) is a line of `npm run plan`, in order", () => {
    const readme = readFileSync("README.md", "utf8");
    const from = readme.indexOf("```\n", readme.indexOf("A trimmed real `npm run plan`:")) + 4;
    const shown = readme.slice(from, readme.indexOf("```\n", from)).split("\n").filter((l) => l !== "" && !l.startsWith("…"));
    const real = fleetCli().stdout.split("\n");
    expect(shown.length).toBeGreaterThan(20);
    let at = 0;
    const missing = shown.filter((l) => {
      const i = real.indexOf(l, at);
      if (i < 0) return true;
      at = i + 1;
      return false;
    });
    expect(missing).toEqual([]);
  });

  it("pins every bundle hash of the three real fleets (a changed hash re-deploys that role: update with `npx vitest run -u` and name why)", async () => {
    const lines = ["fleet.yaml", "examples/remote-tasks.fleet.yaml", "examples/shared-fs-queue.fleet.yaml"].flatMap((f) => {
      const plan = planFleet(loadFleet(f));
      return plan.nodes.flatMap((n) => n.roles.map((r) => `${f} ${n.name} ${r.role} ${r.bundleHash}`));
    });
    await expect(`${lines.join("\n")}\n`).toMatchFileSnapshot("fixtures/bundle-hashes.txt");
  });

  it("counts repeated resource types and lists only other roles' resources after 'after' (root fleet's queue)", () => {
    const run = fleetCli();
    const queue = run.stdout.split("\n").find((l) => l.startsWith("  queue "))!;
    expect(queue.replace(HASH, "$1############$3")).toBe(
      "  queue            ############  Queue + Command  after arch-orchestrator-tailscale-install, arch-orchestrator-ntfy-token, " +
        "arch-orchestrator-queue-token, imac-queue-token, macbook1-queue-token, macbook2-queue-token, rpi1-queue-token, rpi2-queue-token, rpi3-queue-token, " +
        "windows-desktop-queue-token, windows-laptop-queue-token",
    );
  });

  it("--json prints planFleet's plan for the root fleet: 9 nodes (7 with their bundle copy), 44 roles, 113 role resources", () => {
    const run = fleetCli("--json");
    expect(run.status).toBe(0);
    const json = JSON.parse(run.stdout);
    expect(json).toEqual(JSON.parse(JSON.stringify(planFleet(loadFleet("fleet.yaml")))));
    expect(Object.keys(json)).toEqual(["fleet", "nodes", "tailnet"]);
    expect(json.tailnet).toEqual({ managed: false, resources: [] });
    expect(Object.keys(json.nodes[0])).toEqual(["name", "os", "arch", "host", "resources", "roles"]);
    expect(json.nodes.map((n: { resources: { name: string }[] }) => n.resources.map((r) => r.name)).flat()).toEqual(
      ["arch-orchestrator", "macbook1", "imac", "macbook2", "rpi1", "rpi2", "rpi3"].map((n) => `${n}-bundles`),
    );
    expect(Object.keys(json.nodes[0].roles[0])).toEqual(["role", "bundleHash", "resources"]);
    expect(Object.keys(json.nodes[0].roles[0].resources[0])).toEqual(["type", "name", "dependsOn"]);
    const roles = json.nodes.flatMap((n: { roles: { resources: unknown[] }[] }) => n.roles);
    expect([json.nodes.length, roles.length, roles.flatMap((r: { resources: unknown[] }) => r.resources).length]).toEqual([9, 44, 113]);
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
    expect(run.stderr.split("\n").slice(0, 2)).toEqual(["fleet plan: unknown option --bogus", "usage: fleet plan [--fleet FILE] [--stack NAME] [--json] [--diff STATE [--bundle-dir DIR]]"]);
  });
});

describe("fleet plan and the tailnet policy", () => {
  const tailnetLine = (stdout: string) => stdout.split("\n").filter((l) => l.startsWith("tailnet policy:"));

  it.each([
    ["fleet.yaml", "AgentAPI on 6 nodes, the queue, icecc and ntfy rely on node firewalls only"],
    ["examples/remote-tasks.fleet.yaml", "the queue and ntfy rely on node firewalls only"],
    ["examples/shared-fs-queue.fleet.yaml", "the queue relies on node firewalls only"],
  ])("without --stack, %s: says the policy is not managed and what relies on node firewalls alone", (file, relies) => {
    const run = fleetCli("--fleet", file);
    expect(run.status).toBe(0);
    expect(tailnetLine(run.stdout)).toEqual([
      `tailnet policy: not managed (planned without stack config; --stack NAME reads Pulumi.NAME.yaml): ${relies}; nodes join with the shared fleetkit:tailscaleAuthKey`,
    ]);
  });

  it("--stack whose config sets no Tailscale credentials: not managed, naming the file; a configured ntfy token mints none", () => {
    const dir = project({ dev: `config:\n  fleetkit:ntfyToken:${SECURE}\n` });
    const run = fleetCliIn(dir, "--stack", "dev");
    expect(run.status).toBe(0);
    expect(run.stdout.split("\n")[0]).toBe("fleet agent-mesh (fleet.yaml): 9 nodes, 44 roles, 119 resources");
    expect(tailnetLine(run.stdout)).toEqual([
      "tailnet policy: not managed (no fleetkit:tailscaleApiKey or fleetkit:tailscaleOauthClientSecret in Pulumi.dev.yaml): AgentAPI on 6 nodes, the queue, icecc and ntfy rely on node firewalls only; nodes join with the shared fleetkit:tailscaleAuthKey",
    ]);
  });

  it("--stack whose config sets fleetkit:tailscaleApiKey (never decrypted): the stack's fleet file, the managed policy, its tags, and a key and device tags per node", () => {
    const dir = project({ mesh: `encryptionsalt: v1:x\nconfig:\n  fleetkit:fleetFile: fleet.yaml\n  fleetkit:tailscaleApiKey:${SECURE}\n` });
    const run = fleetCliIn(dir, "--stack", "mesh");
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: "" });
    const lines = run.stdout.split("\n");
    expect(lines[0]).toBe("fleet agent-mesh (fleet.yaml): 9 nodes, 44 roles, 140 resources");
    expect(lines.find((l) => l.startsWith("  tailscale "))!.replace(/[0-9a-f]{12}/, "#")).toBe("  tailscale        #  Tailscale + TailnetKey + Command + DeviceTags  after tailnet-policy");
    expect(lines.slice(lines.findIndex((l) => l.startsWith("tailnet policy:")))).toEqual([
      "tailnet policy: managed (fleetkit:tailscaleApiKey in Pulumi.mesh.yaml): 4 tags, 10 grants, 8 tests; each node joins with its own single-use key",
      "  tag:fleet-orchestrator    arch-orchestrator",
      "  tag:fleet-headless-agent  macbook1, imac, rpi2, rpi3",
      "  tag:fleet-workstation     macbook2, windows-desktop, windows-laptop",
      "  tag:fleet-node-rpi1       rpi1",
      "  resources: tailnet (Tailscale provider), tailnet-policy (Acl: the tailnet's whole policy file)",
      "",
    ]);
    const json = JSON.parse(fleetCliIn(dir, "--stack", "mesh", "--json").stdout);
    expect(json).toEqual(JSON.parse(JSON.stringify(planFleet(loadFleet("fleet.yaml"), { tailnetManaged: true }))));
    expect(json.tailnet).toEqual({
      managed: true,
      resources: [
        { type: "pulumi:providers:tailscale", name: "tailnet", dependsOn: [] },
        { type: "tailscale:index/acl:Acl", name: "tailnet-policy", dependsOn: [] },
      ],
    });
  });

  it("--stack with an OAuth client, its tag and a policy file: counts the merged policy and takes the fleet file from the stack", () => {
    const dir = project(
      {
        oauth: [
          "config:",
          "  fleetkit:fleetFile: examples/shared-fs-queue.fleet.yaml",
          "  fleetkit:tailscaleOauthClientId: kABC",
          `  fleetkit:tailscaleOauthClientSecret:${SECURE}`,
          "  fleetkit:tailscaleTagOwners:",
          "    - tag:fleetkit",
          "  fleetkit:tailnetPolicyFile: mine.hujson",
          "",
        ].join("\n"),
      },
      { "mine.hujson": '{ "grants": [{ "src": ["tag:ci"], "dst": ["tag:fleet-pi"], "ip": ["tcp:22"] },], "tagOwners": { "tag:ci": ["autogroup:admin"] } }' },
    );
    const run = fleetCliIn(dir, "--stack", "oauth");
    expect(run.status).toBe(0);
    expect(run.stdout.split("\n")[0]).toBe("fleet shared-fs-queue (examples/shared-fs-queue.fleet.yaml): 3 nodes, 10 roles, 34 resources");
    expect(tailnetLine(run.stdout)).toEqual([
      "tailnet policy: managed (fleetkit:tailscaleOauthClientSecret in Pulumi.oauth.yaml): 4 tags, 4 grants, 2 tests (with mine.hujson); each node joins with its own single-use key",
    ]);
  });

  it.each([
    ["a stack with no config file", {}, "nope", /^fleet plan: no config file Pulumi\.nope\.yaml for stack "nope" \(ENOENT\); name a stack of this project \(`npx pulumi stack ls`\), create it with `npx pulumi stack init nope`, or plan without --stack\.\n$/],
    ["a stack config file that is not YAML", { bad: "config:\n  fleetkit:fleetFile: [\n" }, "bad", /^.*Pulumi\.bad\.yaml:\d+:\d+: the stack's config file is not YAML \(\w+\); fix it or run `npx pulumi config` to see what Pulumi makes of it\.\n$/],
    ["a policy file that is not HuJSON", { p: `config:\n  fleetkit:tailscaleApiKey:${SECURE}\n  fleetkit:tailnetPolicyFile: mine.hujson\n` }, "p", /^mine\.hujson:1:13: the tailnet policy file is not HuJSON \(\w+\); fix it \(JSON with comments and trailing commas\) and run again\.\n$/],
  ])("refuses %s with exit 2 and one paragraph", (_what, stacks, stack, message) => {
    const dir = project(stacks, { "mine.hujson": '{ "grants": ] }' });
    const run = fleetCliIn(dir, "--stack", stack);
    expect({ status: run.status, stdout: run.stdout }).toEqual({ status: 2, stdout: "" });
    expect(run.stderr).toMatch(message);
  });
});
