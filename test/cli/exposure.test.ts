/**
 * `fleet status`'s exposure check (cli/exposure.ts): which probed node tries which service, the probe
 * lines run for real by dash against real sockets on this machine, the check from this machine, and the
 * unhealthy status line. The hosts level (test/hosts/firewall.test.ts) runs it against real firewalls.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFleet, parseFleet } from "../../model/load.js";
import { checkedRules, exposureChecks, exposureProbeLines, exposureProblem, localExposures } from "../../cli/exposure.js";
import { renderNodeBundles } from "../../roles/index.js";
import { parseProbe, type NodeProbe } from "../../cli/probe.js";
import { nodeStatus } from "../../cli/status.js";

const mesh = loadFleet("fleet.yaml");
const names = (m: Map<string, { service: string; node: string }[]>) => Object.fromEntries([...m].map(([k, rules]) => [k, rules.map((r) => `${r.service}@${r.node}`)]));

describe("which probed node tries which service", () => {
  it("the nine-machine mesh, every node probed: AgentAPI (queue node only) and the scheduler's text port (its node only) are tried from the first node not allowed", () => {
    expect(names(exposureChecks(mesh, mesh.nodes))).toEqual({
      macbook1: ["icecc-scheduler-text@arch-orchestrator", "agentapi@arch-orchestrator", "agentapi@imac", "agentapi@rpi1", "agentapi@rpi2", "agentapi@rpi3"],
      imac: ["agentapi@macbook1"],
    });
  });

  it("only the probed nodes try: `fleet status rpi1` tries every other node's closed service from rpi1", () => {
    const rpi1 = mesh.nodes.filter((n) => n.name === "rpi1");
    expect(names(exposureChecks(mesh, rpi1))).toEqual({
      rpi1: ["icecc-scheduler-text@arch-orchestrator", "agentapi@arch-orchestrator", "agentapi@macbook1", "agentapi@imac", "agentapi@rpi2", "agentapi@rpi3"],
    });
  });

  it("a rule with CIDR blocks is tried only from a node whose address is outside them; UDP and open rules never", () => {
    const f = parseFleet(
      `fleet: t
defaults: { claude: { version: 1.0.0 } }
services: { ntfy: { allowFrom: [192.168.1.0/24] } }
nodes:
  hub: { host: 10.0.0.1, os: debian, arch: x86_64, docker: true, roles: [ntfy, icecc-scheduler, iceccd] }
  lan: { host: 192.168.1.5, os: debian, arch: x86_64, roles: [iceccd] }
  far: { host: 10.9.9.9, os: macos, arch: aarch64, roles: [tailscale] }
  named: { host: named, os: debian, arch: x86_64, roles: [tailscale] }
`,
      "t.yaml",
    );
    expect(names(exposureChecks(f, f.nodes))).toEqual({ lan: ["icecc-scheduler-text@hub"], far: ["icecc-scheduler@hub", "iceccd@hub", "ntfy@hub", "iceccd@lan"] });
    expect(checkedRules(f).map((r) => `${r.service}/${r.proto}`)).not.toContain("icecc-scheduler-discovery/udp");
  });
});

describe("the probe's connects, run by dash against real sockets", () => {
  let server: Server;
  let open: number;
  let closed: number;
  beforeAll(async () => {
    server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    open = (server.address() as { port: number }).port;
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    closed = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
  });
  afterAll(() => server.close());

  it("prints open for a listening port, closed for a refused one and for an address that never answers", () => {
    const fleetWith = (host: string, port: number) =>
      parseFleet(`fleet: t\ndefaults: { claude: { version: 1.0.0 }, budgetUsdPerSession: 1 }\nservices: { agentapi: { port: ${port} } }\nnodes:\n  a: { host: ${host}, os: debian, arch: x86_64, roles: [claude, agentapi] }\n  b: { host: b, os: debian, arch: x86_64, roles: [tailscale] }\n`, "t.yaml");
    const run = (host: string, port: number) => {
      const f = fleetWith(host, port);
      const lines = exposureProbeLines(f, checkedRules(f));
      return parseProbe(execFileSync("dash", ["-c", `${lines.join("\n")}\necho fk-probe-end\n`], { encoding: "utf8" })).reach;
    };
    const f = fleetWith("127.0.0.1", open);
    const sc = spawnSync("shellcheck", ["-s", "sh", "-"], { input: exposureProbeLines(f, checkedRules(f)).join("\n") + "\n", encoding: "utf8" });
    expect([sc.status, sc.stdout]).toEqual([0, ""]);
    expect(run("127.0.0.1", open)).toEqual([{ service: "agentapi", node: "a", port: open, result: "open" }]);
    expect(run("127.0.0.1", closed)).toEqual([{ service: "agentapi", node: "a", port: closed, result: "closed" }]);
    // TEST-NET-1 is never routed: the connect is given up after 3 seconds (or fails at once without a route).
    expect(run("192.0.2.1", 3284)).toEqual([{ service: "agentapi", node: "a", port: 3284, result: "closed" }]);
  });

  // The service must sit on a non-loopback address (a loopback host is this machine itself, never tried).
  const ext = Object.values(networkInterfaces()).flat().find((a) => a?.family === "IPv4" && !a.internal)?.address;
  it.skipIf(ext === undefined)("from this machine: reachable from a non-allowed address is an exposure; an allowed address, its own node or a closed port is not", async () => {
    const srv = createServer((c) => c.destroy());
    await new Promise<void>((r) => srv.listen(0, ext, r));
    const port = (srv.address() as { port: number }).port;
    try {
      const f = parseFleet(
        `fleet: t\ndefaults: { claude: { version: 1.0.0 }, budgetUsdPerSession: 1 }\nservices: { agentapi: { port: ${port} } }\n` +
          `nodes:\n  a: { host: ${ext}, os: debian, arch: x86_64, roles: [claude, agentapi] }\n  q: { host: 192.0.2.10, os: debian, arch: x86_64, roles: [queue] }\n  l: { host: 127.0.0.3, os: debian, arch: x86_64, roles: [claude, agentapi] }\n`,
        "t.yaml",
      );
      const rule = checkedRules(f).find((r) => r.service === "agentapi" && r.node === "a")!;
      // Pretending to be 198.51.100.7: not the queue node, not node a.
      expect(await localExposures(f, [rule], { localAddresses: ["198.51.100.7"] })).toEqual([
        { service: "agentapi", node: "a", port, from: `this machine (${ext})`, allowed: ["q"] },
      ]);
      // This machine is the queue node (allowed), or node a itself, or node l (a loopback host): not tried.
      expect(await localExposures(f, [rule], { localAddresses: ["192.0.2.10"] })).toEqual([]);
      expect(await localExposures(f, [rule], { localAddresses: [ext!] })).toEqual([]);
      expect(await localExposures(f, checkedRules(f).filter((r) => r.node === "l"), { localAddresses: ["198.51.100.7"] })).toEqual([]);
      expect(await localExposures(f, [{ ...rule, port: closed }], { localAddresses: ["198.51.100.7"] })).toEqual([]);
    } finally {
      srv.close();
    }
  });
});

describe("the status of a node with an exposed service", () => {
  it("is unhealthy with one line per exposure, also when the node itself is offline", () => {
    const rpi1 = mesh.nodes.find((n) => n.name === "rpi1")!;
    const bundles = renderNodeBundles(mesh, rpi1);
    const e = { service: "agentapi", node: "rpi1", port: 3284, from: "rpi2", allowed: ["arch-orchestrator"] };
    const lines = ["fk-probe 1", ...bundles.flatMap((b) => [`marker\t${b.role}\t${b.hash}`, ...b.services.map((s) => `svc\t${b.role}\t${s.manager}\t${s.name}\tactive`)])];
    const probe: NodeProbe = { fleet: mesh, node: rpi1, reach: "ok", ms: 5, report: parseProbe([...lines, "tailscale\tRunning", "agentapi\t200\tstable", "disk\t/\t50000000000\t100000000000", "fk-probe-end"].join("\n")), bundles };
    expect(nodeStatus(probe).problems).toEqual([]);
    const s = nodeStatus(probe, undefined, [e]);
    expect([s.healthy, s.problems, s.exposed]).toEqual([false, ["exposed: agentapi on rpi1 is reachable from rpi2 (allowed: arch-orchestrator)"], [e]]);
    const offline = nodeStatus({ ...probe, reach: "offline", reason: "Connection refused", report: parseProbe("") }, undefined, [{ ...e, service: "icecc-scheduler-text", allowed: [] }]);
    expect(offline.problems).toEqual(["offline: Connection refused", "exposed: icecc-scheduler-text on rpi1 is reachable from rpi2 (allowed: this node only)"]);
    expect(exposureProblem({ ...e, from: "this machine (100.64.0.9)", allowed: ["arch-orchestrator", "100.64.0.0/10"] })).toBe(
      "exposed: agentapi on rpi1 is reachable from this machine (100.64.0.9) (allowed: arch-orchestrator, 100.64.0.0/10)",
    );
  });
});
