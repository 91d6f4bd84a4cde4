/**
 * `fleet status [node|profile|all …] [--fleet FILE] [--json] [--timeout SECONDS]`: the health of every
 * node, probed in parallel (one SSH round trip per node, see `probe.ts`), each within a per-node timeout,
 * so an offline node is reported as offline and never holds up the rest. Replaces the reference's
 * `status.sh` / `fleet-health-check.sh` loops.
 *
 * Healthy means: SSH answers; every role's services are active under their service manager; every
 * rendered role has its install marker; Tailscale's BackendState is `Running` (tailscale role);
 * AgentAPI answers `GET /status` with 200 (agentapi role); the queue server answers `GET /healthz` with 200 on the queue node (queue role); the icecc
 * scheduler lists the node's daemon (iceccd role: the cluster as the scheduler's own monitor protocol
 * reports it, read through an SSH forward on the scheduler node, see {@link iceccCluster}); the queue server has seen the node's worker recently (worker role, when a queue token is
 * given: `GET /v1/nodes` of the runtime's queue API); the root filesystem has at least {@link MIN_FREE_BYTES} and {@link MIN_FREE_RATIO} free;
 * and no service answers where the fleet's allow-list says it must not (cli/exposure.ts: a TCP connect
 * from a probed node the rule does not allow, and from this machine when it is not an allowed source;
 * reported on the service's node as `exposed: agentapi on rpi1 is reachable from rpi2 (allowed: …)`).
 * Exit 0 all healthy, 1 anything unhealthy or offline, 2 bad input.
 */
import { parseVerb } from "./verb.js";
import { withSpinner } from "./spin.js";
import { chalk } from "zx";
import { loadFleetWithRoles } from "../roles/sources.js";
import { ROLE_NAMES } from "../model/schema.js";
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import { UserError } from "../model/errors.js";
import { probeNode, type NodeProbe } from "./probe.js";
import { roleDefinition } from "../roles/registry.js";
import type { AgentapiFact } from "../roles/agentapi/probe.js";
import { resolveTargets } from "./targets.js";
import type { ServiceState } from "./services.js";
import { fleetQueueUrl, nodeWithRole } from "../model/fleet.js";
import { QueueClient } from "../runtime/client.js";
import type { NodePresence } from "../runtime/api.js";
import { readToken } from "./args.js";
import { checkedRules, exposureChecks, exposureProblem, localExposures, probedExposures, type Exposure } from "./exposure.js";
import { localSchedulerHost } from "../roles/iceccd/render.js";
import { ICECC_SCHEDULER_PORT } from "../roles/reach.js";
import { sshTargetOf } from "./ssh.js";
import { monitorScheduler, sshForwardTransport, type IceccDaemon, type IceccJob, type MonitorTransport } from "./icecc-monitor.js";

/** Below this many free bytes on `/` a node is unhealthy (1 GiB). */
export const MIN_FREE_BYTES = 1024 ** 3;
/** Below this fraction of free space on `/` a node is unhealthy. */
export const MIN_FREE_RATIO = 0.05;

/** One role's health on one node. `ok: null` = could not be judged (the node was not probed). */
export interface RoleHealth {
  role: RoleName;
  ok: boolean | null;
  services: { name: string; manager: string; state: ServiceState }[];
  /** What is wrong, one phrase each; empty when ok. */
  problems: string[];
}

/** One node's row of `fleet status --json`. */
export interface NodeStatus {
  node: string;
  host: string;
  os: string;
  /** `ok`: probed; `offline`: SSH failed; `timeout`: no answer within the per-node timeout. */
  reach: "ok" | "offline" | "timeout";
  /** Milliseconds of the SSH round trip that ran the probe (connect + probe + close). */
  sshMs: number;
  tailscale: string | null;
  agentapi: AgentapiFact | null;
  disk: { availBytes: number; totalBytes: number } | null;
  /** The worker's presence as the queue server reports it (worker role only; null = not asked). */
  worker: { online: boolean; lastSeen: string | null; status: string | null } | null;
  /** This node's services found reachable from where the allow-list (roles/reach.ts) does not allow. */
  exposed: Exposure[];
  roles: RoleHealth[];
  healthy: boolean;
  /** Every problem on the node, in role order, e.g. `iceccd: iceccd.service is inactive`. */
  problems: string[];
}

