/**
 * The fleet's allow-list (roles/reach.ts), which both the node firewalls and the tailnet policy read: exact
 * rules for the real fleets, and the ntfy `allowFrom` forms.
 */
import { describe, expect, it } from "vitest";
import { loadFleet, parseFleet } from "../../model/load.js";
import { fleetReach, nodeReach, TAILNET_CIDRS } from "../../roles/reach.js";
import { readFileSync } from "node:fs";

const mesh = loadFleet("fleet.yaml");
const remote = loadFleet("examples/remote-tasks.fleet.yaml");
const node = (fleet: typeof mesh, name: string) => fleet.nodes.find((n) => n.name === name)!;
const brief = (rules: ReturnType<typeof fleetReach>) => rules.map((r) => `${r.node} ${r.service} ${r.proto}/${r.port} <- ${[...r.fromNodes, ...r.fromCidrs].join(",") || "(loopback)"}${r.open ? " OPEN" : ""}`);

describe("reach rules", () => {
  const compilers = "arch-orchestrator,macbook1,imac,macbook2,rpi1,rpi2,rpi3,windows-desktop,windows-laptop";
  it("nine-machine mesh: the orchestrator's services", () => {
    expect(brief(nodeReach(mesh, node(mesh, "arch-orchestrator")))).toEqual([
      `arch-orchestrator icecc-scheduler tcp/8765 <- ${compilers}`,
      `arch-orchestrator icecc-scheduler-discovery udp/8765 <- ${compilers}`,
      "arch-orchestrator icecc-scheduler-text tcp/8766 <- (loopback)",
      `arch-orchestrator iceccd tcp/10245 <- ${compilers}`,
      "arch-orchestrator agentapi tcp/3284 <- arch-orchestrator",
      `arch-orchestrator ntfy tcp/8091 <- ${compilers},${TAILNET_CIDRS.join(",")}`,
      `arch-orchestrator queue tcp/8787 <- ${compilers}`,
    ]);
  });

  it("nine-machine mesh: an agent's AgentAPI is reachable from the queue node only; a workstation listens on iceccd only", () => {
    expect(brief(nodeReach(mesh, node(mesh, "rpi1")))).toEqual([`rpi1 iceccd tcp/10245 <- ${compilers}`, "rpi1 agentapi tcp/3284 <- arch-orchestrator"]);
    expect(brief(nodeReach(mesh, node(mesh, "macbook2")))).toEqual([`macbook2 iceccd tcp/10245 <- ${compilers}`]);
    expect(fleetReach(mesh)).toHaveLength(7 + 5 * 2 + 3);
  });

  it("remote-tasks: the Pi's queue and ntfy; the Macs listen on nothing", () => {
    expect(brief(fleetReach(remote))).toEqual([
      `raspberrypi ntfy tcp/8091 <- macbook-air,macbook-pro,raspberrypi,${TAILNET_CIDRS.join(",")}`,
      "raspberrypi queue tcp/8787 <- macbook-air,macbook-pro,raspberrypi",
    ]);
  });

  it.each([
    [["fleet"], "macbook-air,macbook-pro,raspberrypi", false],
    [["tailnet"], TAILNET_CIDRS.join(","), false],
    [["192.168.1.0/24", "fd00::/8"], "192.168.1.0/24,fd00::/8", false],
    [["anywhere", "fleet"], "macbook-air,macbook-pro,raspberrypi", true],
  ])("ntfy allowFrom %j", (allowFrom, from, open) => {
    const text = readFileSync("examples/remote-tasks.fleet.yaml", "utf8").replace("topic: claude-tasks", `topic: claude-tasks\n    allowFrom: ${JSON.stringify(allowFrom)}`);
    const fleet = parseFleet(text, "remote.yaml");
    const [ntfy] = nodeReach(fleet, node(fleet, "raspberrypi"));
    expect([ntfy.service, [...ntfy.fromNodes, ...(open ? [] : ntfy.fromCidrs)].join(","), ntfy.open]).toEqual(["ntfy", from, open]);
  });

  it.each([
    [[], "raspberrypi queue tcp/8787 <- macbook-air,macbook-pro,raspberrypi", "every fleet node submits and claims tasks (each with its own token)"],
    [["tailnet"], `raspberrypi queue tcp/8787 <- macbook-air,macbook-pro,raspberrypi,${TAILNET_CIDRS.join(",")}`, "every fleet node submits and claims tasks (each with its own token); services.queue.allowFrom: tailnet"],
    [["192.168.1.0/24"], "raspberrypi queue tcp/8787 <- macbook-air,macbook-pro,raspberrypi,192.168.1.0/24", "every fleet node submits and claims tasks (each with its own token); services.queue.allowFrom: 192.168.1.0/24"],
    [["anywhere"], "raspberrypi queue tcp/8787 <- macbook-air,macbook-pro,raspberrypi OPEN", "every fleet node submits and claims tasks (each with its own token); services.queue.allowFrom: anywhere"],
  ])("queue allowFrom %j: people reach the API and dashboard from there too", (allowFrom, rule, why) => {
    const text = readFileSync("examples/remote-tasks.fleet.yaml", "utf8").replace("services:", `services:\n  queue: { allowFrom: ${JSON.stringify(allowFrom)} }`);
    const fleet = parseFleet(text, "remote.yaml");
    const queue = nodeReach(fleet, node(fleet, "raspberrypi")).filter((r) => r.service === "queue");
    expect([brief(queue), queue.map((r) => r.why)]).toEqual([[rule], [why]]);
  });
});
