/**
 * Tailnet as code (stacks/tailnet.ts): the real program under Pulumi's mocks with Tailscale API
 * credentials in the stack config, for the three real fleets. Checked: the explicit Tailscale provider
 * (credentials secret), one single-use tagged auth key per node and each node's tailscale install reading
 * its own key on stdin, the policy (parsed and compared exactly, and checked against roles/reach.ts), the
 * device tags, the user's policy file merged in, and config errors. Without credentials: nothing of this.
 */
import * as pulumi from "@pulumi/pulumi";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { loadFleet } from "../../model/load.js";
import type { Fleet as FleetModel } from "../../model/fleet.js";
import {
  DEVICE_TAGS_TYPE,
  planFleet,
  renderBundles,
  TAILNET_KEY_TYPE,
  TAILNET_POLICY_TYPE,
  TAILSCALE_PROVIDER_TYPE,
  type FleetPlan,
} from "../../stacks/plan.js";
import { bundleShipping } from "../../roles/shipping.js";
import { fleetReach, TAILNET_CIDRS } from "../../roles/reach.js";
import { tailnetTags, type TailnetPolicy } from "../../stacks/tailnet-policy.js";
import { TAILNET_KEY_EXPIRY_SECONDS, tailnetKeyDescription } from "../../stacks/tailnet.js";
import { byName, expectedShapes, isSecret, MINTED_MARKER, plainStrings, runProgram, shape, type ProgramRun } from "./harness.js";
import { REAL_FLEETS } from "./fleets.js";

const MARK = "SECRETMARKER";
const BASE = {
  "fleetkit:anthropicApiKey": `sk-ant-${MARK}ak`,
  "fleetkit:sshPrivateKey": `-----BEGIN OPENSSH PRIVATE KEY-----\n${MARK}ssh\n-----END OPENSSH PRIVATE KEY-----\n`,
};
const API_KEY = { "fleetkit:tailscaleApiKey": `tskey-api-${MARK}api` };
/** The pasted shared key: with API credentials it must reach no node. */
const PASTED = { "fleetkit:tailscaleAuthKey": `tskey-auth-${MARK}pasted` };

/** Runs the program on `fleetFile` with `config` on top of the base secrets; every key but plain ones is secret. */
function run(fleetFile: string, config: Record<string, string>, plain: string[] = []): Promise<ProgramRun> {
  const all = { "fleetkit:fleetFile": fleetFile, ...BASE, ...config };
  return runProgram(all, Object.keys(all).filter((k) => k !== "fleetkit:fleetFile" && !plain.includes(k)));
}

/** The minted key the mocks answer for node `node` (harness.ts providerOutputs). */
const mintedKey = (node: string) => `tskey-auth-${MINTED_MARKER}${node.replace(/-/g, "")}tailscalekey`;

/** The policy the program applies: the Acl's `acl` input, parsed. */
const appliedPolicy = (program: ProgramRun): TailnetPolicy => JSON.parse(String(program.get("tailnet-policy").inputs.acl)) as TailnetPolicy;

/**
 * Whether `policy`'s grants let a device with selectors `src` (its tag, `autogroup:tagged`, `*`) reach
 * `dst` (a tag) on `proto:port`: some grant lists one of the selectors in `src`, the tag in `dst`, and
 * the port (or `*`) in `ip`. Only the selectors fleetkit's grants use; not a model of Tailscale.
 */
function grantsAllow(policy: TailnetPolicy, src: string[], dst: string, proto: string, port: number): boolean {
  return policy.grants.some((g) => g.src.some((s) => src.includes(s)) && g.dst.includes(dst) && (g.ip.includes(`${proto}:${port}`) || g.ip.includes("*")));
}
const tagged = (tag: string) => [tag, "autogroup:tagged", "*"];

const SELF = { src: ["autogroup:member"], dst: ["autogroup:self"], ip: ["*"] };
const admin = ["autogroup:admin"];

