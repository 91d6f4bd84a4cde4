/**
 * `fleet plan --diff STATE` as users run it (`node bin/fleet.mjs plan --diff …`), against a stack state made
 * the way Pulumi makes one: the real program (`stacks/index.ts`) runs under setMocks for fleet.yaml, writing
 * its bundle files to a bundle dir as `pulumi up` does, and what it registered becomes a `pulumi stack export`
 * document (secrets as ciphertext, archives as local file archives, each install's short create line as it is), validated against Pulumi's published
 * JSON Schemas of stack state (fixtures/pulumi-apitype). Then the fleet changes — a budget raised on rpi1,
 * AgentAPI taken off rpi3, a Pi added — and the diff must name exactly those bundles, with the script lines
 * that changed.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { beforeAll, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { runProgram, isSecret, type Registration } from "../program/harness.js";
import { withNode, withoutRole, writeFleet } from "../program/fleets.js";

const BIN = resolve("bin/fleet.mjs");
const SECRETS = {
  "fleetkit:tailscaleAuthKey": "tskey-auth-DIFF",
  "fleetkit:anthropicApiKey": "sk-ant-DIFF",
  "fleetkit:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\ndiff\n-----END OPENSSH PRIVATE KEY-----\n",
};
const SIG_KEY = "4dabf18193072939515e22adb298388d";

/** A wire-form value as the state keeps it: a secret's value encrypted (here: a placeholder ciphertext). */
function stateValue(wire: unknown): unknown {
  if (isSecret(wire)) return { [SIG_KEY]: (wire as Record<string, unknown>)[SIG_KEY], ciphertext: "v1:AAAAbmV2ZXItZGVjcnlwdGVk" };
  if (Array.isArray(wire)) return wire.map(stateValue);
  if (wire && typeof wire === "object") return Object.fromEntries(Object.entries(wire).map(([k, v]) => [k, stateValue(v)]));
  return wire;
}

/** A `pulumi stack export` document (deployment version 3) of what a program run registered. */
function stackExport(registrations: Registration[]): unknown {
  const urn = (type: string, name: string) => `urn:pulumi:dev::fleetkit::${type}::${name}`;
  const byName = new Map(registrations.map((r) => [r.name, r]));
  return {
    version: 3,
    deployment: {
      manifest: { time: "2026-12-07T12:00:00Z", magic: "0".repeat(64), version: "v3.200.0" },
      secrets_providers: { type: "passphrase", state: { salt: "v1:AAAA" } },
      resources: registrations.map((r) => ({
        urn: urn(r.type, r.name),
        custom: r.custom,
        type: r.type,
        ...(r.custom ? { id: `${r.name}_id` } : {}),
        inputs: stateValue(r.wire),
        outputs: stateValue(r.wire),
        ...(r.parent && byName.has(r.parent) ? { parent: urn(byName.get(r.parent)!.type, r.parent) } : {}),
      })),
    },
  };
}

/** Pulumi's schema validator of stack state (deployments.json with resources.json and property-values.json). */
function stateValidator() {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const dir = "test/cli/fixtures/pulumi-apitype";
  // property-values.json names its own root `$anchor: property_value`; Ajv resolves no anchor at a schema's
  // root, so its references to it become `#`, the same schema by its root.
  const read = (f: string) => readFileSync(join(dir, `${f}.json`), "utf8").replaceAll('"#property_value"', '"#"');
  for (const f of ["property-values", "resources"]) ajv.addSchema(JSON.parse(read(f)));
  return ajv.compile(JSON.parse(read("deployments")));
}

