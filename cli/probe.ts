/**
 * The node probe shared by `fleet status` and `fleet drift`: one generated POSIX sh script per node,
 * started with the bundles' own `remoteCommand` (as root; inside the WSL distro on Windows nodes, plus a
 * PowerShell probe of the host side there, run at the same time) in one SSH round trip, that prints one
 * tab-separated record per fact. Everything it looks at comes from the node's freshly rendered role
 * bundles (marker, file paths, services), so there is no second list of what a role installs.
 *
 * Records (one per line, fields separated by TAB):
 * - `fk-probe 1` first, `fk-probe-end` last (a report without the end line is incomplete);
 * - `marker ROLE HASH|-` — `$FK_STATE/roles/ROLE.hash`, `-` when absent;
 * - `file ROLE PATH SHA256|-` — sha256 of each rendered file as it is on the node;
 * - `svc ROLE MANAGER NAME STATE` — STATE one of {@link ServiceState};
 * - one record per role with a probe (roles/types.ts `RoleProbe`, in roles/<role>/probe.ts), tagged by the
 *   role: `tailscale STATE`, `agentapi HTTPCODE STATUS`, a user role's own (iceccd has none: `fleet status`
 *   asks the scheduler which daemons are connected, cli/icecc-monitor.ts);
 * - `disk PATH AVAIL_BYTES TOTAL_BYTES` — `df -Pk` of the root filesystem;
 * - `reach SERVICE NODE PORT open|closed|unchecked` — a TCP connect from this node to another node's service
 *   this node may not reach (cli/exposure.ts), when `fleet status` gives the probe such checks.
 */
import { ps, remoteCommand, sh } from "../roles/bundle.js";
import { renderNodeBundles } from "../roles/index.js";
import { platformFor } from "../roles/platform.js";
import type { Bundle, BundleService, ScriptTarget } from "../roles/types.js";
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import { SERVICE_STATES, serviceStateScript, type ServiceState } from "./services.js";
import { sshRun, sshTargetOf, type SshResult } from "./ssh.js";
import { exposureProbeLines } from "./exposure.js";
import type { ReachRule } from "../roles/reach.js";
import { ROLES, roleDefinition } from "../roles/registry.js";
import type { RoleProbe } from "../roles/types.js";

/** The probes of a fleet's roles by the tag of the record each prints (roles/types.ts `RoleProbe.record`). */
export type ProbeTable = ReadonlyMap<string, { role: RoleName; probe: RoleProbe }>;

/** The built-in roles' probes by record tag (what {@link parseProbe} reads when given no table). */
export const BUILTIN_PROBES: ProbeTable = new Map(
  Object.values(ROLES).flatMap((d) => (d.probe ? [[d.probe.record ?? d.name, { role: d.name, probe: d.probe }] as const] : [])),
);

const probeTables = new WeakMap<Fleet, ProbeTable>();

/** Every role probe of `fleet` (built-in roles and its user roles) by record tag; built once per fleet, not per probed node. */
export function probeTable(fleet: Fleet): ProbeTable {
  const cached = probeTables.get(fleet);
  if (cached) return cached;
  const roles = [...new Set(fleet.nodes.flatMap((n) => n.roles))];
  const table = new Map<string, { role: RoleName; probe: RoleProbe }>();
  for (const role of roles) {
    const probe = roleDefinition(fleet, role).probe;
    if (probe) table.set(probe.record ?? role, { role, probe });
  }
  probeTables.set(fleet, table);
  return table;
}

/**
 * The probe script for the bundles of `node` that run on `target` (`node` or `wsl`): markers, files and
 * services of each bundle, each role's own probe lines (roles/<role>/probe.ts), disk, and a connect to each
 * service of `reach` (rules this node is not allowed under, cli/exposure.ts). Pure.
 */
export function probeScript(fleet: Fleet, node: FleetNode, bundles: Bundle[], target: ScriptTarget, reach: ReachRule[] = []): string {
  const stateDir = platformFor(node).stateDir;
  const lines = [
    "#!/bin/sh",
    sh`# fleetkit probe of node ${node.name} (read-only). Rendered by fleet status / fleet drift.`,
    "set -u",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/homebrew/bin:$PATH",
    "T=$(printf '\\t')",
    "fk_sha() { if [ ! -f \"$1\" ]; then echo -; elif command -v sha256sum >/dev/null 2>&1; then sha256sum \"$1\" | cut -d' ' -f1; else shasum -a 256 \"$1\" | cut -d' ' -f1; fi; }",
    "echo 'fk-probe 1'",
  ];
  for (const b of bundles) {
    const marker = `${stateDir}/roles/${b.role}.hash`;
    lines.push(sh`fk_m=$(head -n1 ${marker} 2>/dev/null) || fk_m=-; echo "marker\t${b.role}\t\${fk_m:--}"`);
    for (const f of b.files) lines.push(sh`echo "file\t${b.role}\t${f.path}\t$(fk_sha ${f.path})"`);
    for (const s of b.services) {
      lines.push(`fk_s=$(\n${serviceStateScript(s, node)}\n)`, sh`echo "svc\t${b.role}\t${s.manager}\t${s.name}\t$fk_s"`);
    }
  }
  if (target !== "windows-host") {
    for (const role of node.roles) lines.push(...(roleDefinition(fleet, role).probe?.script(fleet, node, target) ?? []));
    lines.push("df -Pk / 2>/dev/null | awk -v t=\"$T\" 'NR==2 { printf \"disk%s/%s%.0f%s%.0f\\n\", t, t, $4*1024, t, $2*1024 }'");
    lines.push(...exposureProbeLines(fleet, reach));
  }
  lines.push("echo fk-probe-end");
  return lines.join("\n") + "\n";
}