/** The exact policy of each real fleet, written out by hand from roles/reach.ts's rules. */
const EXPECTED: Record<(typeof REAL_FLEETS)[number], TailnetPolicy> = {
  "fleet.yaml": (() => {
    // rpi1 has profile headless-agent plus toolchains: its own tag, so tag:fleet-headless-agent means exactly the profile's roles.
    const [o, h, w, r] = ["tag:fleet-orchestrator", "tag:fleet-headless-agent", "tag:fleet-workstation", "tag:fleet-node-rpi1"];
    return {
      tagOwners: { [o]: admin, [h]: admin, [w]: admin, [r]: admin },
      grants: [
        SELF,
        // SSH from people and from fleet nodes (where `pulumi up` may run) to every node.
        { src: ["autogroup:member", o, h, w, r], dst: [o, h, w, r], ip: ["tcp:22"] },
        // The scheduler, the orchestrator's iceccd and the queue: every node compiles and submits tasks.
        { src: [o, h, w, r], dst: [o], ip: ["tcp:8765", "udp:8765", "tcp:10245", "tcp:8787"] },
        // AgentAPI: only the queue node (arch-orchestrator) drives agents.
        { src: [o], dst: [o], ip: ["tcp:3284"] },
        // ntfy: allowFrom defaults to fleet + tailnet.
        { src: [o, h, w, r, "autogroup:member", "autogroup:tagged"], dst: [o], ip: ["tcp:8091"] },
        { src: [o, h, w, r], dst: [h], ip: ["tcp:10245"] },
        { src: [o], dst: [h], ip: ["tcp:3284"] },
        { src: [o, h, w, r], dst: [w], ip: ["tcp:10245"] },
        { src: [o, h, w, r], dst: [r], ip: ["tcp:10245"] },
        { src: [o], dst: [r], ip: ["tcp:3284"] },
      ],
      tests: [
        { src: o, proto: "tcp", accept: [`${o}:8765`, `${o}:10245`, `${o}:3284`, `${o}:8091`, `${o}:8787`, `${h}:10245`, `${h}:3284`, `${w}:10245`, `${r}:10245`, `${r}:3284`], deny: [`${o}:8766`] },
        ...[h, w, r].map((src) => ({
          src,
          proto: "tcp" as const,
          accept: [`${o}:8765`, `${o}:10245`, `${o}:8091`, `${o}:8787`, `${h}:10245`, `${w}:10245`, `${r}:10245`],
          deny: [`${o}:8766`, `${o}:3284`, `${h}:3284`, `${r}:3284`],
        })),
        { src: o, proto: "udp", accept: [`${o}:8765`] },
        { src: h, proto: "udp", accept: [`${o}:8765`] },
        { src: w, proto: "udp", accept: [`${o}:8765`] },
        { src: r, proto: "udp", accept: [`${o}:8765`] },
      ],
    };
  })(),
  "examples/remote-tasks.fleet.yaml": (() => {
    // macbook-pro has profile desk plus a worker: its own tag, so tag:fleet-desk means exactly desk's roles.
    const [d, p, hub] = ["tag:fleet-desk", "tag:fleet-node-macbook-pro", "tag:fleet-pi-hub"];
    return {
      tagOwners: { [d]: admin, [p]: admin, [hub]: admin },
      grants: [
        SELF,
        { src: ["autogroup:member", d, p, hub], dst: [d, p, hub], ip: ["tcp:22"] },
        { src: [d, p, hub, "autogroup:member", "autogroup:tagged"], dst: [hub], ip: ["tcp:8091"] },
        { src: [d, p, hub], dst: [hub], ip: ["tcp:8787"] },
      ],
      tests: [d, p, hub].map((src) => ({ src, proto: "tcp" as const, accept: [`${hub}:8091`, `${hub}:8787`] })),
    };
  })(),
  "examples/shared-fs-queue.fleet.yaml": (() => {
    const [c, pi] = ["tag:fleet-control", "tag:fleet-pi"];
    return {
      tagOwners: { [c]: admin, [pi]: admin },
      grants: [SELF, { src: ["autogroup:member", c, pi], dst: [c, pi], ip: ["tcp:22"] }, { src: [c, pi], dst: [c], ip: ["tcp:8787"] }],
      tests: [c, pi].map((src) => ({ src, proto: "tcp" as const, accept: [`${c}:8787`] })),
    };
  })(),
};

