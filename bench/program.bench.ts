/**
 * Bench (issue "fleetkit at 500 nodes"): the Pulumi program at 9, 100, 500 and 1,000 nodes — fleet.yaml's
 * nine machines, then generated fleets in its shape (test/program/fleets.ts `generatedFleet`) — each run in
 * a process of its own, in two harnesses:
 *
 * - **mocks**: `stacks/index.ts` under `pulumi.runtime.setMocks` (bench/program-run.ts);
 * - **run harness**: Pulumi's own Node.js harness (`@pulumi/pulumi/cmd/run`, started as the language host
 *   starts it for `pulumi up`: ts-node with type checking, config in PULUMI_CONFIG) against the in-process
 *   gRPC engine stand-in of test/langhost/engine-standin.ts. At 9, 100 and 500 nodes (1,000 would double
 *   the bench's length and adds nothing the curve does not show).
 *
 * Beside them, the floor: bench/program-floor.ts, the SDK alone registering 500 nodes' worth of resources of
 * fleetkit's shape and input sizes with nothing rendered, so the report shows what is Pulumi's own cost; then
 * the floor and the 500-node program again at the SDK's default `Error.stackTraceLimit`
 * (`FLEETKIT_STACK_TRACES=1`): what the SDK's eager promise stacks cost (stacks/index.ts `limitPromiseStacks`),
 * the floor pair being the reproduction for an upstream report.
 *
 * Per run: wall and CPU seconds of the program's process, its peak resident memory (bench/usage-reporter.cjs),
 * resources registered and the bytes of their inputs as sent (what an engine diffs and checkpoints). Each
 * figure is also given per node against the 9-node run of the same harness in the same bench, so the curve
 * shows whether cost per node grows (linear: ratio about 1 or below, since fixed costs spread out).
 * Targets (issue 15): 500 nodes under 10 s (mocks) and 30 s (run harness) wall, peak under 800 MB, inputs
 * under 5 MB. Bounded: about 5 minutes on our 2-core machine. Alone: `npx tsx bench/program.bench.ts`.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { startEngineStandin } from "../test/langhost/engine-standin.js";
import { generatedFleet } from "../test/program/fleets.js";
import { deviceLookup, providerOutputs } from "../test/program/mocks.js";
import { BENCH_SECRETS } from "./secrets.js";

const ROOT = resolve(import.meta.dirname, "..");
const REPORTER = join(ROOT, "bench/usage-reporter.cjs");

/** One measured program run. */
export interface ProgramFigures {
  nodes: number;
  wallSeconds: number;
  cpuSeconds: number;
  maxRssBytes: number;
  resources: number;
  inputBytes: number;
}

const SECRETS = BENCH_SECRETS;