/** The whole `fleet status --json` document. */
export interface StatusReport {
  fleet: string;
  healthy: boolean;
  nodes: NodeStatus[];
  /** Why worker presence could not be read from the queue (absent when it was, or no node runs a worker). */
  queue?: string;
  /** The icecc cluster as its scheduler reports it (absent when the fleet has no scheduler or no probed node has an icecc role). */
  icecc?: IceccClusterStatus;
}

/**
 * The icecc cluster of `fleet status`: what the scheduler's monitor protocol reported (cli/icecc-monitor.ts),
 * matched against the fleet.
 */
export interface IceccClusterStatus {
  /** The node with role icecc-scheduler. */
  scheduler: string;
  /** The address the monitor dialed from the scheduler node (`host:port`: its tailnet address when bound there, else loopback). */
  address: string;
  /** The negotiated icecream protocol version; null when the scheduler could not be read. */
  protocol: number | null;
  /** Why the scheduler could not be read (one line); absent when it was. */
  error?: string;
  /** Daemons connected to the scheduler, by name; `inFleet` false for one no fleet node runs. */
  daemons: (IceccDaemon & { inFleet: boolean })[];
  /** Jobs the scheduler announced while the monitor listened and that had not finished (it does not replay older ones). */
  jobs: IceccJob[];
  /** Milliseconds the monitor listened after logging in. */
  listenedMs: number;
  /** Sums over `daemons`: how many, their job slots (max jobs), jobs in flight. */
  totals: { daemons: number; maxJobs: number; jobs: number };
  /** Probed nodes with role iceccd whose daemon the scheduler does not list. */
  notConnected: string[];
}

/** How long the monitor listens after logging in, at most (ms); it stops early once every fleet daemon has reported. */
export const ICECC_MONITOR_WINDOW_MS = 1500;

/**
 * Reads the icecc cluster from the fleet's scheduler when any of `nodes` has an icecc role: a monitor login
 * (cli/icecc-monitor.ts) through `ssh -W` on the scheduler node to the address its scheduler listens on
 * (roles/iceccd/render.ts `localSchedulerHost`: the node's tailnet address when the scheduler is bound to
 * tailscale0, else 127.0.0.1) and port 8765, so it works however the scheduler's interface and the node
 * firewall are set. Never throws: a failure is the result's `error`. Undefined when there is nothing to read.
 * @param transport how to reach the scheduler (default: the SSH forward; tests pass a direct connection).
 */
export async function iceccCluster(
  fleet: Fleet,
  nodes: FleetNode[],
  timeoutSeconds: number,
  transport?: (host: string, port: number) => MonitorTransport,
): Promise<IceccClusterStatus | undefined> {
  const scheduler = nodeWithRole(fleet, "icecc-scheduler");
  if (!scheduler || !nodes.some((n) => n.roles.includes("iceccd") || n.roles.includes("icecc-scheduler"))) return undefined;
  const host = localSchedulerHost(fleet, scheduler);
  const port = ICECC_SCHEDULER_PORT;
  const fleetDaemons = fleet.nodes.filter((n) => n.roles.includes("iceccd")).map((n) => n.name);
  const base = { scheduler: scheduler.name, address: `${host.includes(":") ? `[${host}]` : host}:${port}` };
  const dial = transport ?? ((h: string, p: number) => sshForwardTransport(sshTargetOf(scheduler), h, p));
  try {
    const snap = await monitorScheduler(dial(host, port), { host, port, timeoutMs: timeoutSeconds * 1000, windowMs: ICECC_MONITOR_WINDOW_MS, expect: fleetDaemons });
    const listed = new Set(snap.daemons.map((d) => d.name));
    const daemons = snap.daemons.map((d) => ({ ...d, inFleet: fleetDaemons.includes(d.name) }));
    return {
      ...base,
      protocol: snap.scheduler.protocol,
      daemons,
      jobs: snap.jobs,
      listenedMs: snap.listenedMs,
      totals: { daemons: daemons.length, maxJobs: daemons.reduce((a, d) => a + d.maxJobs, 0), jobs: snap.jobs.length },
      notConnected: nodes.filter((n) => n.roles.includes("iceccd") && !listed.has(n.name)).map((n) => n.name),
    };
  } catch (err) {
    return { ...base, protocol: null, error: (err as Error).message, daemons: [], jobs: [], listenedMs: 0, totals: { daemons: 0, maxJobs: 0, jobs: 0 }, notConnected: [] };
  }
}