describe.each(REAL_FLEETS)("a managed tailnet for %s (fleetkit:tailscaleApiKey set)", (file) => {
  let model: FleetModel;
  let plan: FleetPlan;
  let program: ProgramRun;
  let tags: Map<string, string>;

  beforeAll(async () => {
    model = loadFleet(file);
    plan = planFleet(model, { tailnetManaged: true });
    tags = tailnetTags(model);
    program = await run(file, { ...API_KEY, ...PASTED });
  });

  it("registers exactly the planned resources: the provider, the policy, a key and device tags per node", () => {
    expect(program.registrations.map(shape).sort(byName)).toEqual(expectedShapes(plan));
    const count = (type: string) => program.registrations.filter((r) => r.type === type).length;
    expect([count(TAILSCALE_PROVIDER_TYPE), count(TAILNET_POLICY_TYPE), count(TAILNET_KEY_TYPE), count(DEVICE_TAGS_TYPE)]).toEqual([1, 1, model.nodes.length, model.nodes.length]);
  });

  it("creates the Tailscale provider with the API key as a secret, and every tailnet resource through it", () => {
    const provider = program.get("tailnet");
    expect(provider.parent).toBe(model.name);
    expect(isSecret(provider.wire.apiKey)).toBe(true);
    expect(provider.inputs.apiKey).toBe(API_KEY["fleetkit:tailscaleApiKey"]);
    // No tailnet configured: the provider uses the tailnet the credentials belong to.
    expect(provider.inputs.tailnet).toBeUndefined();
    for (const r of program.registrations.filter((r) => r.type.startsWith("tailscale:"))) expect(r.provider, r.name).toMatch(/[:$]pulumi:providers:tailscale::tailnet::tailnet_id$/);
  });

  it("mints one pre-authorised, single-use, non-ephemeral key per node, tagged with the node's tag, after the policy", () => {
    const keys = program.registrations.filter((r) => r.type === TAILNET_KEY_TYPE);
    expect(keys.map((k) => k.name).sort()).toEqual(model.nodes.map((n) => `${n.name}-tailscale-key`).sort());
    for (const node of model.nodes) {
      const key = program.get(`${node.name}-tailscale-key`);
      expect(key.inputs).toEqual({
        preauthorized: true,
        reusable: false,
        ephemeral: false,
        tags: [tags.get(node.name)],
        expiry: TAILNET_KEY_EXPIRY_SECONDS,
        recreateIfInvalid: "never",
        description: `fleetkit ${node.name}`.replaceAll("-", " "),
      });
      expect([key.parent, key.dependsOn, key.additionalSecretOutputs, key.retainOnDelete]).toEqual([model.name, ["tailnet-policy"], ["key"], false]);
    }
    expect(TAILNET_KEY_EXPIRY_SECONDS).toBe(604800);
    expect(tailnetKeyDescription("arch-orchestrator")).toBe("fleetkit arch orchestrator");
    expect(tailnetKeyDescription(`a${"-b".repeat(31)}`)).toBe(`fleetkit a${" b".repeat(20)}`);
  });

  it("hands each node's tailscale install its own key on stdin, as a secret, and the pasted key to no node", () => {
    for (const node of model.nodes) {
      const install = program.get(`${node.name}-tailscale-install`);
      expect(isSecret(install.wire.stdin)).toBe(true);
      expect(install.inputs.stdin).toBe(`tailscaleAuthKey=${mintedKey(node.name)}\n`);
      expect(install.dependsOn).toContain(`${node.name}-tailscale-key`);
    }
    for (const r of program.registrations) expect(JSON.stringify(r.inputs), r.name).not.toContain(PASTED["fleetkit:tailscaleAuthKey"]);
  });

  it("keeps each tailscale install command as it is without the API key: a new key changes the secret stdin, never the command", async () => {
    const unmanaged = await run(file, PASTED);
    const bundles = renderBundles(model);
    for (const node of model.nodes) {
      const name = `${node.name}-tailscale-install`;
      const bundle = bundles.get(node.name)!.find((b) => b.role === "tailscale")!;
      const [managed, pasted] = [program.get(name), unmanaged.get(name)];
      expect(managed.inputs.create).toBe(bundleShipping(node, bundle).create);
      expect([managed.inputs.create, managed.inputs.delete, managed.inputs.connection]).toEqual([pasted.inputs.create, pasted.inputs.delete, pasted.inputs.connection]);
      expect(managed.inputs.delete).toBe(bundleShipping(node, bundle).delete);
      // @pulumi/command replaces a command only when its `triggers` change; stdin is not among them.
      expect([managed.deleteBeforeReplace, managed.replaceOnChanges, managed.inputs.triggers]).toEqual([true, ["triggers[*]"], undefined]);
      expect(pasted.inputs.stdin).toBe(`tailscaleAuthKey=${PASTED["fleetkit:tailscaleAuthKey"]}\n`);
    }
  });

  it("applies exactly the expected policy, owning the whole policy file and keeping it when management stops", () => {
    const acl = program.get("tailnet-policy");
    expect([acl.parent, acl.dependsOn, acl.inputs.overwriteExistingContent, acl.inputs.resetAclOnDestroy]).toEqual([model.name, [], true, false]);
    expect(appliedPolicy(program)).toEqual(EXPECTED[file]);
    expect(Object.keys(appliedPolicy(program).tagOwners).sort()).toEqual([...new Set(tags.values())].sort());
  });

  it("grants between fleet nodes exactly what roles/reach.ts allows, port by port", () => {
    const policy = appliedPolicy(program);
    const rules = fleetReach(model);
    const mismatches: string[] = [];
    for (const rule of rules) {
      for (const src of model.nodes) {
        const allowed = rule.open || rule.fromNodes.includes(src.name) || TAILNET_CIDRS.every((c) => rule.fromCidrs.includes(c));
        const granted = grantsAllow(policy, tagged(tags.get(src.name)!), tags.get(rule.node)!, rule.proto, rule.port);
        if (allowed !== granted) mismatches.push(`${src.name} → ${rule.node} ${rule.proto}:${rule.port}: reach ${allowed}, grants ${granted}`);
      }
    }
    expect(mismatches).toEqual([]);
    // Every port a grant opens to fleet tags is a reach rule's port, or SSH.
    const ports = new Set([...rules.map((r) => `${r.proto}:${r.port}`), ...model.nodes.map((n) => `tcp:${n.sshPort}`), "*"]);
    expect(policy.grants.flatMap((g) => g.ip).filter((ip) => !ports.has(ip))).toEqual([]);
  });

  it("has tests that hold against its own grants (what Tailscale checks before it accepts the policy)", () => {
    const policy = appliedPolicy(program);
    const failing: string[] = [];
    for (const test of policy.tests) {
      for (const [target, want] of [...(test.accept ?? []).map((t) => [t, true] as const), ...(test.deny ?? []).map((t) => [t, false] as const)]) {
        const at = target.lastIndexOf(":");
        if (grantsAllow(policy, tagged(test.src), target.slice(0, at), test.proto, Number(target.slice(at + 1))) !== want) failing.push(`${test.src} ${test.proto} ${target} ${want}`);
      }
    }
    expect(failing).toEqual([]);
  });

  it("tags each node's device, found by its MagicDNS name after its install, and keeps the tag when the resource goes", () => {
    for (const node of model.nodes) {
      const deviceTags = program.get(`${node.name}-tailscale-tags`);
      const device = `${node.name}.${model.tailnet}`;
      expect(deviceTags.inputs).toEqual({ deviceId: `n${device.replace(/[^A-Za-z0-9]/g, "")}CNTRL`, tags: [tags.get(node.name)] });
      expect([deviceTags.parent, deviceTags.dependsOn, deviceTags.retainOnDelete]).toEqual([`${node.name}-tailscale`, [`${node.name}-tailscale-install`, "tailnet-policy"].sort(), true]);
    }
  });

  it("never shows the API key or a minted key outside a Pulumi secret", () => {
    for (const r of program.registrations) for (const s of plainStrings(r.wire)) for (const m of [MARK, MINTED_MARKER]) expect(s, r.name).not.toContain(m);
    expect(JSON.stringify(program.outputs)).not.toMatch(new RegExp(`${MARK}|${MINTED_MARKER}`));
  });
});