/** Runs `node ...args` with the usage reporter; resolves with its usage and stdout, rejects on a non-zero exit. */
function measured(args: string[], env: Record<string, string>, work: string): Promise<{ usage: { cpuSeconds: number; wallSeconds: number; maxRssBytes: number }; stdout: string }> {
  const usageFile = join(work, `usage-${process.hrtime.bigint()}.json`);
  return new Promise((done, fail) => {
    // Through NODE_OPTIONS, not argv: Pulumi's harness uses ts-node's automatic ESM mode only when its
    // process.execArgv has no --require/--import/--loader (cmd/run/run.js), as under `pulumi up`.
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, ...env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${REPORTER}`.trim(), FLEETKIT_USAGE_FILE: usageFile },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    child.on("error", fail);
    child.on("close", (code) => {
      if (code !== 0) return fail(new Error(`node ${args.join(" ")} exited ${code}: ${stderr.slice(-2000)}`));
      done({ usage: JSON.parse(readFileSync(usageFile, "utf8")), stdout });
    });
  });
}

/** The program under setMocks for `fleetFile` (`nodes` nodes). */
async function underMocks(nodes: number, fleetFile: string, work: string, env: Record<string, string> = {}): Promise<ProgramFigures> {
  const { usage, stdout } = await measured(["--import", "tsx", "bench/program-run.ts", fleetFile, join(work, "bundles")], env, work);
  const counts = JSON.parse(stdout.trim().split("\n").at(-1)!) as { resources: number; inputBytes: number };
  return { nodes, ...usage, ...counts };
}

/** The SDK floor (bench/program-floor.ts) for `nodes` nodes of `roles` roles each, under setMocks. */
async function floorUnderMocks(nodes: number, roles: number, work: string, env: Record<string, string> = {}): Promise<ProgramFigures> {
  const { usage, stdout } = await measured(["--import", "tsx", "bench/program-floor.ts", String(nodes), String(roles)], env, work);
  const counts = JSON.parse(stdout.trim().split("\n").at(-1)!) as { resources: number; inputBytes: number };
  return { nodes, ...usage, ...counts };
}

/** The program under Pulumi's run harness (a normal run, not a preview) for `fleetFile`. */
async function underRunHarness(nodes: number, fleetFile: string, work: string): Promise<ProgramFigures> {
  const project = parse(readFileSync(join(ROOT, "Pulumi.yaml"), "utf8")) as { name: string; main: string; runtime: { options: { typescript: boolean } } };
  const engine = await startEngineStandin(project.name, "bench", providerOutputs, { "tailscale:index/getDevice:getDevice": deviceLookup });
  try {
    const config = { "fleetkit:fleetFile": fleetFile, "fleetkit:bundleDir": join(work, "bundles"), ...SECRETS };
    const { usage } = await measured(
      ["node_modules/@pulumi/pulumi/cmd/run", "--monitor", engine.monitorAddress, "--engine", engine.engineAddress, "--project", project.name, "--stack", "bench", "--pwd", ROOT, project.main],
      {
        PULUMI_NODEJS_TYPESCRIPT: String(project.runtime.options.typescript),
        PULUMI_CONFIG: JSON.stringify(config),
        PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(Object.keys(SECRETS)),
      },
      work,
    );
    const inputBytes = engine.registrations.reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r.inputs)), 0);
    return { nodes, ...usage, resources: engine.registrations.length, inputBytes };
  } finally {
    await engine.close();
  }
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 1)} MB`;

/** One line per run: absolute figures and, per node, the ratio against the 9-node run of the same harness. */
function describe(f: ProgramFigures, base: ProgramFigures): string {
  const per = (a: number, b: number) => (a / f.nodes / (b / base.nodes)).toFixed(2);
  return (
    `${String(f.nodes).padStart(5)} nodes: ${f.wallSeconds.toFixed(1)} s wall, ${f.cpuSeconds.toFixed(1)} s CPU, peak ${mb(f.maxRssBytes)}, ` +
    `${f.resources} resources, inputs ${mb(f.inputBytes)} (${(f.inputBytes / f.nodes / 1e3).toFixed(1)} KB/node); ` +
    `per node vs 9: wall ${per(f.wallSeconds, base.wallSeconds)}, CPU ${per(f.cpuSeconds, base.cpuSeconds)}, inputs ${per(f.inputBytes, base.inputBytes)}`
  );
}

/** Runs the bench; `out` gets one line per run and a line per target. */
export async function runProgramBench(out: (line: string) => void): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "fleetkit-program-bench-"));
  try {
    const fleets = new Map<number, string>([[9, join(ROOT, "fleet.yaml")]]);
    for (const n of [100, 500, 1000]) {
      const file = join(work, `fleet-${n}.yaml`);
      writeFileSync(file, generatedFleet(n));
      fleets.set(n, file);
    }
    const results: Record<string, ProgramFigures[]> = { mocks: [], "run harness": [] };
    for (const [harness, sizes, run] of [
      ["mocks", [9, 100, 500, 1000], underMocks],
      ["run harness", [9, 100, 500], underRunHarness],
    ] as const) {
      out(`${harness}:`);
      for (const n of sizes) {
        const f = await run(n, fleets.get(n)!, work);
        results[harness]!.push(f);
        out(describe(f, results[harness]![0]!));
      }
    }
    const at500 = (h: string) => results[h]!.find((f) => f.nodes === 500)!;
    // The floor: the SDK alone registering as many resources of the same shape (5 roles a node: 12 resources per node).
    const floor = await floorUnderMocks(500, 5, work);
    const ours = at500("mocks");
    out(
      `SDK floor, 500 nodes under mocks (${floor.resources} @pulumi/command resources of fleetkit's shape, none of its code): ${floor.wallSeconds.toFixed(1)} s wall, ` +
        `${floor.cpuSeconds.toFixed(1)} s CPU, peak ${mb(floor.maxRssBytes)}, inputs ${mb(floor.inputBytes)}; fleetkit's program against it: ` +
        `CPU ×${(ours.cpuSeconds / floor.cpuSeconds).toFixed(1)}, peak ×${(ours.maxRssBytes / floor.maxRssBytes).toFixed(1)}`,
    );
    // What the SDK's eager promise stacks cost (stacks/index.ts limitPromiseStacks): the same runs with the
    // default Error.stackTraceLimit. The floor pair is the upstream reproduction: the SDK alone, nothing of ours.
    const keep = { FLEETKIT_STACK_TRACES: "1" };
    const floorStacks = await floorUnderMocks(500, 5, work, keep);
    const oursStacks = await underMocks(500, fleets.get(500)!, work, keep);
    out(
      `SDK promise stacks at the default limit (FLEETKIT_STACK_TRACES=1), 500 nodes under mocks: SDK floor ${floorStacks.wallSeconds.toFixed(1)} s wall, ` +
        `peak ${mb(floorStacks.maxRssBytes)} (×${(floorStacks.wallSeconds / floor.wallSeconds).toFixed(1)} wall against limit 0); fleetkit ${oursStacks.wallSeconds.toFixed(1)} s wall, ` +
        `peak ${mb(oursStacks.maxRssBytes)} (×${(oursStacks.wallSeconds / ours.wallSeconds).toFixed(1)})`,
    );
    const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
    const m = at500("mocks");
    const h = at500("run harness");
    out(`target 500 nodes under mocks < 10 s wall: ${m.wallSeconds.toFixed(1)} s, ${verdict(m.wallSeconds < 10)}`);
    out(`target 500 nodes under the run harness < 30 s wall: ${h.wallSeconds.toFixed(1)} s, ${verdict(h.wallSeconds < 30)}`);
    out(`target peak memory < 800 MB at 500 nodes: mocks ${mb(m.maxRssBytes)}, run harness ${mb(h.maxRssBytes)}, ${verdict(Math.max(m.maxRssBytes, h.maxRssBytes) < 800e6)}`);
    out(`target resource inputs < 5 MB at 500 nodes: ${mb(m.inputBytes)}, ${verdict(m.inputBytes < 5e6)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runProgramBench((line) => process.stdout.write(`${line}\n`));