/**
 * What the queue server says about worker presence: a map node → presence, or why it could not be asked
 * (no token, unreachable, refused). `GET /v1/nodes` of the runtime's queue API, with a node token.
 */
export type QueuePresence = { ok: true; nodes: Map<string, NodePresence> } | { ok: false; reason: string };


/**
 * Asks the queue server which nodes' workers are present, within `timeoutSeconds`. Never throws.
 * @param token a node token of the queue (from `--token-file` or FLEET_TOKEN), undefined = not asked.
 */
export async function queuePresence(url: string, token: string | undefined, timeoutSeconds: number): Promise<QueuePresence> {
  if (!token) return { ok: false, reason: "not checked: no queue token (pass --token-file FILE or set FLEET_TOKEN)" };
  try {
    const client = new QueueClient(url, token);
    const res = await client.request<{ nodes: NodePresence[] }>("GET", "/v1/nodes", undefined, AbortSignal.timeout(timeoutSeconds * 1000));
    return { ok: true, nodes: new Map(res.nodes.map((n) => [n.node, n])) };
  } catch (err) {
    return { ok: false, reason: `queue ${url} not reachable: ${(err as Error).message}` };
  }
}

/**
 * Sends each node's health of `report` to the queue (`POST /v1/health`, an operator's token), where the
 * dashboard's fleet page shows it: the rows' node, reach, healthy, problems and per-role judgement. Never
 * throws: `{ ok: false, reason }` names what went wrong (unreachable, refused token, 4xx message).
 */
export async function sendHealth(url: string, token: string, report: StatusReport, timeoutSeconds = 10): Promise<{ ok: true } | { ok: false; reason: string }> {
  const body = {
    fleet: report.fleet,
    nodes: report.nodes.map((n) => ({ node: n.node, reach: n.reach, healthy: n.healthy, problems: n.problems, roles: n.roles.map((r) => ({ role: r.role, ok: r.ok, problems: r.problems })) })),
  };
  try {
    await new QueueClient(url, token).request("POST", "/v1/health", body, AbortSignal.timeout(timeoutSeconds * 1000));
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `queue ${url}: ${(err as Error).message}` };
  }
}

/**
 * Judges one probed node (with the queue's worker presence, the exposures of its services and the icecc
 * cluster when known: an iceccd the scheduler does not list, and on the scheduler's node a scheduler that
 * could not be read, are problems of those roles). Pure: same inputs, same status.
 */
