/**
 * Every verb's `--json` reaches a pipe whole. Node writes to a pipe asynchronously, and the CLI used to call
 * `process.exit` as soon as a verb returned: `fleet plan --json | jq` read 65,536 bytes (the pipe buffer) of a
 * 100-node plan's 381,653. Each case here runs the real CLI as a child process whose stdout is an OS pipe,
 * with a fleet large enough to cross 64 KiB, and parses everything that arrived.
 *
 * The fleet's 450 nodes sit on loopback addresses with SSH port 1, where nothing listens, so every connection
 * is refused at once: status, exec and drift report 450 offline nodes without waiting for timeouts.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, FLEET_BIN, ROOT, startServer, stopAll, tempDir, tokenOf, writeTokens } from "../runtime/harness.js";

const PIPE_BUFFER_BYTES = 65_536;
const NODES = 450;

/** Runs `node bin/fleet.mjs …` with stdout and stderr on pipes; resolves with what came through and the exit code. */
function runPiped(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLEET_BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}

const dir = tempDir("fleet-pipe-");
const fleetFile = join(dir, "fleet.yaml");

beforeAll(() => {
  const lines = [
    "fleet: pipes",
    "defaults:",
    "  sshPort: 1",
    "  budgetUsdPerSession: 5",
    "  claude:",
    "    version: 2.1.331",
    "profiles:",
    "  box: [iceccd, claude]",
    "  hub: [icecc-scheduler, iceccd, claude]",
    "nodes:",
  ];
  for (let i = 0; i < NODES; i++) lines.push(`  n${i}: { host: 127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}, os: debian, arch: x86_64, profile: ${i === 0 ? "hub" : "box"} }`);
  writeFileSync(fleetFile, lines.join("\n") + "\n");
});
afterAll(stopAll);

describe("--json through a pipe, larger than the pipe buffer", () => {
  it.each([
    ["plan", ["plan", "--json", "--fleet", fleetFile], 0, (j: any) => j.nodes.length],
    ["status", ["status", "--json", "--timeout", "20", "--fleet", fleetFile], 1, (j: any) => j.nodes.filter((n: any) => n.reach === "offline").length],
    ["drift", ["drift", "--json", "--state", "skip", "--timeout", "20", "--fleet", fleetFile], 2, (j: any) => j.live.length],
    ["exec", ["exec", "all", "--json", "--timeout", "20", "--fleet", fleetFile, "--", "true"], 255, (j: any) => j.filter((n: any) => n.exitCode === 255).length],
  ] as const)("fleet %s --json: every node arrives", async (_verb, args, code, count) => {
    const r = await runPiped([...args]);
    expect(r.stdout.length).toBeGreaterThan(PIPE_BUFFER_BYTES);
    // exec prints each node's own output before the JSON; the JSON is the last top-level array.
    const json = _verb === "exec" ? r.stdout.slice(r.stdout.lastIndexOf("\n[\n") + 1) : r.stdout;
    expect([r.code, count(JSON.parse(json))]).toEqual([code, NODES]);
  }, 150_000);

  it("fleet task list --json: 400 tasks with 300-byte prompts", async () => {
    const tokens = writeTokens(dir, { alpha: {}, beta: {} });
    const server = await startServer({ db: join(dir, "queue.db"), tokens });
    const prompt = "p".repeat(300);
    for (let i = 0; i < 400; i++) {
      const r = await api(server.url, "POST", "/v1/tasks", { body: { target: "beta", prompt: `${i} ${prompt}` } });
      expect(r.status).toBe(201);
    }
    const r = await runPiped(["task", "list", "--json", "--limit", "1000"], { FLEET_QUEUE_URL: server.url, FLEET_TOKEN: tokenOf("alpha") });
    expect(r.stdout.length).toBeGreaterThan(PIPE_BUFFER_BYTES);
    const tasks = JSON.parse(r.stdout);
    expect([r.code, tasks.length, tasks[0].prompt, tasks[399].prompt]).toEqual([0, 400, `399 ${prompt}`, `0 ${prompt}`]);
  }, 150_000);
});
