/**
 * `fleet task` finds the queue the way `fleet status` does: `--queue`, else FLEET_QUEUE_URL, else the queue
 * node of the fleet file (`--fleet FILE`, or ./fleet.yaml). Run as users run it, against a real queue server.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fleetRun, startServer, stopAll, tempDir, tokenOf, writeTokens, type ServerProc } from "./harness.js";

const dir = tempDir("fleet-task-fleet-");
let server: ServerProc;
const fleetFile = (port: number, queue = true) => {
  const file = join(dir, queue ? "fleet.yaml" : "no-queue.yaml");
  writeFileSync(
    file,
    [
      "fleet: task-lookup",
      "defaults: { budgetUsdPerSession: 5, claude: { version: 2.1.331 } }",
      "services: { queue: { port: " + port + " } }",
      "nodes:",
      "  orch: { host: 127.0.0.1, os: debian, arch: x86_64, roles: [" + (queue ? "queue" : "iceccd, icecc-scheduler") + "] }",
      "",
    ].join("\n"),
  );
  return file;
};
const env = { FLEET_QUEUE_URL: "", FLEET_TOKEN: tokenOf("orch") };

beforeAll(async () => {
  server = await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { orch: {} }) });
});
afterAll(stopAll);

describe("fleet task: the queue from the fleet file", () => {
  it("--fleet FILE: asks the queue node's host and services.queue.port", async () => {
    const r = await fleetRun(["task", "delegate", "orch", "hello", "--fleet", fleetFile(server.port), "--json"], env);
    expect([r.code, JSON.parse(r.out).target]).toEqual([0, "orch"]);
    const list = await fleetRun(["task", "list", "--fleet", fleetFile(server.port), "--json"], env);
    expect([list.code, (JSON.parse(list.out) as unknown[]).length]).toEqual([0, 1]);
  });

  it("--queue and FLEET_QUEUE_URL still win over the fleet file", async () => {
    const r = await fleetRun(["task", "list", "--fleet", fleetFile(1), "--queue", server.url, "--json"], env);
    expect(r.code).toBe(0);
    const e = await fleetRun(["task", "list", "--fleet", fleetFile(1), "--json"], { ...env, FLEET_QUEUE_URL: server.url });
    expect(e.code).toBe(0);
  });

  it("a fleet without a queue node says so (exit 2)", async () => {
    const file = fleetFile(server.port, false);
    const r = await fleetRun(["task", "list", "--fleet", file], env);
    expect([r.code, r.out]).toEqual([2, `${file}: no node runs role queue, so there is no queue to ask; pass --queue http://HOST:PORT or set FLEET_QUEUE_URL.\n`]);
  });

  it("a bad fleet file gets the loader's located error (exit 2)", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "fleet: x\nnodes: 3\n");
    const r = await fleetRun(["task", "list", "--fleet", file], env);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+ `));
  });
});

describe("fleet task: the token from FLEET_TOKEN_FILE (what a node's fleet command sets)", () => {
  it.each([
    ["FLEET_TOKEN_FILE alone", { FLEET_TOKEN: "", FLEET_TOKEN_FILE: "orch" }, 0, null],
    ["FLEET_TOKEN wins over FLEET_TOKEN_FILE", { FLEET_TOKEN: tokenOf("orch"), FLEET_TOKEN_FILE: "/nonexistent/token" }, 0, null],
    ["an unreadable FLEET_TOKEN_FILE: exit 2, one line", { FLEET_TOKEN: "", FLEET_TOKEN_FILE: "/nonexistent/token" }, 2, "cannot read token file /nonexistent/token: ENOENT. Check the path (it is created by the queue/worker role, mode 0600).\n"],
  ] as const)("%s", async (_what, vars, code, out) => {
    const file = vars.FLEET_TOKEN_FILE === "orch" ? join(dir, "orch.token") : vars.FLEET_TOKEN_FILE;
    if (vars.FLEET_TOKEN_FILE === "orch") writeFileSync(file, `${tokenOf("orch")}\n`, { mode: 0o600 });
    const r = await fleetRun(["task", "list", "--json"], { FLEET_QUEUE_URL: server.url, FLEET_TOKEN: vars.FLEET_TOKEN, FLEET_TOKEN_FILE: file });
    expect(r.code).toBe(code);
    if (out !== null) expect(r.out).toBe(out);
  });

  it("status lists each node's profile, roles and tags from the queue, and which ones take tasks", async () => {
    const d = tempDir("fleet-task-status-");
    const tokens = writeTokens(d, { orch: { profile: "orchestrator", roles: ["queue", "worker"], tags: { gpu: "gtx980" } }, pi: { os: "raspios", arch: "aarch64" } });
    const s = await startServer({ db: join(d, "q.db"), tokens });
    const r = await fleetRun(["task", "status"], { FLEET_QUEUE_URL: s.url, FLEET_TOKEN: tokenOf("orch") });
    expect(r.code).toBe(0);
    expect(r.out.split("\n").slice(0, 8)).toEqual([
      "=== Machine Status ===",
      "",
      "orch (debian/x86_64):",
      "  profile orchestrator; roles queue, worker; tags gpu=gtx980; takes delegated tasks",
      "  ✗ Offline, last seen never",
      "",
      "pi (raspios/aarch64):",
      "  ✗ Offline, last seen never",
    ]);
  });
});
