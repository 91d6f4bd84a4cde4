/**
 * `fleet drift [node|profile|all …] [--fleet FILE] [--stack NAME] [--state auto|required|skip] [--json]`:
 * is the live fleet still what fleet.yaml renders? Two checks, both reported:
 *
 * 1. Live (over SSH, one probe per node in parallel, see `probe.ts`): for every role with a renderer,
 *    the node's install marker (`$FK_STATE/roles/<role>.hash`, written by each install) must exist and
 *    equal the bundle hash rendered now; every rendered file must exist with the rendered content (sha256
 *    compared); every service of the role must be active.
 * 2. State (when the Pulumi CLI works here): `pulumi preview --refresh --expect-no-changes --json` for the
 *    stack, summarised. That command uses one non-zero exit for "changes" and "error" alike
 *    (FIELD-NOTES), so its JSON is parsed to tell them apart.
 *
 * Exit 0 clean; 1 drift found (even when some nodes could not be checked); 2 nothing drifted but
 * something could not be checked (an offline node, a failed preview, `--state required` without a CLI)
 * or bad input.
 */
import { parseVerb } from "./verb.js";
import { withSpinner } from "./spin.js";
import { $, chalk, which } from "zx";
import { loadFleetWithRoles } from "../roles/sources.js";
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import { UserError } from "../model/errors.js";
import { sha256Hex } from "../roles/bundle.js";
import { probeNode, type NodeProbe } from "./probe.js";
import { resolveTargets } from "./targets.js";
import { parseTimeout } from "./status.js";

/** One way a node differs from the current render. */
export interface DriftFinding {
  node: string;
  role: RoleName;
  kind: "marker-missing" | "marker-differs" | "file-missing" | "file-changed" | "service-not-running";
  /** The file (for file-*) or service name (for service-not-running). */
  file?: string;
  service?: string;
  /**
   * What the render says: the bundle hash or the file's sha256 (`service-not-running`: `active`). File
   * hashes are left out for private files (mode without group/other bits).
   */
  expected?: string;
  /** What the node has: its marker hash, the file's sha256, or the service state. */
  actual?: string;
}

/** The live check of one node. */
export interface NodeDrift {
  node: string;
  /** False when the node could not be probed (then `reason` says why and `findings` is empty). */
  checked: boolean;
  reason?: string;
  findings: DriftFinding[];
}

/** The state check's outcome. */
export interface StateCheck {
  status: "clean" | "drift" | "error" | "skipped";
  /** One line a person reads, e.g. `2 resources would change` or `state check skipped: …`. */
  summary: string;
  /** Resources the preview would change: Pulumi URN and operation (`update`, `create`, `delete`, …). */
  changes: { urn: string; op: string }[];
}

/** The whole `fleet drift --json` document. */
export interface DriftReport {
  fleet: string;
  /** 0 clean, 1 drift, 2 could not check (the process exit code). */
  exitCode: 0 | 1 | 2;
  live: NodeDrift[];
  state: StateCheck;
}

/** Compares one node's probe with its render. Pure. */
export function nodeDrift(probe: NodeProbe): NodeDrift {
  const name = probe.node.name;
  if (probe.reach !== "ok" || !probe.report.complete) {
    return { node: name, checked: false, reason: probe.reach === "ok" ? probe.reason : `${probe.reach}: ${probe.reason ?? "no answer"}`, findings: [] };
  }
  const { report } = probe;
  const findings: DriftFinding[] = [];
  for (const b of probe.bundles) {
    const marker = report.markers.get(b.role) ?? null;
    if (marker === null) findings.push({ node: name, role: b.role, kind: "marker-missing", expected: b.hash });
    else if (marker !== b.hash) findings.push({ node: name, role: b.role, kind: "marker-differs", expected: b.hash, actual: marker });
    for (const f of b.files) {
      const seen = report.files.find((x) => x.role === b.role && x.path === f.path);
      const expected = sha256Hex(f.content);
      // A private file (no group/other access) may hold a secret once edited by hand: its hashes stay out of
      // the report, which CI uploads as an artifact.
      const hashes = (f.mode & 0o077) === 0 ? {} : { expected, ...(seen?.sha256 ? { actual: seen.sha256 } : {}) };
      if (!seen || seen.sha256 === null) findings.push({ node: name, role: b.role, kind: "file-missing", file: f.path, ...(f.mode & 0o077 ? { expected } : {}) });
      else if (seen.sha256 !== expected) findings.push({ node: name, role: b.role, kind: "file-changed", file: f.path, ...hashes });
    }
    for (const s of b.services) {
      const seen = report.services.find((x) => x.role === b.role && x.name === s.name);
      const state = seen?.state ?? "unknown";
      if (state !== "active") findings.push({ node: name, role: b.role, kind: "service-not-running", service: s.name, expected: "active", actual: state });
    }
  }
  return { node: name, checked: true, findings };
}