/** What one probe reported, parsed. Absent facts are undefined (the node lacks the role). */
export interface ProbeReport {
  /** The end record was seen: every fact below was printed. */
  complete: boolean;
  /** Marker hash per role; null = no marker file. */
  markers: Map<RoleName, string | null>;
  files: { role: RoleName; path: string; sha256: string | null }[];
  services: { role: RoleName; manager: BundleService["manager"]; name: string; state: ServiceState }[];
  /**
   * Each probed role's fact as its probe parsed it (roles/types.ts `RoleProbe.parse`), by role: e.g.
   * `tailscale: "Running"`, `agentapi: { httpCode, status }`.
   */
  checks: Record<string, unknown>;
  disk?: { path: string; availBytes: number; totalBytes: number };
  /** Connects to other nodes' services this node may not reach, and whether each got through. */
  reach: { service: string; node: string; port: number; result: "open" | "closed" | "unchecked" }[];
  /** Lines the parser did not understand (shown in --json for debugging). */
  unparsed: string[];
}

/**
 * Parses probe output (the records listed in this module's docstring), each role's record with the probe
 * of `probes` that prints it. Pure; never throws: unknown lines are kept in `unparsed`, a missing end line
 * leaves `complete` false.
 */
export function parseProbe(stdout: string, probes: ProbeTable = BUILTIN_PROBES): ProbeReport {
  const report: ProbeReport = { complete: false, markers: new Map(), files: [], services: [], checks: {}, reach: [], unparsed: [] };
  for (const line of stdout.split("\n")) {
    if (line === "" || line === "fk-probe 1") continue;
    if (line === "fk-probe-end") {
      report.complete = true;
      continue;
    }
    const f = line.split("\t");
    const dash = (v: string | undefined) => (v === undefined || v === "-" || v === "" ? null : v);
    switch (f[0]) {
      case "marker":
        if (f.length === 3) {
          report.markers.set(f[1] as RoleName, dash(f[2]));
          continue;
        }
        break;
      case "file":
        if (f.length === 4) {
          report.files.push({ role: f[1] as RoleName, path: f[2], sha256: dash(f[3]) });
          continue;
        }
        break;
      case "svc":
        if (f.length === 5 && ["systemd", "launchd", "docker"].includes(f[2])) {
          const state = (SERVICE_STATES as readonly string[]).includes(f[4]) ? (f[4] as ServiceState) : "unknown";
          report.services.push({ role: f[1] as RoleName, manager: f[2] as BundleService["manager"], name: f[3], state });
          continue;
        }
        break;
      case "reach":
        if (f.length === 5 && /^\d+$/.test(f[3]) && ["open", "closed", "unchecked"].includes(f[4])) {
          report.reach.push({ service: f[1], node: f[2], port: Number(f[3]), result: f[4] as "open" | "closed" | "unchecked" });
          continue;
        }
        break;
      case "disk":
        if (f.length === 4 && /^\d+$/.test(f[2]) && /^\d+$/.test(f[3])) {
          report.disk = { path: f[1], availBytes: Number(f[2]), totalBytes: Number(f[3]) };
          continue;
        }
        break;
      default: {
        const p = probes.get(f[0]);
        const fact = p?.probe.parse(f.slice(1));
        if (p && fact !== undefined) {
          report.checks[p.role] = fact;
          continue;
        }
      }
    }
    report.unparsed.push(line);
  }
  return report;
}

/** The outcome of probing one node: the SSH result(s) and the merged report. */
export interface NodeProbe {
  /** The fleet the node belongs to (its role definitions judge the report). */
  fleet: Fleet;
  node: FleetNode;
  /** `ok` when every probe ran; otherwise the first failing call's reach. */
  reach: SshResult["reach"];
  /** Wall-clock ms of the SSH round trip (the slowest call when a node needs two). */
  ms: number;
  /** Why the node could not be probed (offline, timeout, probe failed). */
  reason?: string;
  report: ProbeReport;
  bundles: Bundle[];
}

