// @needs sshd ssh ssh-keygen icecc-scheduler iceccd
/**
 * `fleet status`'s icecc cluster: read from a real scheduler (Debian's icecc-scheduler and iceccd on
 * loopback, test/cli/icecc.ts) through `ssh -W` on the scheduler node (a real sshd, test/cli/sshd.ts),
 * matched against the fleet (a daemon the scheduler does not list makes its node unhealthy; a daemon no
 * node runs is marked), printed as the status's cluster section and carried in `--json`. A scheduler that
 * is not there, or a scheduler node ssh cannot reach, is one line on the scheduler's role.
 *
 * The fleet's scheduler port is icecc's fixed 8765 (templates/icecc); the test's scheduler runs on a free
 * port, so the SSH forward given to `iceccCluster` dials that port instead (asserting it was asked for 8765;
 * an error names the port ssh really dialed).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFleet } from "../../model/load.js";
import { formatIceccCluster, formatStatus, iceccCluster, nodeStatus, type StatusReport } from "../../cli/status.js";
import { sshForwardTransport, tcpTransport } from "../../cli/icecc-monitor.js";
import { sshTargetOf } from "../../cli/ssh.js";
import { parseProbe } from "../../cli/probe.js";
import { renderNodeBundles } from "../../roles/index.js";
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { startSshd, type TestSshd } from "./sshd.js";
import { freePort, startIcecc, type TestIcecc } from "./icecc.js";

let sshd: TestSshd;
let icecc: TestIcecc;
let fleet: Fleet;
let work: string;
const PLATFORM = process.arch === "arm64" ? "aarch64" : "x86_64";

function fleetText(sshPort: number): string {
  return `fleet: ice
defaults:
  user: ${sshd.user}
  sshPort: ${sshPort}
  sshKeyPath: ${sshd.keyPath}
  perDialTimeoutSeconds: 5
  claude: { version: 1.0.0 }
nodes:
  sched: { host: 127.0.0.1, os: debian, arch: x86_64, roles: [icecc-scheduler, iceccd] }
  cc1: { host: 127.0.0.2, os: debian, arch: x86_64, roles: [iceccd] }
  cc2: { host: 127.0.0.3, os: debian, arch: x86_64, roles: [iceccd] }
`;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "fleet-status-icecc-"));
  sshd = await startSshd();
  process.env.FLEET_KNOWN_HOSTS = sshd.knownHosts;
  // sched and cc1 run daemons; cc2's is not running; "stray" is a daemon no fleet node runs.
  icecc = await startIcecc([
    { name: "sched", maxJobs: 1 },
    { name: "cc1", maxJobs: 4 },
    { name: "stray", maxJobs: 2, noRemote: true },
  ]);
  fleet = parseFleet(fleetText(sshd.port), join(work, "fleet.yaml"));
}, 90_000);
afterAll(async () => {
  await icecc?.stop();
  await sshd?.stop();
  delete process.env.FLEET_KNOWN_HOSTS;
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The SSH forward status uses, on the scheduler node, to the test scheduler's port. */
function forward(f: Fleet, port: () => number) {
  const asked: string[] = [];
  const sched = f.nodes.find((n) => n.name === "sched")!;
  return {
    asked,
    transport: (host: string, p: number) => {
      asked.push(`${host}:${p}`);
      return sshForwardTransport(sshTargetOf(sched), host, port());
    },
  };
}

/** A complete probe of `node` in which every rendered role looks installed and running. */
function healthyProbe(f: Fleet, node: FleetNode) {
  const bundles = renderNodeBundles(f, node);
  const lines = ["fk-probe 1", ...bundles.flatMap((b) => [`marker\t${b.role}\t${b.hash}`, ...b.services.map((s) => `svc\t${b.role}\t${s.manager}\t${s.name}\tactive`)])];
  lines.push("disk\t/\t50000000000\t100000000000", "fk-probe-end");
  return { fleet: f, node, reach: "ok" as const, ms: 7, report: parseProbe(lines.join("\n")), bundles };
}

/**
 * The figures that change from run to run as placeholders: each load (and the padding after it, which
 * depends on its width: "7%", "100%") and how long the monitor listened.
 */
const steady = (text: string) => text.replace(/\b\d+% +(?=\S)/g, "N% ").replace(/\b\d+%/g, "N%").replace(/in \d+\.\d s/g, "in T s");