export function nodeStatus(probe: NodeProbe, presence?: QueuePresence, exposed: Exposure[] = [], icecc?: IceccClusterStatus): NodeStatus {
  const { fleet, node, report } = probe;
  const base = { node: node.name, host: node.host, os: node.os, reach: probe.reach, sshMs: probe.ms, exposed };
  if (probe.reach !== "ok" || !report.complete) {
    const why = probe.reach === "ok" ? (probe.reason ?? "the probe did not finish") : `${probe.reach}: ${probe.reason ?? "no answer"}`;
    return {
      ...base,
      tailscale: null,
      agentapi: null,
      disk: null,
      worker: null,
      roles: node.roles.map((role) => ({ role, ok: null, services: [], problems: [] })),
      healthy: false,
      problems: [why, ...exposed.map(exposureProblem)],
    };
  }
  const roles: RoleHealth[] = node.roles.map((role) => {
    const bundle = probe.bundles.find((b) => b.role === role);
    let unseen: string | undefined;
    if (role === "worker" && presence?.ok) {
      const p = presence.nodes.get(node.name);
      if (!p?.online) unseen = `not seen by the queue ${p?.lastSeen ? `since ${p.lastSeen}` : "yet"}`;
    }
    if (!bundle) throw new Error(`no bundle for role ${role} of ${node.name}: every role renders (roles/registry.ts)`);
    const problems: string[] = [];
    if (!report.markers.get(role)) problems.push("not installed (no marker)");
    const services = report.services.filter((s) => s.role === role).map(({ name, manager, state }) => ({ name, manager, state }));
    for (const s of bundle.services) {
      const seen = services.find((x) => x.name === s.name);
      if (!seen) problems.push(`${s.name} not reported`);
      else if (seen.state !== "active") problems.push(`${s.name} is ${seen.state}`);
    }
    const check = roleDefinition(fleet, role).probe;
    if (check) problems.push(...check.judge(report.checks[role]));
    if (unseen) problems.push(unseen);
    if (role === "iceccd" && icecc?.notConnected.includes(node.name)) problems.push(`not connected to the icecc scheduler on ${icecc.scheduler}`);
    if (role === "icecc-scheduler" && icecc?.error !== undefined && icecc.scheduler === node.name) problems.push(icecc.error);
    return { role, ok: problems.length === 0, services, problems };
  });
  const problems = roles.filter((r) => r.ok === false).flatMap((r) => r.problems.map((p) => `${r.role}: ${p}`));
  const disk = report.disk ? { availBytes: report.disk.availBytes, totalBytes: report.disk.totalBytes } : null;
  if (disk && (disk.availBytes < MIN_FREE_BYTES || disk.availBytes < disk.totalBytes * MIN_FREE_RATIO)) {
    problems.push(`disk: only ${formatBytes(disk.availBytes)} free of ${formatBytes(disk.totalBytes)} on /`);
  }
  problems.push(...exposed.map(exposureProblem));
  return {
    ...base,
    // The probe facts `fleet status --json` has always shown at the top level (each role's fact is also in `roles`).
    tailscale: (report.checks.tailscale as string | undefined) ?? null,
    agentapi: (report.checks.agentapi as AgentapiFact | undefined) ?? null,
    disk,
    worker: workerOf(node, presence),
    roles,
    healthy: problems.length === 0,
    problems,
  };
}

function workerOf(node: FleetNode, presence: QueuePresence | undefined): NodeStatus["worker"] {
  if (!node.roles.includes("worker") || !presence?.ok) return null;
  const p = presence.nodes.get(node.name);
  return { online: p?.online ?? false, lastSeen: p?.lastSeen ?? null, status: p?.status ?? null };
}

/** Bytes as `12.3 GiB` / `512 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/**
 * Probes `nodes` in parallel, each within `timeoutSeconds` (dial included), and judges them; meanwhile the
 * services of `nodes` are tried from this machine and each probe tries the services it may not reach
 * (cli/exposure.ts). Resolves when the slowest node answers or times out; never rejects for network
 * trouble.
 * The icecc cluster is read from the scheduler at the same time ({@link iceccCluster}); a scheduler that
 * cannot be read makes the report unhealthy (and its node, when probed).
 * @param opts.localAddresses this machine's addresses for the exposure check (default: its interfaces').
 * @param opts.iceccTransport how to reach the icecc scheduler (default: `ssh -W` on its node).
 */
