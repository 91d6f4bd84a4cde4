import { describe, expect, it } from "vitest";
import { parseFleet } from "../../model/load.js";
import { resolveNode, resolveRole, resolveTargets } from "../../cli/targets.js";
import { UserError } from "../../model/errors.js";

const fleet = parseFleet(
  `fleet: t
defaults:
  claude: { version: 1.0.0 }
profiles:
  builder: [icecc-scheduler, iceccd]
  compiler: [iceccd]
  spare: [iceccd]
nodes:
  sched: { host: sched, os: debian, arch: x86_64, profile: builder }
  pi1: { host: pi1, os: raspios, arch: aarch64, profile: compiler }
  mac: { host: mac, os: macos, arch: aarch64, roles: [iceccd] }
  pi2: { host: pi2, os: raspios, arch: aarch64, profile: compiler }
`,
  "targets.yaml",
);

describe("resolveTargets", () => {
  it.each([
    [[], ["sched", "pi1", "mac", "pi2"]],
    [["all"], ["sched", "pi1", "mac", "pi2"]],
    [["mac"], ["mac"]],
    [["compiler"], ["pi1", "pi2"]],
    // the union, in file order, each node once
    [["pi2", "builder", "pi1"], ["sched", "pi1", "pi2"]],
    [["compiler", "pi1", "all"], ["sched", "pi1", "mac", "pi2"]],
  ])("%j → %j", (words, names) => {
    expect(resolveTargets(fleet, words).map((n) => n.name)).toEqual(names);
  });

  it.each([
    ["pi3", `fleet: "pi3" is not a node or profile of fleet t (targets.yaml) (did you mean pi1?). Nodes: sched, pi1, mac, pi2; profiles: builder, compiler, spare; or \`all\`.`],
    ["compilr", `fleet: "compilr" is not a node or profile of fleet t (targets.yaml) (did you mean compiler?). Nodes: sched, pi1, mac, pi2; profiles: builder, compiler, spare; or \`all\`.`],
    ["spare", "fleet: profile \"spare\" is defined in targets.yaml but no node uses it (no node has `profile: spare`); name a node or another profile."],
    // Object.prototype's members are not profiles (`word in profiles` found them)
    ...["toString", "constructor", "__proto__", "hasOwnProperty"].map((word) => [
      word,
      `fleet: "${word}" is not a node or profile of fleet t (targets.yaml). Nodes: sched, pi1, mac, pi2; profiles: builder, compiler, spare; or \`all\`.`,
    ]),
  ])("refuses %s with exit 2", (word, message) => {
    let err: unknown;
    try {
      resolveTargets(fleet, [word]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toBe(message);
  });
});

describe("resolveNode / resolveRole", () => {
  it("finds one node and one of its roles", () => {
    const node = resolveNode(fleet, "sched", "logs");
    expect(resolveRole(node, "iceccd", "logs")).toBe("iceccd");
  });
  it.each([
    [() => resolveNode(fleet, "compiler", "logs"), 'fleet logs: "compiler" is not a node of fleet t (targets.yaml); logs works on one node: sched, pi1, mac, pi2.'],
    [() => resolveNode(fleet, undefined, "restart"), "fleet restart: name a node (one of sched, pi1, mac, pi2)."],
    [() => resolveRole(resolveNode(fleet, "pi1", "logs"), "icecc-scheduler", "logs"), 'fleet logs: "icecc-scheduler" is not a role of node pi1 (did you mean iceccd?); its roles are iceccd.'],
    [() => resolveRole(resolveNode(fleet, "mac", "restart"), undefined, "restart"), "fleet restart: name a role of node mac; its roles are iceccd."],
  ])("refuses bad input %#", (call, message) => {
    expect(call).toThrow(message);
  });
});