/**
 * The probe for a Windows node's host side (PowerShell, target `windows-host`): the role markers Fk-Finish
 * writes under `$env:ProgramData\fleetkit\roles` and each host-side role's own probe lines
 * (`RoleProbe.windowsHostScript`, e.g. tailscaled's BackendState from the Windows Tailscale CLI). Same
 * records as {@link probeScript}; Windows host bundles place no files and list no services. Pure.
 */
export function windowsHostProbeScript(fleet: Fleet, node: FleetNode, bundles: Bundle[]): string {
  const lines = [
    ps`# fleetkit probe of node ${node.name}, Windows host side (read-only). Rendered by fleet status / fleet drift.`,
    "$ErrorActionPreference = 'SilentlyContinue'",
    "$T = [char]9",
    "Write-Output 'fk-probe 1'",
    "$FkRoles = Join-Path (Join-Path $env:ProgramData 'fleetkit') 'roles'",
  ];
  for (const b of bundles) {
    lines.push(
      ps`$p = Join-Path $FkRoles '${b.role}.hash'`,
      "if (Test-Path -LiteralPath $p) { $h = ([string](Get-Content -LiteralPath $p -TotalCount 1)).Trim() } else { $h = '-' }",
      ps`Write-Output ('marker' + $T + '${b.role}' + $T + $h)`,
    );
  }
  for (const b of bundles) lines.push(...(roleDefinition(fleet, b.role).probe?.windowsHostScript?.(fleet, node) ?? []));
  lines.push("Write-Output 'fk-probe-end'");
  return lines.join("\n") + "\n";
}

/**
 * Merges the reports of a node's two probes (its WSL distro and its Windows host side): complete only when
 * both are; a role's fact from the host side wins (Tailscale: WSL shares the host's network). Pure.
 */
export function mergeReports(linux: ProbeReport, host: ProbeReport): ProbeReport {
  const merged: ProbeReport = {
    ...linux,
    complete: linux.complete && host.complete,
    markers: new Map([...linux.markers, ...host.markers]),
    files: [...linux.files, ...host.files],
    services: [...linux.services, ...host.services],
    checks: { ...linux.checks, ...host.checks },
    reach: [...linux.reach, ...host.reach],
    unparsed: [...linux.unparsed, ...host.unparsed],
  };
  return merged;
}

/**
 * Probes `node` in one SSH round trip: the POSIX probe on Linux and macOS; on a Windows node two calls
 * at once, one into the WSL distro and one to the host side (PowerShell) when it has host-side roles.
 * Never throws for network trouble.
 * @param timeoutSeconds overall limit per SSH call, dial included.
 * @param reach services of other nodes this node may not reach, to try from it (`fleet status`).
 */
export async function probeNode(fleet: Fleet, node: FleetNode, timeoutSeconds: number, reach: ReachRule[] = []): Promise<NodeProbe> {
  // The same render `pulumi up` ships (every role renders: roles/registry.ts).
  const bundles = renderNodeBundles(fleet, node);
  const posixTarget: ScriptTarget = node.os === "windows-wsl" ? "wsl" : "node";
  const probed = bundles.filter((b) => b.target !== "windows-host");
  const hostSide = bundles.filter((b) => b.target === "windows-host");
  const target = sshTargetOf(node);
  const [result, hostResult] = await Promise.all([
    sshRun(target, remoteCommand(node, posixTarget, probeScript(fleet, node, probed, posixTarget, reach)), { timeoutSeconds }),
    hostSide.length ? sshRun(target, remoteCommand(node, "windows-host", windowsHostProbeScript(fleet, node, hostSide)), { timeoutSeconds }) : undefined,
  ]);
  const probes = probeTable(fleet);
  let report = parseProbe(result.reach === "ok" ? result.stdout : "", probes);
  const calls = [{ r: result, report }];
  if (hostResult) {
    const hostReport = parseProbe(hostResult.reach === "ok" ? hostResult.stdout.replace(/\r/g, "") : "", probes);
    calls.push({ r: hostResult, report: hostReport });
    report = mergeReports(report, hostReport);
  }
  const failed = calls.find((c) => c.r.reach !== "ok") ?? calls.find((c) => !c.report.complete);
  let reason: string | undefined;
  if (failed) {
    reason = failed.r.reach !== "ok" ? failed.r.reason : `the probe did not finish (${failed.r.stderr.trim().split("\n").at(-1) || `exit code ${failed.r.exitCode}`})`;
  }
  const probe: NodeProbe = {
    fleet,
    node,
    reach: calls.find((c) => c.r.reach !== "ok")?.r.reach ?? "ok",
    ms: Math.max(...calls.map((c) => c.r.ms)),
    report,
    bundles,
  };
  if (reason !== undefined) probe.reason = reason;
  return probe;
}