describe.each(REAL_FLEETS)("without Tailscale API credentials, %s", (file) => {
  it("registers no Tailscale resource and feeds every node the pasted key", async () => {
    const program = await run(file, PASTED);
    expect(program.registrations.filter((r) => r.type.includes("tailscale") && !r.type.startsWith("fleetkit:")).map((r) => r.name)).toEqual([]);
    expect(program.registrations.map(shape).sort(byName)).toEqual(expectedShapes(planFleet(loadFleet(file))));
    for (const node of loadFleet(file).nodes) expect(program.get(`${node.name}-tailscale-install`).inputs.stdin).toBe(`tailscaleAuthKey=${PASTED["fleetkit:tailscaleAuthKey"]}\n`);
  });
});

describe("tailnet config", () => {
  const file = "examples/shared-fs-queue.fleet.yaml";
  const dir = mkdtempSync(join(tmpdir(), "fleetkit-tailnet-"));
  const policyFile = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("uses an OAuth client (id and secret as secrets), makes its tag an owner of every fleet tag and defines that tag", async () => {
    const program = await run(file, {
      "fleetkit:tailscaleOauthClientId": `k${MARK}id`,
      "fleetkit:tailscaleOauthClientSecret": `tskey-client-${MARK}secret`,
      "fleetkit:tailscaleTagOwners": JSON.stringify(["tag:fleetkit"]),
      "fleetkit:tailscaleTailnet": "example.com",
    }, ["fleetkit:tailscaleTagOwners", "fleetkit:tailscaleTailnet"]);
    const provider = program.get("tailnet");
    expect(provider.inputs).toMatchObject({ oauthClientId: `k${MARK}id`, oauthClientSecret: `tskey-client-${MARK}secret`, tailnet: "example.com" });
    expect(provider.inputs.apiKey).toBeUndefined();
    expect([isSecret(provider.wire.oauthClientId), isSecret(provider.wire.oauthClientSecret)]).toEqual([true, true]);
    expect(appliedPolicy(program).tagOwners).toEqual({
      "tag:fleetkit": ["autogroup:admin"],
      "tag:fleet-control": ["autogroup:admin", "tag:fleetkit"],
      "tag:fleet-pi": ["autogroup:admin", "tag:fleetkit"],
    });
    for (const r of program.registrations) for (const s of plainStrings(r.wire)) expect(s, r.name).not.toContain(MARK);
  });

  it("merges the user's HuJSON policy file: their grants, tests and groups after fleetkit's, their owners added to a fleet tag, other sections as written", async () => {
    const path = policyFile(
      "mine.hujson",
      `// my tailnet's own entries
{
  "groups": { "group:ops": ["ops@example.com"] },
  "tagOwners": {
    "tag:fleet-pi": ["group:ops"], // ops may tag Pis by hand
    "tag:ci": ["autogroup:admin"],
  },
  /* CI reaches the nodes over SSH */
  "grants": [{ "src": ["tag:ci"], "dst": ["tag:fleet-control", "tag:fleet-pi"], "ip": ["tcp:22"] }],
  "tests": [{ "src": "tag:ci", "proto": "tcp", "accept": ["tag:fleet-pi:22"] }],
  "randomizeClientPort": true,
}
`,
    );
    const program = await run(file, { ...API_KEY, "fleetkit:tailnetPolicyFile": path }, ["fleetkit:tailnetPolicyFile"]);
    const base = EXPECTED[file];
    expect(appliedPolicy(program)).toEqual({
      tagOwners: { "tag:fleet-control": ["autogroup:admin"], "tag:fleet-pi": ["autogroup:admin", "group:ops"], "tag:ci": ["autogroup:admin"] },
      grants: [...base.grants, { src: ["tag:ci"], dst: ["tag:fleet-control", "tag:fleet-pi"], ip: ["tcp:22"] }],
      tests: [...base.tests, { src: "tag:ci", proto: "tcp", accept: ["tag:fleet-pi:22"] }],
      groups: { "group:ops": ["ops@example.com"] },
      randomizeClientPort: true,
    });
  });

  it("warns that the pasted key is unused when API credentials are set", async () => {
    const warn = vi.spyOn(pulumi.log, "warn");
    try {
      const program = await run(file, { ...API_KEY, ...PASTED });
      expect(program.get("control-node-tailscale-install").inputs.stdin).toBe(`tailscaleAuthKey=${mintedKey("control-node")}\n`);
      expect(warn.mock.calls.map((c) => c[0])).toEqual([
        "fleetkit:tailscaleAuthKey is set but unused: with fleetkit:tailscaleApiKey the stack mints each node's own auth key; remove it with `pulumi config rm fleetkit:tailscaleAuthKey`.",
      ]);
    } finally {
      warn.mockRestore();
    }
  });

  it.each([
    ["an API key and an OAuth client", { ...API_KEY, "fleetkit:tailscaleOauthClientId": "kid", "fleetkit:tailscaleOauthClientSecret": "tskey-client-x" }, /^both fleetkit:tailscaleApiKey and an OAuth client \(fleetkit:tailscaleOauthClientId\/tailscaleOauthClientSecret\) are set; the Tailscale provider takes one kind of credential\./],
    ["an OAuth client id without its secret", { "fleetkit:tailscaleOauthClientId": "kid" }, /^fleetkit:tailscaleOauthClientSecret is not set: an OAuth client needs both its id and its secret\. Set it with `pulumi config set --secret fleetkit:tailscaleOauthClientSecret <value>`/],
    ["an OAuth client without tailscaleTagOwners", { "fleetkit:tailscaleOauthClientId": "kid", "fleetkit:tailscaleOauthClientSecret": "tskey-client-x" }, /^an OAuth client mints auth keys only for tags its own tag owns \(Tailscale KB 1215\), so fleetkit:tailscaleTagOwners must name the client's tag/],
    ["a tailscaleTagOwners that is not a list of owners", { ...API_KEY, "fleetkit:tailscaleTagOwners": JSON.stringify("tag:fleetkit") }, /^fleetkit:tailscaleTagOwners must be a list of tag owners \(tag:…, group:…, autogroup:… or a user's e-mail\)/],
    ["a policy file that is missing", { ...API_KEY, "fleetkit:tailnetPolicyFile": "/nonexistent/policy.hujson" }, /^\/nonexistent\/policy\.hujson:1:1 \(file\): cannot read the tailnet policy file named by fleetkit:tailnetPolicyFile \(ENOENT\)/],
  ])("stops with one clear paragraph on %s", async (_what, config, message) => {
    const err = await run(file, config, ["fleetkit:tailscaleOauthClientId", "fleetkit:tailscaleTagOwners", "fleetkit:tailnetPolicyFile"]).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(pulumi.RunError.isInstance(err)).toBe(true);
    expect(err?.message).toMatch(message);
  });

  it.each([
    ["not HuJSON", '{\n  "grants": [\n    { "src": ["*"] "dst": ["*"] }\n  ]\n}\n', "FILE:3:20: the tailnet policy file is not HuJSON (CommaExpected); fix it (JSON with comments and trailing commas) and run again."],
    ["a list, not an object", "[]\n", "FILE:1:1: a tailnet policy file must be one object ({ \"grants\": [...], \"tagOwners\": {...}, ... }); got a list."],
    ["grants that are not a list", '{\n  // mine\n  "grants": { "src": ["*"] }\n}\n', "FILE:3:3 grants: expected a list, got object; fix the section and run again."],
    ["tagOwners that are a list", '{ "tagOwners": ["tag:x"] }', "FILE:1:3 tagOwners: expected an object, got a list; fix the section and run again."],
  ])("refuses a policy file that is %s, naming file:line:column", async (what, text, message) => {
    const path = policyFile(`${what.replace(/\W+/g, "-")}.hujson`, text);
    const err = await run(file, { ...API_KEY, "fleetkit:tailnetPolicyFile": path }, ["fleetkit:tailnetPolicyFile"]).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(pulumi.RunError.isInstance(err)).toBe(true);
    expect(err?.message).toBe(message.replace("FILE", path));
  });
});
