/**
 * Bench: how long a `fleet` call takes, start to exit, as a shell (or a node's Claude session delegating a
 * task) runs it. Wall time of whole processes, median of {@link RUNS} runs each, every command run in turn
 * so the machine's load weighs on all alike; beside the baseline of the same run, `node -e 0` (a bare Node
 * start):
 *
 * - `fleet --help` and `fleet task status` against a live queue (a real `fleet queue serve` on 127.0.0.1, a
 *   token file), each compiled (bin/fleet.mjs running dist/, what `npm install` builds) and from the
 *   TypeScript sources through tsx (what every call cost before, and what bin/fleet.mjs falls back to);
 * - `fleet plan --help`, the heaviest verb to load, both ways.
 *
 * Target (issue 15): `fleet --help` and `fleet task status` under 300 ms wall. Needs a current dist/ (`npm
 * run build`); says so and stops otherwise. Bounded: about a minute. Run alone with
 * `npx tsx bench/cli-start.bench.ts`; `npm run bench` runs it through bench/index.ts.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { tokenSha256 } from "../runtime/config.js";

const ROOT = resolve(import.meta.dirname, "..");
const BIN = join(ROOT, "bin/fleet.mjs");
/** Runs of each command; the median is reported. */
const RUNS = 15;
/** The issue's target for `fleet --help` and `fleet task status`, in ms wall. */
const TARGET_MS = 300;

/** Runs `node ...args` to its end; resolves with its wall time in ms, rejects when it does not exit 0. */
function timed(args: string[]): Promise<number> {
  return new Promise((done, fail) => {
    const start = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    child.on("error", fail);
    child.on("close", (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code === 0) done(ms);
      else fail(new Error(`bench: node ${args.join(" ")} exited ${code}: ${err.trim().split("\n")[0]}`));
    });
  });
}

/** Starts `fleet queue serve` on a free port of 127.0.0.1 in `dir`; resolves with the process and its URL. */
function startQueue(dir: string, tokensFile: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, "queue", "serve", "--db", join(dir, "q.db"), "--listen", "127.0.0.1:0", "--tokens", tokensFile], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((done, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error(`bench: the queue did not start in 30 s: ${out}`)), 30_000);
    const seen = (d: Buffer) => {
      out += d;
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      if (url) {
        clearTimeout(timer);
        done({ child, url });
      }
    };
    child.stdout!.on("data", seen);
    child.stderr!.on("data", seen);
    child.on("exit", (code) => fail(new Error(`bench: the queue exited ${code}: ${out}`)));
  });
}

/** The bench's figures: median wall ms per command label. */
export type CliStartResult = Record<string, number>;

/** Runs the bench; `log` gets one line per figure. */
export async function runCliStartBench(log: (line: string) => void = console.log): Promise<CliStartResult> {
  const check = spawnSync(process.execPath, [join(ROOT, "bin/build-cli.mjs"), "--check"], { cwd: ROOT, encoding: "utf8" });
  if (check.status !== 0) throw new Error(`bench: the compiled CLI is not current (${(check.stdout + check.stderr).trim().split("\n")[0]}); run npm run build`);
  const dir = mkdtempSync(join(tmpdir(), "fleet-cli-start-bench-"));
  let queue: ChildProcess | undefined;
  try {
    const token = "bench-cli-start-token-0123456789";
    const tokensFile = join(dir, "tokens.json");
    writeFileSync(tokensFile, JSON.stringify({ nodes: { bench: { tokenSha256: tokenSha256(token), os: "debian", arch: "x86_64" } }, people: {} }), { mode: 0o600 });
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, token, { mode: 0o600 });
    const started = await startQueue(dir, tokensFile);
    queue = started.child;
    const status = ["task", "status", "--queue", started.url, "--token-file", tokenFile];
    const sources = ["--import", "tsx", join(ROOT, "cli/fleet.ts")];
    const commands: Record<string, string[]> = {
      "node -e 0": ["-e", "0"],
      "fleet --help (compiled)": [BIN, "--help"],
      "fleet --help (tsx)": [...sources, "--help"],
      "fleet task status (compiled)": [BIN, ...status],
      "fleet task status (tsx)": [...sources, ...status],
      "fleet plan --help (compiled)": [BIN, "plan", "--help"],
      "fleet plan --help (tsx)": [...sources, "plan", "--help"],
    };
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
    for (const args of Object.values(commands)) await timed(args); // warm the file cache
    for (let i = 0; i < RUNS; i++) for (const [label, args] of Object.entries(commands)) times[label]!.push(await timed(args));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const result: CliStartResult = Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, median(xs)]));
    const base = result["node -e 0"]!;
    log(`wall time, median of ${RUNS} runs, baseline node -e 0 = ${base.toFixed(0)} ms`);
    for (const [label, ms] of Object.entries(result)) {
      if (label === "node -e 0") continue;
      const target = /^fleet (--help|task status) \(compiled\)$/.test(label) ? `  (target < ${TARGET_MS} ms: ${ms < TARGET_MS ? "met" : "NOT met"})` : "";
      log(`  ${label.padEnd(30)} ${ms.toFixed(0).padStart(5)} ms  = ${(ms / base).toFixed(1)}× node -e 0${target}`);
    }
    for (const what of ["fleet --help", "fleet task status", "fleet plan --help"]) {
      log(`  ${what}: compiled is ${(result[`${what} (tsx)`]! / result[`${what} (compiled)`]!).toFixed(1)}× faster than through tsx`);
    }
    return result;
  } finally {
    queue?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runCliStartBench();
}