export async function fleetStatus(
  fleet: Fleet,
  nodes: FleetNode[],
  timeoutSeconds: number,
  queueToken?: string,
  opts: { localAddresses?: string[]; iceccTransport?: (host: string, port: number) => MonitorTransport } = {},
): Promise<StatusReport> {
  const url = fleetQueueUrl(fleet);
  const wantPresence = url !== undefined && nodes.some((n) => n.roles.includes("worker"));
  const presenceP = wantPresence ? queuePresence(url, queueToken, timeoutSeconds) : Promise.resolve(undefined);
  const targets = new Set(nodes.map((n) => n.name));
  const checks = exposureChecks(fleet, nodes);
  const localP = localExposures(fleet, checkedRules(fleet).filter((r) => targets.has(r.node)), { ...opts, connectSeconds: Math.min(3, timeoutSeconds) });
  const iceccP = iceccCluster(fleet, nodes, timeoutSeconds, opts.iceccTransport);
  const probes = await Promise.all(nodes.map((n) => probeNode(fleet, n, timeoutSeconds, checks.get(n.name) ?? [])));
  const presence = await presenceP;
  const exposures = [
    ...probes.flatMap((p) => probedExposures(fleet, p.node.name, checks.get(p.node.name) ?? [], p.report.reach.filter((r) => r.result === "open"))),
    ...(await localP),
  ];
  const icecc = await iceccP;
  const statuses = probes.map((p) => nodeStatus(p, presence, exposures.filter((e) => e.node === p.node.name), icecc));
  const report: StatusReport = { fleet: fleet.name, healthy: statuses.every((s) => s.healthy) && icecc?.error === undefined, nodes: statuses };
  if (presence && !presence.ok) report.queue = presence.reason;
  if (icecc) report.icecc = icecc;
  return report;
}

/** The human table: one row per node, ✓/✗ per role (· = role not on that node), then the problems. */
export function formatStatus(report: StatusReport): string {
  const roleCols = ROLE_NAMES.filter((r) => report.nodes.some((n) => n.roles.some((x) => x.role === r)));
  const header = ["node", "ssh", ...roleCols, "disk free"];
  const rows = report.nodes.map((n) => {
    const ssh = n.reach === "ok" ? chalk.green(`${n.sshMs}ms`) : chalk.red(n.reach);
    const cells = roleCols.map((r) => {
      const role = n.roles.find((x) => x.role === r);
      if (!role) return chalk.dim("·");
      if (role.ok === null) return chalk.yellow("?");
      return role.ok ? chalk.green("✓") : chalk.red("✗");
    });
    const disk = n.disk ? formatBytes(n.disk.availBytes) : "-";
    const name = n.healthy ? chalk.bold(n.node) : chalk.bold.red(n.node);
    return [name, ssh, ...cells, n.problems.some((p) => p.startsWith("disk:")) ? chalk.red(disk) : disk];
  });
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "").length;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i]))));
  const pad = (s: string, i: number) => s + " ".repeat(widths[i] - visible(s));
  const lines = [header.map((h, i) => chalk.dim(pad(h, i))).join("  "), ...rows.map((r) => r.map(pad).join("  ").trimEnd())];
  const bad = report.nodes.filter((n) => !n.healthy);
  if (bad.length) {
    lines.push("");
    for (const n of bad) for (const p of n.problems) lines.push(`${chalk.red("✗")} ${n.node}: ${p}`);
  }
  if (report.icecc) lines.push("", ...formatIceccCluster(report.icecc));
  if (report.queue) lines.push("", chalk.yellow(`worker presence ${report.queue}`));
  const healthy = report.nodes.length - bad.length;
  lines.push("", `${healthy}/${report.nodes.length} nodes healthy`);
  return lines.join("\n") + "\n";
}

/**
 * The cluster section of the human output: the scheduler, one row per daemon (platform, jobs in flight of
 * its max, load, no-remote), totals, the jobs seen, and the iceccd nodes the scheduler does not list.
 */
