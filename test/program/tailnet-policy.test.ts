/**
 * The tailnet policy's pieces that the three real fleets do not reach: ntfy's `allowFrom` forms as grant
 * sources and tests, a node without a profile, a profile whose tag would collide with a node's, and the
 * merge of the user's entries. Pure functions (stacks/tailnet-policy.ts), no Pulumi.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseFleet } from "../../model/load.js";
import { fleetTailnetPolicy, mergeTailnetPolicy, tailnetTags } from "../../stacks/tailnet-policy.js";
import { UserError } from "../../model/errors.js";

const remote = readFileSync("examples/remote-tasks.fleet.yaml", "utf8");
const hub = "tag:fleet-pi-hub";
const fleetTags = ["tag:fleet-desk", "tag:fleet-node-macbook-pro", hub];

describe("ntfy allowFrom in the tailnet policy (remote-tasks: the Pi's ntfy on 8091)", () => {
  it.each<[string, string[], string[], string[], string[]]>([
    // allowFrom, the ntfy grant's sources and ports (the queue's shares a grant when its sources are the same), the tags the tests deny ntfy
    ["fleet", ["fleet"], fleetTags, ["tcp:8091", "tcp:8787"], []],
    ["tailnet", ["tailnet"], ["autogroup:member", "autogroup:tagged"], ["tcp:8091"], []],
    ["a LAN block", ["192.168.1.0/24"], ["192.168.1.0/24"], ["tcp:8091"], fleetTags],
    ["fleet and a LAN block", ["fleet", "192.168.1.0/24"], [...fleetTags, "192.168.1.0/24"], ["tcp:8091"], []],
    ["anywhere", ["anywhere", "fleet"], ["*"], ["tcp:8091"], []],
  ])("%s", (_what, allowFrom, sources, ports, denied) => {
    const fleet = parseFleet(remote.replace("topic: claude-tasks", `topic: claude-tasks\n    allowFrom: ${JSON.stringify(allowFrom)}`), "remote.yaml");
    const policy = fleetTailnetPolicy(fleet);
    expect(policy.grants.filter((g) => g.ip.includes("tcp:8091"))).toEqual([{ src: sources, dst: [hub], ip: ports }]);
    const deniedBy = policy.tests.filter((t) => t.deny?.includes(`${hub}:8091`)).map((t) => t.src);
    const acceptedBy = policy.tests.filter((t) => t.accept?.includes(`${hub}:8091`)).map((t) => t.src);
    expect(deniedBy).toEqual(denied);
    // An open port is asserted neither way: nothing a user adds can make it "less open".
    expect(acceptedBy).toEqual(allowFrom.includes("anywhere") ? [] : fleetTags.filter((t) => !denied.includes(t)));
  });
});

describe("tags", () => {
  it("gives a node without a profile its own tag, owned like the rest", () => {
    const fleet = parseFleet(remote.replace("    profile: desk\n    budgetUsdPerSession: 5", "    roles: [tailscale, claude]\n    budgetUsdPerSession: 5"), "remote.yaml");
    expect([...tailnetTags(fleet)]).toEqual([
      ["macbook-air", "tag:fleet-node-macbook-air"],
      ["macbook-pro", "tag:fleet-node-macbook-pro"],
      ["raspberrypi", hub],
    ]);
    expect(fleetTailnetPolicy(fleet).tagOwners).toEqual({
      "tag:fleet-node-macbook-air": ["autogroup:admin"],
      "tag:fleet-node-macbook-pro": ["autogroup:admin"],
      [hub]: ["autogroup:admin"],
    });
  });

  it("refuses a profile named node-<node> for a node with a tag of its own, naming both", () => {
    const fleet = parseFleet(remote.replace("  pi-hub: [tailscale, claude, queue, worker, ntfy]", "  pi-hub: [tailscale, claude, queue, worker, ntfy]\n  node-macbook-pro: [tailscale]"), "remote.yaml");
    let err: unknown;
    try {
      tailnetTags(fleet);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(
      'remote.yaml: profile "node-macbook-pro" and node macbook-pro would both be Tailscale tag tag:fleet-node-macbook-pro; rename the profile (the tailnet policy tags nodes by profile, and a node outside one by its name).',
    );
  });
});

describe("mergeTailnetPolicy", () => {
  const base = { tagOwners: { "tag:fleet-a": ["autogroup:admin"] }, grants: [{ src: ["tag:fleet-a"], dst: ["tag:fleet-a"], ip: ["tcp:1"] }], tests: [] };

  it("appends lists, adds map keys and owners, keeps fleetkit's owners first, takes other sections as written", () => {
    expect(
      mergeTailnetPolicy(base, {
        tagOwners: { "tag:fleet-a": ["group:ops", "autogroup:admin"], "tag:ci": ["autogroup:admin"] },
        acls: [{ action: "accept", src: ["*"], dst: ["*:*"] }],
        ssh: [{ action: "check", src: ["autogroup:member"], dst: ["autogroup:self"], users: ["autogroup:nonroot"] }],
        disableIPv4: false,
      }),
    ).toEqual({
      tagOwners: { "tag:fleet-a": ["autogroup:admin", "group:ops"], "tag:ci": ["autogroup:admin"] },
      grants: base.grants,
      tests: [],
      acls: [{ action: "accept", src: ["*"], dst: ["*:*"] }],
      ssh: [{ action: "check", src: ["autogroup:member"], dst: ["autogroup:self"], users: ["autogroup:nonroot"] }],
      disableIPv4: false,
    });
    // The input policy is not changed.
    expect(base.tagOwners).toEqual({ "tag:fleet-a": ["autogroup:admin"] });
  });
});