/** Operations in a preview that change nothing. */
const NO_CHANGE_OPS = new Set(["same", "read", "refresh", "discard"]);

/**
 * Reads the output of `pulumi preview --refresh --expect-no-changes --json` and its exit code. Pure.
 * The JSON is Pulumi's preview digest: `{ steps: [{ op, urn, … }], changeSummary: { op: count },
 * diagnostics: [{ message, severity }] }` (pkg/backend/display/json.go). Drift = any step whose op
 * changes something; error = an error diagnostic other than the expect-no-changes one, unparsable
 * output, or a non-zero exit with no changes.
 */
export function parsePreview(stdout: string, stderr: string, exitCode: number): StateCheck {
  let digest: { steps?: { op?: string; urn?: string }[]; changeSummary?: Record<string, number>; diagnostics?: { message?: string; severity?: string }[] };
  try {
    const start = stdout.indexOf("{");
    digest = JSON.parse(start >= 0 ? stdout.slice(start) : stdout);
  } catch {
    const why = (stderr.trim() || stdout.trim()).split("\n").filter(Boolean).at(-1) ?? `exit code ${exitCode}`;
    return { status: "error", summary: `pulumi preview failed: ${why}`, changes: [] };
  }
  const changes = (digest.steps ?? [])
    .filter((s) => s.op !== undefined && !NO_CHANGE_OPS.has(s.op))
    .map((s) => ({ urn: s.urn ?? "(unknown urn)", op: s.op! }));
  const errors = (digest.diagnostics ?? [])
    .filter((d) => d.severity === "error" && !/no changes were expected/i.test(d.message ?? ""))
    .map((d) => (d.message ?? "").trim().split("\n")[0]);
  if (errors.length) return { status: "error", summary: `pulumi preview failed: ${errors[0]}`, changes };
  if (changes.length) {
    const counts = Object.entries(digest.changeSummary ?? {}).filter(([op, n]) => !NO_CHANGE_OPS.has(op) && n > 0);
    const detail = counts.length ? counts.map(([op, n]) => `${n} to ${op}`).join(", ") : `${changes.length} changes`;
    return { status: "drift", summary: `the stack differs from the program: ${detail}`, changes };
  }
  if (exitCode !== 0) return { status: "error", summary: `pulumi preview exited ${exitCode} without proposing changes: ${stderr.trim().split("\n").at(-1) ?? ""}`, changes };
  return { status: "clean", summary: "the stack matches the program (pulumi preview: no changes)", changes };
}

/**
 * Runs the state check. `mode`: `skip` never runs it; `auto` runs it when `pulumi version` works here
 * (the `pulumi` npm package's launcher fails without network, which counts as not installed); `required`
 * reports an error instead of skipping.
 */
export async function stateCheck(stack: string, mode: "auto" | "required" | "skip"): Promise<StateCheck> {
  if (mode === "skip") return { status: "skipped", summary: "state check skipped (--state skip)", changes: [] };
  const bin = await which("pulumi", { nothrow: true });
  const works = bin ? (await $({ nothrow: true, quiet: true, timeout: "120s" })`pulumi version`).exitCode === 0 : false;
  if (!works) {
    const summary = "state check skipped: Pulumi CLI not installed";
    return mode === "required" ? { status: "error", summary: `${summary} (--state required)`, changes: [] } : { status: "skipped", summary, changes: [] };
  }
  const out = await $({ nothrow: true, quiet: true })`pulumi preview --refresh --expect-no-changes --json --non-interactive --stack ${stack}`;
  return parsePreview(out.stdout, out.stderr, out.exitCode ?? 1);
}

/** The exit code of a drift report: 1 any drift; else 2 anything unchecked or a failed state check; else 0. */
export function driftExitCode(live: NodeDrift[], state: StateCheck): 0 | 1 | 2 {
  if (live.some((n) => n.findings.length > 0) || state.status === "drift") return 1;
  if (live.some((n) => !n.checked) || state.status === "error") return 2;
  return 0;
}