const plan = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, "plan", ...args], { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

/** Bundle hashes (whole or shortened) and hunk line numbers masked, so template edits do not churn the expectations. */
const masked = (text: string) =>
  text
    .replace(/\b[0-9a-f]{64}\b/g, "#")
    .replace(/\b[0-9a-f]{12}\b/g, "#")
    .replace(/^@@ -\d+,\d+ \+\d+,\d+ @@$/gm, "@@ … @@");

describe("fleet plan --diff", () => {
  let stateFile: string;
  let bundleDir: string;
  beforeAll(async () => {
    bundleDir = mkdtempSync(join(tmpdir(), "fleet-plan-diff-bundles-"));
    const run = await runProgram({ "fleetkit:fleetFile": "fleet.yaml", "fleetkit:bundleDir": bundleDir, ...SECRETS }, Object.keys(SECRETS));
    const state = stackExport(run.registrations);
    const validate = stateValidator();
    expect(validate(state), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true);
    stateFile = join(mkdtempSync(join(tmpdir(), "fleet-plan-diff-")), "state.json");
    writeFileSync(stateFile, JSON.stringify(state));
  }, 120_000);

  it("against the state of the same fleet: every copied bundle unchanged, Windows nodes named as not compared", () => {
    const r = plan("--diff", stateFile, "--bundle-dir", bundleDir);
    expect(r).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        `bundles against ${stateFile}: 0 changed, 0 added, 0 removed, 38 unchanged`,
        "",
        "not compared: windows-desktop, windows-laptop (Windows: the bundle travels inline in its command; `pulumi preview --diff` shows it)",
        "",
      ].join("\n"),
    });
  });

  it("a raised budget: the node's claude bundle and the queue's node list, with the changed script lines (golden)", async () => {
    const doc = parseDocument(readFileSync("fleet.yaml", "utf8"));
    doc.setIn(["nodes", "rpi1", "budgetUsdPerSession"], 7);
    const r = plan("--diff", stateFile, "--bundle-dir", bundleDir, "--fleet", writeFleet(doc.toString()));
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    await expect(masked(r.stdout).replace(stateFile, "STATE")).toMatchFileSnapshot("fixtures/plan-diff-budget.txt");
  });

  it("a node added and a role taken off: the new node's bundles, the removed install, and every allow-list that names the node", () => {
    let file = withoutRole("fleet.yaml", "rpi3", "agentapi");
    file = withNode(file, "rpi4", { host: "rpi4", os: "raspios", arch: "aarch64", profile: "workstation", budgetUsdPerSession: 5 });
    const r = plan("--diff", stateFile, "--bundle-dir", bundleDir, "--fleet", file);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    const lines = masked(r.stdout).split("\n");
    expect(lines[0]).toBe(`bundles against ${stateFile}: 11 changed, 3 added, 1 removed, 26 unchanged`);
    expect(lines.filter((l) => /^[~+-] [a-z]/.test(l))).toEqual([
      // rpi4 joins every firewall allow-list of the fleet's services (roles/reach.ts).
      "~ arch-orchestrator icecc-scheduler: # -> #",
      "~ arch-orchestrator iceccd: # -> #",
      "~ arch-orchestrator ntfy: # -> #",
      "~ arch-orchestrator queue: # -> #",
      "~ macbook1 iceccd: # -> #",
      "~ imac iceccd: # -> #",
      "~ macbook2 iceccd: # -> #",
      "~ rpi1 iceccd: # -> #",
      "~ rpi2 iceccd: # -> #",
      // rpi3's CLAUDE.md no longer offers its AgentAPI.
      "~ rpi3 claude: # -> #",
      "~ rpi3 iceccd: # -> #",
      "+ rpi4 tailscale: new, # (copied and installed)",
      "+ rpi4 claude: new, # (copied and installed)",
      "+ rpi4 iceccd: new, # (copied and installed)",
      "- rpi3-agentapi-install: no longer planned (its uninstall script runs)",
    ]);
  });

  it("--json gives the same report; without the deployed scripts only the hash change is known", () => {
    const doc = parseDocument(readFileSync("fleet.yaml", "utf8"));
    doc.setIn(["nodes", "rpi1", "budgetUsdPerSession"], 7);
    const file = writeFleet(doc.toString());
    const json = JSON.parse(plan("--diff", stateFile, "--bundle-dir", bundleDir, "--fleet", file, "--json").stdout);
    expect({ ...json, changed: json.changed.map((c: { patch: string }) => ({ ...c, patch: typeof c.patch })) }).toEqual({
      changed: ["queue", "claude"].map((role) => ({
        node: role === "queue" ? "arch-orchestrator" : "rpi1",
        role,
        from: expect.stringMatching(new RegExp(`^${role}\\.[0-9a-f]{64}$`)),
        to: expect.stringMatching(new RegExp(`^${role}\\.[0-9a-f]{64}$`)),
        patch: "string",
      })),
      added: [],
      removed: [],
      unchanged: 36,
      inline: ["windows-desktop", "windows-laptop"],
    });
    const empty = mkdtempSync(join(tmpdir(), "fleet-plan-diff-empty-"));
    const r = plan("--diff", stateFile, "--bundle-dir", empty, "--fleet", file);
    expect(masked(r.stdout).split("\n").slice(0, 4)).toEqual([
      `bundles against ${stateFile}: 2 changed, 0 added, 0 removed, 36 unchanged`,
      "",
      "~ arch-orchestrator queue: # -> #",
      `  (the deployed scripts are not in ${empty}/queue.#: deployed from another checkout; only the hash is known)`,
    ]);
  });

  it("a hostile state: install lines that name a path out of the bundle dir or no bundle directory are ignored (their roles count as added), nothing outside is read", () => {
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as { deployment: { resources: { urn: string; inputs: Record<string, any> }[] } };
    const bad = ["../../../etc/passwd", "/etc", "claude.$(id)", `claude.${"a".repeat(64)}/../../x`, `../claude.${"b".repeat(63)}`];
    const installs = state.deployment.resources.filter((r) => r.urn.endsWith("-install") && String(r.inputs.create).startsWith("sudo -n sh -c 'h=")).slice(0, bad.length);
    installs.forEach((r, i) => (r.inputs.create = String(r.inputs.create).replace(/;sh \$h i [^ ]+ /, `;sh $h i ${bad[i]} `)));
    expect(installs.map((r) => String(r.inputs.create).includes(`;sh $h i ${bad[installs.indexOf(r)]} `))).toEqual(bad.map(() => true));
    const file = join(mkdtempSync(join(tmpdir(), "fleet-plan-diff-hostile-")), "state.json");
    writeFileSync(file, JSON.stringify(state));
    const r = plan("--diff", file, "--bundle-dir", bundleDir);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    expect(r.stdout.split("\n")[0]).toBe(`bundles against ${file}: 0 changed, ${bad.length} added, 0 removed, ${38 - bad.length} unchanged`);
  });

  it("reads a state deployed before the shipping helper: its install lines began set -e;n=<dir>;", () => {
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as { deployment: { resources: { urn: string; inputs: Record<string, any> }[] } };
    const installs = state.deployment.resources.filter((r) => String(r.inputs.create).startsWith("sudo -n sh -c 'h="));
    for (const r of installs) {
      const dir = /;sh \$h i (\S+) /.exec(String(r.inputs.create))![1];
      r.inputs.create = `sudo -n sh -c 'set -e;n=${dir};d=/var/lib/fleetkit/bundles/$n;s=.fleetkit/bundles/$n\nsh $d/install.sh'`;
    }
    const file = join(mkdtempSync(join(tmpdir(), "fleet-plan-diff-earlier-")), "state.json");
    writeFileSync(file, JSON.stringify(state));
    expect(installs).toHaveLength(38);
    expect(plan("--diff", file, "--bundle-dir", bundleDir).stdout.split("\n")[0]).toBe(`bundles against ${file}: 0 changed, 0 added, 0 removed, 38 unchanged`);
  });

  it.each([
    ["a file that is not there", "/nonexistent/state.json", "fleet plan --diff: cannot read /nonexistent/state.json (ENOENT); write it with `npx pulumi stack export --file FILE` for the stack and pass that file.\n"],
    ["not JSON", "not json {", /^fleet plan --diff: \S+ is not JSON \(.*\); write it with `npx pulumi stack export --file FILE` for the stack and pass that file\.\n$/],
    ["another version", JSON.stringify({ version: 2, deployment: {} }), /^fleet plan --diff: \S+ is not a Pulumi stack export: field version: expected version 3 \(what `pulumi stack export` writes today\); write it with/],
  ])("bad state (%s): one line, exit 2, no stack trace", (_what, content, expected) => {
    let file = content;
    if (!content.startsWith("/")) {
      file = join(mkdtempSync(join(tmpdir(), "fleet-plan-diff-bad-")), "state.json");
      writeFileSync(file, content);
    }
    const r = plan("--diff", file);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    if (typeof expected === "string") expect(r.stderr).toBe(expected);
    else expect(r.stderr).toMatch(expected);
  });
});