describe("the icecc cluster of fleet status", () => {
  it("is read through ssh -W on the scheduler node: daemons, totals, the iceccd node not connected; human and --json", async () => {
    const fwd = forward(fleet, () => icecc.port);
    const cluster = (await iceccCluster(fleet, fleet.nodes, 20, fwd.transport))!;
    expect(fwd.asked).toEqual(["127.0.0.1:8765"]);
    expect(cluster.error).toBeUndefined();
    expect(cluster.protocol).toBeGreaterThanOrEqual(43);
    expect(cluster.listenedMs).toBeLessThanOrEqual(1600);
    expect({ ...cluster, protocol: "P", listenedMs: "T", daemons: cluster.daemons.map((d) => ({ ...d, hostId: "#", load: "L", protocol: "P", features: "F" })) }).toEqual({
      scheduler: "sched",
      address: "127.0.0.1:8765",
      protocol: "P",
      daemons: [
        { hostId: "#", name: "cc1", ip: "127.0.0.1", platform: PLATFORM, maxJobs: 4, noRemote: false, load: "L", protocol: "P", features: "F", jobs: 0, inFleet: true },
        { hostId: "#", name: "sched", ip: "127.0.0.1", platform: PLATFORM, maxJobs: 1, noRemote: false, load: "L", protocol: "P", features: "F", jobs: 0, inFleet: true },
        { hostId: "#", name: "stray", ip: "127.0.0.1", platform: PLATFORM, maxJobs: 2, noRemote: true, load: "L", protocol: "P", features: "F", jobs: 0, inFleet: false },
      ],
      jobs: [],
      listenedMs: "T",
      totals: { daemons: 3, maxJobs: 7, jobs: 0 },
      notConnected: ["cc2"],
    });

    // The whole status, every node otherwise healthy: cc2's iceccd is the one problem.
    const nodes = fleet.nodes.map((n) => nodeStatus(healthyProbe(fleet, n), undefined, [], cluster));
    expect(nodes.map((n) => [n.node, n.healthy, n.problems])).toEqual([
      ["sched", true, []],
      ["cc1", true, []],
      ["cc2", false, ["iceccd: not connected to the icecc scheduler on sched"]],
    ]);
    const report: StatusReport = { fleet: fleet.name, healthy: false, nodes, icecc: cluster };
    const human = steady(formatStatus(report).replace(/\x1b\[[0-9;]*m/g, ""));
    expect(human).toBe(
      [
        "node   ssh  icecc-scheduler  iceccd  disk free",
        "sched  7ms  ✓                ✓       46.6 GiB",
        "cc1    7ms  ·                ✓       46.6 GiB",
        "cc2    7ms  ·                ✗       46.6 GiB",
        "",
        "✗ cc2: iceccd: not connected to the icecc scheduler on sched",
        "",
        `icecc cluster: scheduler sched at 127.0.0.1:8765 (protocol ${cluster.protocol})`,
        "  daemon                    ip         platform  jobs  load",
        `  cc1                       127.0.0.1  ${PLATFORM.padEnd(8)}  0/4   N%`,
        `  sched                     127.0.0.1  ${PLATFORM.padEnd(8)}  0/1   N%`,
        `  stray (not in the fleet)  127.0.0.1  ${PLATFORM.padEnd(8)}  0/2   N% no remote jobs`,
        "  3 daemons, 7 job slots, 0 jobs seen in flight in T s",
        "  ✗ iceccd on cc2 is not connected to the scheduler",
        "",
        "2/3 nodes healthy",
        "",
      ].join("\n"),
    );
    // --json carries the same cluster.
    expect(JSON.parse(JSON.stringify(report)).icecc).toEqual(cluster);
  }, 60_000);

  it.each([
    ["no scheduler listening on the node", async () => ({ sshPort: sshd.port, schedulerPort: await freePort() }), /^icecc scheduler 127\.0\.0\.1:8765: the connection ended during the protocol handshake: sshd on sched did not connect to 127\.0\.0\.1:\d+: nothing listens there, or its AllowTcpForwarding is off \(ssh: stdio forwarding failed\)$/],
    ["the scheduler node's sshd not answering", async () => ({ sshPort: await freePort(), schedulerPort: icecc.port }), /^icecc scheduler 127\.0\.0\.1:8765: the connection ended during the protocol handshake: ssh: connect to host 127\.0\.0\.1 port \d+: Connection refused$/],
  ])("says why in one line when it cannot be read: %s", async (_what, setup, error) => {
    const { sshPort, schedulerPort } = await setup();
    const f = parseFleet(fleetText(sshPort), join(work, "fleet.yaml"));
    const cluster = (await iceccCluster(f, f.nodes, 10, forward(f, () => schedulerPort).transport))!;
    expect(cluster.error).toMatch(error);
    expect(cluster).toMatchObject({ scheduler: "sched", address: "127.0.0.1:8765", protocol: null, daemons: [], jobs: [], notConnected: [] });
    // The scheduler's node carries it (iceccd nodes cannot be judged without the scheduler's list).
    const [sched, cc1] = f.nodes.map((n) => nodeStatus(healthyProbe(f, n), undefined, [], cluster));
    expect(sched.problems).toEqual([`icecc-scheduler: ${cluster.error}`]);
    expect(cc1.problems).toEqual([]);
    expect(formatIceccCluster(cluster).map((l) => l.replace(/\x1b\[[0-9;]*m/g, ""))).toEqual(["icecc cluster: scheduler sched at 127.0.0.1:8765", `  ✗ ${cluster.error}`]);
  }, 30_000);

  it("dials the scheduler's tailnet address when it is bound to tailscale0, and only when a probed node has an icecc role", async () => {
    const f = parseFleet(
      `fleet: ts
tailnet: example.ts.net
defaults:
  claude: { version: 1.0.0 }
nodes:
  hub: { host: 100.64.0.1, os: debian, arch: x86_64, roles: [tailscale, icecc-scheduler, iceccd] }
  web: { host: 100.64.0.2, os: debian, arch: x86_64, roles: [tailscale] }
`,
      "ts.yaml",
    );
    const asked: string[] = [];
    const closed = await freePort();
    const transport = (host: string, port: number) => (asked.push(`${host}:${port}`), tcpTransport("127.0.0.1", closed));
    expect(await iceccCluster(f, [f.nodes[1]], 5, transport)).toBeUndefined();
    const cluster = await iceccCluster(f, f.nodes, 5, transport);
    expect(asked).toEqual(["100.64.0.1:8765"]);
    expect(cluster?.error).toBe("icecc scheduler 100.64.0.1:8765: connection refused (no scheduler listening there)");
  });
});