/** Runs both checks over `nodes` (live probes in parallel, each within `timeoutSeconds`). */
export async function fleetDrift(fleet: Fleet, nodes: FleetNode[], opts: { timeoutSeconds: number; stack: string; state: "auto" | "required" | "skip" }): Promise<DriftReport> {
  const [live, state] = await Promise.all([
    Promise.all(nodes.map(async (n) => nodeDrift(await probeNode(fleet, n, opts.timeoutSeconds)))),
    stateCheck(opts.stack, opts.state),
  ]);
  return { fleet: fleet.name, exitCode: driftExitCode(live, state), live, state };
}

function describeFinding(f: DriftFinding): string {
  switch (f.kind) {
    case "marker-missing":
      return "no install marker (never installed, or removed)";
    case "marker-differs":
      return `installed bundle ${f.actual!.slice(0, 12)} ≠ rendered ${f.expected!.slice(0, 12)} (run pulumi up)`;
    case "file-missing":
      return `${f.file} is missing`;
    case "file-changed":
      return f.actual && f.expected ? `${f.file} was changed on the node (sha256 ${f.actual.slice(0, 12)}, rendered ${f.expected.slice(0, 12)})` : `${f.file} was changed on the node`;
    case "service-not-running":
      return `${f.service} is ${f.actual}, should be active`;
  }
}

/** The human report: one line per finding, unchecked nodes and roles, the state check, a verdict. */
export function formatDrift(report: DriftReport): string {
  const lines: string[] = [chalk.bold(`fleet ${report.fleet}: live check of ${report.live.length} node(s)`)];
  for (const n of report.live) {
    if (!n.checked) lines.push(`${chalk.yellow("?")} ${n.node}: could not check (${n.reason})`);
    else if (n.findings.length === 0) lines.push(`${chalk.green("✓")} ${n.node}: matches the render`);
    for (const f of n.findings) lines.push(`${chalk.red("✗")} ${n.node} ${f.role}: ${describeFinding(f)}`);
  }
  const mark = report.state.status === "clean" ? chalk.green("✓") : report.state.status === "drift" ? chalk.red("✗") : report.state.status === "error" ? chalk.yellow("?") : chalk.dim("-");
  lines.push("", `${mark} ${report.state.summary}`);
  for (const c of report.state.changes) lines.push(`  ${c.op} ${c.urn}`);
  const verdict = report.exitCode === 0 ? chalk.green("no drift") : report.exitCode === 1 ? chalk.red("drift found") : chalk.yellow("could not check everything");
  lines.push("", verdict);
  return lines.join("\n") + "\n";
}

const USAGE = `usage: fleet drift [node|profile|all …] [--fleet FILE] [--stack NAME] [--state auto|required|skip] [--json] [--timeout SECONDS]
  --fleet FILE       fleet file (default fleet.yaml)
  --stack NAME       Pulumi stack for the state check (default: the fleet's name)
  --state MODE       auto: run pulumi preview when the Pulumi CLI works here (default); required: fail
                     (exit 2) without it; skip: live check only
  --json             print { fleet, exitCode, live: [{ node, checked, findings: [{ node, role, kind, file, service, expected, actual }] }], state }
  --timeout SECONDS  per-node limit, dial included (default: the fleet's perDialTimeoutSeconds + 10)
Exit 0 no drift, 1 drift found, 2 could not check (offline node, failed preview) or bad input.
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseVerb(argv, { verb: "drift", usage: USAGE, options: { fleet: { type: "string", default: "fleet.yaml" }, timeout: { type: "string" }, stack: { type: "string" }, state: { type: "string", default: "auto" }, json: { type: "boolean" } } });
  if (!parsed) return 0;
  const { values: args, positionals: words } = parsed;
  if (!["auto", "required", "skip"].includes(args.state)) throw new UserError(`fleet drift: --state expects auto, required or skip, got "${args.state}".\n${USAGE}`);
  const fleet = await loadFleetWithRoles(args.fleet);
  const nodes = resolveTargets(fleet, words);
  const timeoutSeconds = parseTimeout(args.timeout, (nodes[0]?.perDialTimeoutSeconds ?? 10) + 10, "drift");
  const report = await withSpinner(`comparing ${nodes.length} node(s) and the stack with the render`, !!args.json, () =>
    fleetDrift(fleet, nodes, { timeoutSeconds, stack: args.stack || fleet.name, state: args.state as "auto" | "required" | "skip" }),
  );
  process.stdout.write(args.json ? JSON.stringify(report, null, 2) + "\n" : formatDrift(report));
  return report.exitCode;
}
