/**
 * The program is linear in the node count: `stacks/index.ts` under `setMocks` for generated fleets of 100
 * and 200 nodes in the shape of fleet.yaml (one hub with the scheduler, queue and ntfy, an aarch64 builder,
 * Raspberry Pis with AgentAPI and Macs, every node compiling and working). No Windows node: its host-side
 * script grows with the fleet's allow-list (about 3.6 characters per node) and passes cmd.exe's 8,191 near
 * 150 nodes, which roles/bundle.ts refuses to deliver (issue "fleetkit at 500 nodes": bundles as files). Role components
 * used to receive `dependsOn` as a Promise, and the SDK then walked the whole resource graph for unknowns
 * once per such input: 100 nodes cost 65 CPU s, 500 nodes 1,685. The check is a ratio from one run — CPU
 * per node at 200 against CPU per node at 100 — so it holds on a slow machine and fails when the cost per
 * node grows with the fleet (quadratic: 2×).
 */
import { describe, expect, it } from "vitest";
import { roleCreationOrder } from "../../stacks/plan.js";
import { loadFleet } from "../../model/load.js";
import { runProgram } from "./harness.js";
import { generatedFleet, writeFleet } from "./fleets.js";

const SECRETS = {
  "fleetkit:tailscaleAuthKey": "tskey-auth-scale",
  "fleetkit:anthropicApiKey": "sk-ant-scale",
  "fleetkit:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nscale\n-----END OPENSSH PRIVATE KEY-----\n",
};

/**
 * CPU seconds (user + system) of one program run of `file`, how many resources it registered, and the
 * bytes of all their inputs as the SDK sent them (JSON of the wire form): what the engine diffs and checkpoints.
 */
async function cpuOfRun(file: string): Promise<{ cpuSeconds: number; resources: number; inputBytes: number }> {
  const before = process.cpuUsage();
  const run = await runProgram({ "fleetkit:fleetFile": file, ...SECRETS }, Object.keys(SECRETS));
  const used = process.cpuUsage(before);
  const inputBytes = run.registrations.reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r.wire)), 0);
  return { cpuSeconds: (used.user + used.system) / 1e6, resources: run.registrations.length, inputBytes };
}

describe("the program at 100 and 200 nodes", () => {
  it("creates role components after what they wait for, across nodes, in one pass", () => {
    const fleet = loadFleet(writeFleet(generatedFleet(12)));
    const order = roleCreationOrder(fleet).map(([n, r]) => `${n}-${r}`);
    expect(new Set(order).size).toBe(order.length);
    expect(order.length).toBe(fleet.nodes.reduce((s, n) => s + n.roles.length, 0));
    // pi0 comes before nothing it needs: the hub's scheduler and queue, the builders' toolchains, its own Claude.
    const at = (name: string) => order.indexOf(name);
    for (const [later, earlier] of [
      ["pi0-iceccd", "hub-icecc-scheduler"],
      ["pi0-iceccd", "builder-toolchains"],
      ["pi0-iceccd", "hub-toolchains"],
      ["pi0-worker", "hub-queue"],
      ["pi0-agentapi", "pi0-claude"],
      ["mac1-claude", "mac1-tailscale"],
    ] as const) {
      expect(at(earlier), `${earlier} before ${later}`).toBeLessThan(at(later));
    }
  });

  it("costs no more CPU per node at 200 nodes than at 100 (ratio from one run)", async () => {
    await cpuOfRun(writeFleet(generatedFleet(20))); // warm-up: module loading and JIT
    const small = await cpuOfRun(writeFleet(generatedFleet(100)));
    const large = await cpuOfRun(writeFleet(generatedFleet(200)));
    const perNode = (r: { cpuSeconds: number }, n: number) => r.cpuSeconds / n;
    const ratio = perNode(large, 200) / perNode(small, 100);
    console.log(
      `program CPU: 100 nodes ${small.cpuSeconds.toFixed(1)} s (${small.resources} resources, ${(small.inputBytes / 1e6).toFixed(2)} MB inputs), ` +
        `200 nodes ${large.cpuSeconds.toFixed(1)} s (${large.resources}, ${(large.inputBytes / 1e6).toFixed(2)} MB); per-node ratio ${ratio.toFixed(2)}`,
    );
    expect(large.resources).toBeGreaterThan(2 * small.resources - 40);
    // Linear is 1; the Promise dependsOn made it about 2. 1.5 leaves room for noise, not for a quadratic term.
    expect(ratio).toBeLessThan(1.5);
  }, 600_000);
});
