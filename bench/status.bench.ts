/**
 * Bench: `fleet status` over 3 live nodes plus 20 nodes that never answer finishes in about one per-node
 * dial timeout, because nodes are probed in parallel. Reported as a ratio against probing the same nodes
 * one after another, measured in the same run.
 *
 * Live nodes: a real OpenSSH server on three loopback addresses (test/cli/sshd.ts). Silent nodes: 20
 * addresses routed into a network namespace this bench creates, whose firewall drops every TCP packet
 * (no RST, no ICMP: the SYN just vanishes, like a powered-off Pi on the tailnet). Nothing outside this
 * machine is contacted; the namespace and veth are removed at the end, also on failure.
 *
 * Run alone with `npx tsx bench/status.bench.ts`; `npm run bench` runs it through bench/index.ts.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseFleet } from "../model/load.js";
import { fleetStatus } from "../cli/status.js";
import { LOOPBACK_HOSTS, startSshd } from "../test/cli/sshd.js";

const NS = `fk5bench${process.pid % 10000}`;
const HOST_IF = `${NS}h`.slice(0, 15);
const NS_IF = `${NS}n`.slice(0, 15);
/** /30 link between host and namespace, and the /24 of silent node addresses routed through it. */
const LINK_HOST = "10.252.0.1";
const LINK_NS = "10.252.0.2";
const SILENT_NET = "10.252.1";
const SILENT_COUNT = 20;
/** Per-node dial timeout (ssh ConnectTimeout) and overall per-node limit, seconds. */
const DIAL_SECONDS = 2;
const NODE_TIMEOUT_SECONDS = 4;

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
}

function createBlackhole(): void {
  sh("ip", ["netns", "add", NS]);
  sh("ip", ["link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF]);
  sh("ip", ["link", "set", NS_IF, "netns", NS]);
  sh("ip", ["addr", "add", `${LINK_HOST}/30`, "dev", HOST_IF]);
  sh("ip", ["link", "set", HOST_IF, "up"]);
  sh("ip", ["netns", "exec", NS, "ip", "addr", "add", `${LINK_NS}/30`, "dev", NS_IF]);
  sh("ip", ["netns", "exec", NS, "ip", "link", "set", NS_IF, "up"]);
  sh("ip", ["netns", "exec", NS, "ip", "link", "set", "lo", "up"]);
  // The silent addresses are local to the namespace, and every TCP packet to them is dropped.
  sh("ip", ["netns", "exec", NS, "ip", "route", "add", "local", `${SILENT_NET}.0/24`, "dev", "lo"]);
  sh("ip", ["netns", "exec", NS, "iptables", "-A", "INPUT", "-p", "tcp", "-j", "DROP"]);
  sh("ip", ["route", "add", `${SILENT_NET}.0/24`, "via", LINK_NS, "dev", HOST_IF]);
}

function removeBlackhole(): void {
  for (const [cmd, args] of [
    ["ip", ["route", "del", `${SILENT_NET}.0/24`]],
    ["ip", ["link", "del", HOST_IF]],
    ["ip", ["netns", "del", NS]],
  ] as const) {
    try {
      sh(cmd, [...args]);
    } catch {
      // already gone
    }
  }
}

/** One bench result: seconds for both ways and their ratio. */
export interface StatusBenchResult {
  name: string;
  parallelSeconds: number;
  sequentialSeconds: number;
  /** sequential / parallel: how many times faster the parallel status is. */
  ratio: number;
  /** The parallel run relative to one per-node dial timeout (≈ 1 means "about one timeout"). */
  parallelInDialTimeouts: number;
}

/** Runs the bench; prints and returns the result. Throws when the run is wrong (not only slow). */
export async function runStatusBench(log: (line: string) => void = console.log): Promise<StatusBenchResult> {
  const sshd = await startSshd();
  const dir = mkdtempSync(join(tmpdir(), "fleet-status-bench-"));
  process.env.FLEET_KNOWN_HOSTS = join(dir, "known_hosts");
  writeFileSync(process.env.FLEET_KNOWN_HOSTS, "");
  const onSignal = () => {
    removeBlackhole();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    createBlackhole();
    const live = LOOPBACK_HOSTS.slice(0, 3).map((h, i) => `  live${i + 1}: { host: ${h}, os: debian, arch: x86_64, roles: [iceccd] }`);
    const silent = Array.from({ length: SILENT_COUNT }, (_, i) => `  silent${i + 1}: { host: ${SILENT_NET}.${i + 1}, os: debian, arch: x86_64, roles: [iceccd] }`);
    const fleet = parseFleet(
      `fleet: bench
defaults:
  user: ${sshd.user}
  sshPort: ${sshd.port}
  sshKeyPath: ${sshd.keyPath}
  perDialTimeoutSeconds: ${DIAL_SECONDS}
  claude: { version: 1.0.0 }
nodes:
  sched: { host: ${LOOPBACK_HOSTS[3]}, os: debian, arch: x86_64, roles: [icecc-scheduler] }
${[...live, ...silent].join("\n")}
`,
      "bench.yaml",
    );
    const nodes = fleet.nodes.filter((n) => n.name !== "sched");
    const check = (reached: string[]) => {
      const expected = nodes.filter((n) => n.name.startsWith("live")).map((n) => n.name);
      if (JSON.stringify(reached) !== JSON.stringify(expected)) throw new Error(`bench run is wrong: reached ${reached.join(",")}, expected ${expected.join(",")}`);
    };

    let t = performance.now();
    const parallel = await fleetStatus(fleet, nodes, NODE_TIMEOUT_SECONDS);
    const parallelSeconds = (performance.now() - t) / 1000;
    check(parallel.nodes.filter((n) => n.reach === "ok").map((n) => n.node));

    t = performance.now();
    const reached: string[] = [];
    for (const n of nodes) {
      const r = await fleetStatus(fleet, [n], NODE_TIMEOUT_SECONDS);
      if (r.nodes[0].reach === "ok") reached.push(n.name);
    }
    const sequentialSeconds = (performance.now() - t) / 1000;
    check(reached);

    const result: StatusBenchResult = {
      name: `fleet status: 3 live + ${SILENT_COUNT} silent nodes, dial timeout ${DIAL_SECONDS} s`,
      parallelSeconds,
      sequentialSeconds,
      ratio: sequentialSeconds / parallelSeconds,
      parallelInDialTimeouts: parallelSeconds / DIAL_SECONDS,
    };
    log(
      `${result.name}: parallel ${parallelSeconds.toFixed(2)} s (${result.parallelInDialTimeouts.toFixed(2)} × the dial timeout), ` +
        `one after another ${sequentialSeconds.toFixed(2)} s → ${result.ratio.toFixed(1)}× faster`,
    );
    return result;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    removeBlackhole();
    await sshd.stop();
    rmSync(dir, { recursive: true, force: true });
    delete process.env.FLEET_KNOWN_HOSTS;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runStatusBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
