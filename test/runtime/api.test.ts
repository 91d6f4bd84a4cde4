/**
 * Auth and bad-input table against a real `fleet queue serve` process: exact status codes and messages, and
 * nothing written by a rejected request.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { api, startServer, stopAll, tempDir, tokenOf, writeTokens, type ServerProc } from "./harness.js";

let server: ServerProc;

beforeAll(async () => {
  const dir = tempDir();
  const tokens = writeTokens(dir, { alpha: { os: "debian", tags: { gpu: "true" } }, beta: { os: "macos", arch: "aarch64" } });
  server = await startServer({ db: join(dir, "q.db"), tokens, leaseSeconds: 30 });
  // One task leased to alpha, for the wrong-node cases.
  await api(server.url, "POST", "/v1/tasks", { body: { target: "alpha", prompt: "held by alpha" } });
  const claim = await api(server.url, "POST", "/v1/claim", { body: { node: "alpha", worker: "t" } });
  expect(claim.body.task.id).toBe(1);
}, 60_000);
afterAll(stopAll);

const ok = { target: "alpha", prompt: "Run uptime" };
const big = "x".repeat(64 * 1024 + 1);

describe("queue API: auth and bad input", () => {
  it.each([
    ["no Authorization header", "GET", "/v1/tasks", { token: null }, 401, "missing Authorization: Bearer <token>"],
    ["not a Bearer header", "GET", "/v1/tasks", { token: null, headers: { authorization: "Basic abc" } }, 401, 'Authorization header must be "Bearer <token>"'],
    ["unknown token", "GET", "/v1/tasks", { token: "nope-token-0000000000000000" }, 401, "unknown token"],
    ["unknown token on /metrics", "GET", "/metrics", { token: "x" }, 401, "unknown token"],
    ["claim for another node", "POST", "/v1/claim", { token: tokenOf("beta"), body: { node: "alpha", worker: "w" } }, 403, "this token belongs to node beta; it cannot claim tasks for node alpha"],
    ["heartbeat on another node's task", "POST", "/v1/tasks/1/heartbeat", { token: tokenOf("beta"), body: { leaseId: "x" } }, 403, "task 1 is leased to node alpha, not beta"],
    ["complete another node's task", "POST", "/v1/tasks/1/complete", { token: tokenOf("beta"), body: { leaseId: "x", outcome: "completed" } }, 403, "task 1 is leased to node alpha, not beta"],
    ["heartbeat with a wrong lease", "POST", "/v1/tasks/1/heartbeat", { body: { leaseId: "not-the-lease" } }, 409, "lease lost: task 1 is running under another lease"],
    ["malformed JSON", "POST", "/v1/tasks", { rawBody: '{"target": "alpha",}' }, 400, "request body is not valid JSON (error at character 19)"],
    ["empty JSON body", "POST", "/v1/tasks", { rawBody: "" }, 400, "request body is empty; send a JSON object"],
    ["JSON array body", "POST", "/v1/tasks", { body: [ok] }, 400, "request body must be a JSON object"],
    ["unknown field", "POST", "/v1/tasks", { body: { ...ok, colour: "red" } }, 400, 'unknown field "colour"'],
    ["missing prompt", "POST", "/v1/tasks", { body: { target: "alpha" } }, 400, 'field "prompt" is required'],
    ["empty prompt", "POST", "/v1/tasks", { body: { ...ok, prompt: "" } }, 400, 'field "prompt": the prompt is empty'],
    ["oversize prompt", "POST", "/v1/tasks", { body: { ...ok, prompt: big } }, 400, 'field "prompt": 65537 bytes; the limit is 65536 bytes (64 KiB)'],
    ["unknown node", "POST", "/v1/tasks", { body: { ...ok, target: "gamma" } }, 400, 'field "target": unknown node "gamma"; known nodes: alpha, beta, or "any"'],
    ["bad priority", "POST", "/v1/tasks", { body: { ...ok, priority: "urgent" } }, 400, 'field "priority": Invalid option: expected one of "high"|"medium"|"low"'],
    ["bad model", "POST", "/v1/tasks", { body: { ...ok, model: "gpt" } }, 400, 'field "model": Invalid option: expected one of "auto"|"haiku"|"sonnet"|"opus"'],
    ["no node has the tags", "POST", "/v1/tasks", { body: { target: "any", prompt: "p", tags: { os: "windows-wsl" } } }, 400, 'field "tags": no node has {"os":"windows-wsl"}'],
    ["target node lacks the tags", "POST", "/v1/tasks", { body: { target: "beta", prompt: "p", tags: { gpu: "true" } } }, 400, 'field "tags": no node "beta" has {"gpu":"true"}'],
    ["relative cwd", "POST", "/v1/tasks", { body: { ...ok, cwd: "src" } }, 400, 'field "cwd": cwd must be an absolute path'],
    ["negative timeout", "POST", "/v1/tasks", { body: { ...ok, timeoutSeconds: -1 } }, 400, 'field "timeoutSeconds": expected a number of seconds from 1 to 604800'],
    ["bad task id", "GET", "/v1/tasks/abc", {}, 400, 'task id must be a positive integer, got "abc"'],
    ["unknown task", "GET", "/v1/tasks/999", {}, 404, "no task 999"],
    ["bad state filter", "GET", "/v1/tasks?state=done", {}, 400, 'query "state" must be one of pending, running, completed, failed, cancelled, got "done"'],
    ["unknown query parameter", "GET", "/v1/tasks?owner=me", {}, 400, 'unknown query parameter "owner" (allowed: state, node, limit, tag)'],
    ["priority of a running task", "POST", "/v1/tasks/1/priority", { body: { priority: "high" } }, 409, "task 1 is running; only a pending task's priority can change"],
    ["wrong content type", "POST", "/v1/tasks", { rawBody: "hello", headers: { "content-type": "text/plain" } }, 415, "send the body as Content-Type: application/json"],
    ["unknown route", "GET", "/v2/tasks", {}, 404, "no route GET /v2/tasks"],
  ] as const)("%s", async (_name, method, path, o, status, error) => {
    const r = await api(server.url, method, path, o as Parameters<typeof api>[3]);
    expect({ status: r.status, body: r.body }).toEqual({ status, body: { error } });
  });

  it("wrote nothing for the rejected requests", async () => {
    const r = await api(server.url, "GET", "/v1/tasks");
    expect(r.body.tasks.map((t: { id: number; prompt: string }) => [t.id, t.prompt])).toEqual([[1, "held by alpha"]]);
  });

  it("orders claims by priority, FIFO within a level, and re-orders on a priority change", async () => {
    const ids: number[] = [];
    for (const [prompt, priority] of [["b1", "low"], ["b2", "medium"], ["b3", "medium"], ["b4", "low"]] as const) {
      ids.push((await api(server.url, "POST", "/v1/tasks", { token: tokenOf("beta"), body: { target: "beta", prompt, priority } })).body.id);
    }
    expect((await api(server.url, "POST", `/v1/tasks/${ids[3]}/priority`, { token: tokenOf("beta"), body: { priority: "high" } })).body.priority).toBe("high");
    const order: string[] = [];
    for (let i = 0; i < 4; i++) order.push((await api(server.url, "POST", "/v1/claim", { token: tokenOf("beta"), body: { node: "beta", worker: "w" } })).body.task.prompt);
    expect(order).toEqual(["b4", "b2", "b3", "b1"]);
    const empty = await api(server.url, "POST", "/v1/claim", { token: tokenOf("beta"), body: { node: "beta", worker: "w" } });
    expect(empty).toEqual({ status: 200, body: { task: null, leaseId: null, leaseSeconds: 30, maxBudgetUsd: null, reason: "empty", taskToken: null } });
  });

  it("completes exactly once per lease, and hands the next lease back with claimNext", async () => {
    const a = (await api(server.url, "POST", "/v1/tasks", { token: tokenOf("beta"), body: { target: "beta", prompt: "first" } })).body.id;
    const b = (await api(server.url, "POST", "/v1/tasks", { token: tokenOf("beta"), body: { target: "beta", prompt: "second" } })).body.id;
    const claim = (await api(server.url, "POST", "/v1/claim", { token: tokenOf("beta"), body: { node: "beta", worker: "w1" } })).body;
    expect(claim.task.id).toBe(a);
    const body = { leaseId: claim.leaseId, outcome: "completed", result: "ok", costUsd: 0.5, claimNext: true };
    const done = await api(server.url, "POST", `/v1/tasks/${a}/complete`, { token: tokenOf("beta"), body });
    expect(done.status).toBe(200);
    expect(done.body.task).toMatchObject({ id: a, state: "completed", result: "ok", costUsd: 0.5 });
    expect(done.body.next).toMatchObject({ task: { id: b, state: "running", worker: "w1" }, reason: null });
    // The same report again (a retry after a lost answer) changes nothing and claims nothing.
    const again = await api(server.url, "POST", `/v1/tasks/${a}/complete`, { token: tokenOf("beta"), body: { ...body, result: "other" } });
    expect(again.body).toMatchObject({ task: { id: a, result: "ok" }, next: null });
    const lost = await api(server.url, "POST", `/v1/tasks/${b}/complete`, { token: tokenOf("beta"), body: { leaseId: claim.leaseId, outcome: "completed" } });
    expect(lost).toEqual({ status: 409, body: { error: `lease lost: task ${b} is running under another lease; the result was not recorded` } });
  });

  it("serves Prometheus metrics", async () => {
    const r = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${tokenOf("alpha")}` } });
    const text = await r.text();
    expect(text).toContain('fleet_tasks{state="completed"} 1');
    expect(text).toContain('fleet_node_online{node="beta"} 1');
    expect(text).toContain('fleet_spend_today_usd{node="beta"} 0.5');
    expect(text).toContain("fleet_tasks_submitted_total 7");
  });

  it("answers /healthz without a token", async () => {
    expect(await api(server.url, "GET", "/healthz", { token: null })).toEqual({ status: 200, body: { ok: true } });
  });
});