export function formatIceccCluster(c: IceccClusterStatus): string[] {
  const head = `icecc cluster: scheduler ${chalk.bold(c.scheduler)} at ${c.address}${c.protocol === null ? "" : ` (protocol ${c.protocol})`}`;
  if (c.error !== undefined) return [head, `  ${chalk.red("✗")} ${c.error}`];
  const rows = c.daemons.map((d) => [
    d.inFleet ? d.name : `${d.name} (not in the fleet)`,
    d.ip,
    d.platform,
    `${d.jobs}/${d.maxJobs}`,
    `${Math.round(d.load / 10)}%`,
    d.noRemote ? "no remote jobs" : "",
  ]);
  const header = ["daemon", "ip", "platform", "jobs", "load", ""];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `  ${r.map((v, i) => v.padEnd(widths[i])).join("  ")}`.trimEnd();
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const lines = [head];
  if (rows.length) lines.push(chalk.dim(line(header)), ...rows.map(line));
  lines.push(`  ${plural(c.totals.daemons, "daemon")}, ${plural(c.totals.maxJobs, "job slot")}, ${plural(c.totals.jobs, "job")} seen in flight in ${(c.listenedMs / 1000).toFixed(1)} s`);
  for (const j of c.jobs) lines.push(`  job ${j.id} ${j.file || "?"}: ${j.client ?? "?"} → ${j.state === "pending" ? "(choosing)" : (j.server ?? "?")}${j.state === "local" ? " (local)" : ""}`);
  for (const n of c.notConnected) lines.push(`  ${chalk.red("✗")} iceccd on ${n} is not connected to the scheduler`);
  return lines;
}

const USAGE = `usage: fleet status [node|profile|all …] [--fleet FILE] [--json] [--timeout SECONDS] [--token-file FILE] [--report]
  --fleet FILE       fleet file (default fleet.yaml)
  --token-file FILE  a queue token (mode 0600; or FLEET_TOKEN) to read worker presence from the queue
  --report           also send each node's health to the queue for the dashboard's fleet page (needs an operator's token)
  --json             print { fleet, healthy, nodes: [{ node, reach, sshMs, roles: [{ role, ok, services, problems }], … }],
                     icecc: { scheduler, protocol, daemons, jobs, totals, notConnected } }
  --timeout SECONDS  per-node limit, dial included (default: the fleet's perDialTimeoutSeconds + 10)
Exit 0 when every node is healthy, 1 when any node is unhealthy or offline or the report was not taken, 2 for bad input.
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseVerb(argv, { verb: "status", usage: USAGE, options: { fleet: { type: "string", default: "fleet.yaml" }, timeout: { type: "string" }, "token-file": { type: "string" }, json: { type: "boolean" }, report: { type: "boolean" } } });
  if (!parsed) return 0;
  const { values: args, positionals: words } = parsed;
  const fleet = await loadFleetWithRoles(args.fleet);
  const nodes = resolveTargets(fleet, words);
  const timeoutSeconds = parseTimeout(args.timeout, (nodes[0]?.perDialTimeoutSeconds ?? 10) + 10, "status");
  const token = args["token-file"] ? readToken(args["token-file"]) : process.env.FLEET_TOKEN;
  const queue = fleetQueueUrl(fleet);
  if (args.report && !queue) throw new UserError(`fleet status: --report sends the health to the queue, but no node of ${fleet.file} has role queue.`);
  if (args.report && !token) throw new UserError("fleet status: --report needs an operator's queue token: pass --token-file FILE or set FLEET_TOKEN.");
  const report = await withSpinner(`probing ${nodes.length} node(s)`, !!args.json, () => fleetStatus(fleet, nodes, timeoutSeconds, token));
  process.stdout.write(args.json ? JSON.stringify(report, null, 2) + "\n" : formatStatus(report));
  if (args.report) {
    const sent = await sendHealth(queue!, token!, report);
    process.stderr.write(sent.ok ? `fleet status: health of ${report.nodes.length} node(s) sent to ${queue}\n` : `fleet status: health not sent: ${sent.reason}\n`);
    if (!sent.ok) return 1;
  }
  return report.healthy ? 0 : 1;
}

/** Parses a `--timeout SECONDS` flag. @throws UserError (exit 2) unless a positive number. */
export function parseTimeout(value: unknown, fallback: number, verb: string): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`fleet ${verb}: --timeout expects a positive number of seconds, got "${String(value)}".`);
  return n;
}
