/**
 * The queue API against hostile input: one table of requests an attacker (or a broken client) sends, each
 * with the exact HTTP status and `error` message it must get, and proof that a refused request wrote nothing
 * (the whole task table is the same before and after). The server is the real one (createQueueServer: fastify,
 * SQLite on disk) driven through fastify's `inject`; the cases where the transport matters (closing the
 * connection after a refusal) use real sockets.
 *
 * Tokens: nodes alpha (debian, gpu) and beta (macos, aarch64); people alice (operator) and bob (viewer).
 * Tasks made in beforeAll: #1 alpha's, running on alpha (lease L1); #2 alpha's, pending; #3 beta's, pending;
 * #4 alice's for beta, pending.
 */
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clipUtf8, type Task } from "../../runtime/api.js";
import { QueueClient } from "../../runtime/client.js";
import { parseTokensFile } from "../../runtime/config.js";
import { createQueueServer } from "../../runtime/server.js";
import { tempDir, tokenOf, writeTokens } from "./harness.js";
import { readFileSync } from "node:fs";

let q: ReturnType<typeof createQueueServer>;
let lease1: string;
let url: string;

beforeAll(async () => {
  const dir = tempDir("fleet-hostile-");
  const file = writeTokens(dir, { alpha: { os: "debian", tags: { gpu: "true" } }, beta: { os: "macos", arch: "aarch64" } }, null, { alice: "operator", bob: "viewer" });
  q = createQueueServer({ db: join(dir, "q.db"), tokens: parseTokensFile(readFileSync(file, "utf8"), file), leaseSeconds: 60 });
  const submit = async (who: string, body: object) => (await q.app.inject({ method: "POST", url: "/v1/tasks", headers: auth(who), payload: body })).json() as Task;
  expect((await submit("alpha", { target: "alpha", prompt: "alpha's running task" })).id).toBe(1);
  const claim = (await q.app.inject({ method: "POST", url: "/v1/claim", headers: auth("alpha"), payload: { node: "alpha", worker: "alpha/w/0" } })).json();
  expect(claim.task.id).toBe(1);
  lease1 = claim.leaseId;
  expect((await submit("alpha", { target: "alpha", prompt: "alpha's pending task" })).id).toBe(2);
  expect((await submit("beta", { target: "beta", prompt: "beta's pending task" })).id).toBe(3);
  expect((await submit("alice", { target: "beta", prompt: "alice's task for beta" })).id).toBe(4);
  url = await q.app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(() => q?.close());

const auth = (who: string) => ({ authorization: `Bearer ${tokenOf(who)}` });
/** Every task as stored: what "nothing written" compares. */
const snapshot = () => JSON.stringify(q.store.list({ limit: 10_000 }));

const big = (n: number, c = "x") => c.repeat(n);
const ok = { target: "alpha", prompt: "Run uptime" };
const HEALTH = (row: object) => ({ fleet: "hostile", nodes: [{ node: "alpha", reach: "ok", healthy: true, problems: [], roles: [], ...row }] });
const done = (extra: object) => ({ leaseId: "LEASE1", outcome: "completed", ...extra });
const GIT_URL = 'expected a git URL: https://host/path, ssh://[user@]host[:port]/path, user@host:path or file:///path (at most 2048 characters; no spaces, no "." or ".." segments), got';
const NORMAL = 'expected a normalized absolute path (no "." or ".." segments, no "//", no trailing /), got';
const NUL = "contains a NUL byte (U+0000), which no text may hold";
const ONE_LINE = "one line of printable text (no control characters)";
const SECONDS = (min: number, max: number) => `expected a number of seconds from ${min} to ${max}`;
const VISIBLE = (id: number) => `task ${id} is not node beta's: a node token reads and changes only the tasks its node submitted, runs or that target it`;
const WORKER_CALL = (route: string, who: string) => `${route} needs a node token; this is ${who}'s token (it is a worker's call)`;
const CHANGE_CALL = (route: string) => `${route} needs a node or operator token; this is viewer bob's token`;
const RESERVED = (where: string, key: string) => `${where}: "${key}" is a reserved name (it would reach the object's prototype); use another name`;

type Case = [name: string, method: "GET" | "POST", path: string, o: { who?: string | null; headers?: Record<string, string>; body?: unknown; raw?: string }, status: number, error: string | RegExp];

const cases: Case[] = [
  // ---- authentication (401, before the body is read) ----
  ["no Authorization header", "GET", "/v1/tasks", { who: null }, 401, "missing Authorization: Bearer <token>"],
  ["Basic scheme", "GET", "/v1/tasks", { who: null, headers: { authorization: "Basic YWxwaGE6eA==" } }, 401, 'Authorization header must be "Bearer <token>"'],
  ["Bearer without a token", "GET", "/v1/tasks", { who: null, headers: { authorization: "Bearer" } }, 401, 'Authorization header must be "Bearer <token>"'],
  ["two tokens", "GET", "/v1/tasks", { who: null, headers: { authorization: `Bearer ${tokenOf("alpha")} ${tokenOf("beta")}` } }, 401, 'Authorization header must be "Bearer <token>"'],
  ["a 513-character token", "GET", "/v1/tasks", { who: null, headers: { authorization: `Bearer ${big(513)}` } }, 401, 'Authorization header must be "Bearer <token>"'],
  ["a token with a non-ASCII letter", "GET", "/v1/tasks", { who: null, headers: { authorization: "Bearer tökén-0123456789abcdef" } }, 401, 'Authorization header must be "Bearer <token>"'],
  ["an unknown token", "GET", "/v1/tasks", { who: null, headers: { authorization: "Bearer nope-token-0000000000000000" } }, 401, "unknown token"],
  ["a token's SHA-256 instead of the token", "GET", "/v1/tasks", { who: null, headers: { authorization: "Bearer 9c2ad2b3a3ad05c01e2d8ae7a19f5f83c4fd85f9b07c5a1bf1b8e0d04b17ca7a" } }, 401, "unknown token"],
  ["an unknown token on /metrics", "GET", "/metrics", { who: null, headers: { authorization: "Bearer x" } }, 401, "unknown token"],
  ["an unknown token submitting", "POST", "/v1/tasks", { who: null, headers: { authorization: "Bearer nope-token-0000000000000000" }, body: ok }, 401, "unknown token"],
  ["no token cancelling", "POST", "/v1/tasks/2/cancel", { who: null }, 401, "missing Authorization: Bearer <token>"],
  ["no token claiming", "POST", "/v1/claim", { who: null, body: { node: "alpha", worker: "w" } }, 401, "missing Authorization: Bearer <token>"],

  // ---- a viewer changes nothing (403) ----
  ["viewer submits", "POST", "/v1/tasks", { who: "bob", body: ok }, 403, CHANGE_CALL("POST /v1/tasks")],
  ["viewer cancels", "POST", "/v1/tasks/2/cancel", { who: "bob" }, 403, CHANGE_CALL("POST /v1/tasks/:id/cancel")],
  ["viewer re-prioritises", "POST", "/v1/tasks/2/priority", { who: "bob", body: { priority: "high" } }, 403, CHANGE_CALL("POST /v1/tasks/:id/priority")],
  ["viewer claims", "POST", "/v1/claim", { who: "bob", body: { node: "alpha", worker: "w" } }, 403, WORKER_CALL("POST /v1/claim", "viewer bob")],
  ["viewer heartbeats", "POST", "/v1/tasks/1/heartbeat", { who: "bob", body: { leaseId: "LEASE1" } }, 403, WORKER_CALL("POST /v1/tasks/:id/heartbeat", "viewer bob")],
  ["viewer completes", "POST", "/v1/tasks/1/complete", { who: "bob", body: done({}) }, 403, WORKER_CALL("POST /v1/tasks/:id/complete", "viewer bob")],
  ["viewer releases", "POST", "/v1/tasks/1/release", { who: "bob", body: { leaseId: "LEASE1" } }, 403, WORKER_CALL("POST /v1/tasks/:id/release", "viewer bob")],
  ["viewer reports presence", "POST", "/v1/nodes/me/presence", { who: "bob", body: { status: "idle" } }, 403, WORKER_CALL("POST /v1/nodes/me/presence", "viewer bob")],
  ["viewer reads a node's settings (the ntfy token)", "GET", "/v1/nodes/me", { who: "bob" }, 403, WORKER_CALL("GET /v1/nodes/me", "viewer bob")],
  ["viewer with a huge body: refused before reading it", "POST", "/v1/tasks", { who: "bob", raw: big(2 * 1024 * 1024) }, 403, CHANGE_CALL("POST /v1/tasks")],

  // ---- an operator does everything but a worker's calls ----
  ["operator claims", "POST", "/v1/claim", { who: "alice", body: { node: "alpha", worker: "w" } }, 403, WORKER_CALL("POST /v1/claim", "operator alice")],
  ["operator heartbeats", "POST", "/v1/tasks/1/heartbeat", { who: "alice", body: { leaseId: "LEASE1" } }, 403, WORKER_CALL("POST /v1/tasks/:id/heartbeat", "operator alice")],
  ["operator completes", "POST", "/v1/tasks/1/complete", { who: "alice", body: done({}) }, 403, WORKER_CALL("POST /v1/tasks/:id/complete", "operator alice")],
  ["operator releases", "POST", "/v1/tasks/1/release", { who: "alice", body: { leaseId: "LEASE1" } }, 403, WORKER_CALL("POST /v1/tasks/:id/release", "operator alice")],
  ["operator reports presence", "POST", "/v1/nodes/me/presence", { who: "alice", body: { status: "idle" } }, 403, WORKER_CALL("POST /v1/nodes/me/presence", "operator alice")],
  ["operator reads a node's settings", "GET", "/v1/nodes/me", { who: "alice" }, 403, WORKER_CALL("GET /v1/nodes/me", "operator alice")],

  // ---- another node's token on alpha's tasks ----
  ["beta reads alpha's task", "GET", "/v1/tasks/2", { who: "beta" }, 403, VISIBLE(2)],
  ["beta waits on alpha's task", "GET", "/v1/tasks/2/wait?timeoutSeconds=0", { who: "beta" }, 403, VISIBLE(2)],
  ["beta cancels alpha's task", "POST", "/v1/tasks/2/cancel", { who: "beta" }, 403, VISIBLE(2)],
  ["beta cancels alpha's running task", "POST", "/v1/tasks/1/cancel", { who: "beta" }, 403, VISIBLE(1)],
  ["beta re-prioritises alpha's task", "POST", "/v1/tasks/2/priority", { who: "beta", body: { priority: "high" } }, 403, VISIBLE(2)],
  ["beta claims for alpha", "POST", "/v1/claim", { who: "beta", body: { node: "alpha", worker: "w" } }, 403, "this token belongs to node beta; it cannot claim tasks for node alpha"],
  ["beta heartbeats alpha's lease", "POST", "/v1/tasks/1/heartbeat", { who: "beta", body: { leaseId: "LEASE1" } }, 403, "task 1 is leased to node alpha, not beta"],
  ["beta completes alpha's task", "POST", "/v1/tasks/1/complete", { who: "beta", body: done({ result: "forged" }) }, 403, "task 1 is leased to node alpha, not beta"],
  ["beta releases alpha's task", "POST", "/v1/tasks/1/release", { who: "beta", body: { leaseId: "LEASE1" } }, 403, "task 1 is leased to node alpha, not beta"],
  ["alpha heartbeats with a wrong lease", "POST", "/v1/tasks/1/heartbeat", { body: { leaseId: "not-the-lease" } }, 409, "lease lost: task 1 is running under another lease"],

  // ---- task ids ----
  ["id 0", "GET", "/v1/tasks/0", {}, 400, 'task id must be a positive integer, got "0"'],
  ["id -1", "GET", "/v1/tasks/-1", {}, 400, 'task id must be a positive integer, got "-1"'],
  ["id 1e3", "GET", "/v1/tasks/1e3", {}, 400, 'task id must be a positive integer, got "1e3"'],
  ["id 1.5", "GET", "/v1/tasks/1.5", {}, 400, 'task id must be a positive integer, got "1.5"'],
  ["id 01", "GET", "/v1/tasks/01", {}, 400, 'task id must be a positive integer, got "01"'],
  ["id 0x10", "GET", "/v1/tasks/0x10", {}, 400, 'task id must be a positive integer, got "0x10"'],
  ["id beyond exact integers (16 digits)", "GET", "/v1/tasks/9007199254740993", {}, 400, 'task id must be a positive integer, got "9007199254740993"'],
  ["id of 40 digits", "GET", "/v1/tasks/" + big(40, "9"), {}, 400, `task id must be a positive integer, got "${big(40, "9")}"`],
  ["largest id: 15 digits, no such task", "GET", "/v1/tasks/999999999999999", {}, 404, "no task 999999999999999"],
  ["id abc", "GET", "/v1/tasks/abc", {}, 400, 'task id must be a positive integer, got "abc"'],
  ["id with a NUL byte", "GET", "/v1/tasks/%00", {}, 400, 'task id must be a positive integer, got "\\u0000"'],
  ["id as an encoded path traversal", "GET", "/v1/tasks/..%2F..%2Fhealthz", {}, 400, 'task id must be a positive integer, got "../../healthz"'],
  ["id with an ESC sequence", "GET", "/v1/tasks/%1B%5B2J", {}, 400, 'task id must be a positive integer, got "\\u001b[2J"'],
  ["cancel id 0", "POST", "/v1/tasks/0/cancel", {}, 400, 'task id must be a positive integer, got "0"'],
  ["cancel an unknown task", "POST", "/v1/tasks/999/cancel", {}, 404, "no task 999"],
  ["priority of an unknown task", "POST", "/v1/tasks/999/priority", { body: { priority: "low" } }, 404, "no task 999"],
  ["complete an unknown task", "POST", "/v1/tasks/999/complete", { body: done({}) }, 404, "no task 999"],
  ["an unknown route", "GET", "/v2/tasks", {}, 404, "no route GET /v2/tasks"],

  // ---- bodies ----
  ["not JSON", "POST", "/v1/tasks", { raw: "hello" }, 400, "request body is not valid JSON (it ends early or is not JSON at all)"],
  ["JSON with a trailing comma", "POST", "/v1/tasks", { raw: '{"target": "alpha",}' }, 400, "request body is not valid JSON (error at character 19)"],
  ["an empty body", "POST", "/v1/tasks", { raw: "" }, 400, "request body is empty; send a JSON object"],
  ["a body of spaces", "POST", "/v1/tasks", { raw: "   " }, 400, "request body is empty; send a JSON object"],
  ["an array", "POST", "/v1/tasks", { raw: JSON.stringify([ok]) }, 400, "request body must be a JSON object"],
  ["null", "POST", "/v1/tasks", { raw: "null" }, 400, "request body must be a JSON object"],
  ["a string", "POST", "/v1/tasks", { raw: '"Run uptime"' }, 400, "request body must be a JSON object"],
  ["a number", "POST", "/v1/tasks", { raw: "42" }, 400, "request body must be a JSON object"],
  ["nesting 9 deep", "POST", "/v1/tasks", { raw: JSON.stringify({ ...ok, tags: { a: [[[[[[[["x"]]]]]]]] } }) }, 400, 'field "tags.a.0.0.0.0.0.0": nests deeper than 8 levels; no request needs that'],
  ["nesting 100,000 deep", "POST", "/v1/tasks", { raw: `{"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}` }, 400, 'field "x.0.0.0.0.0.0.0": nests deeper than 8 levels; no request needs that'],
  ["a body over 1 MiB", "POST", "/v1/tasks", { raw: JSON.stringify({ ...ok, prompt: big(1024 * 1024) }) }, 413, "request body is larger than 1048576 bytes"],
  ["text/plain", "POST", "/v1/tasks", { raw: "hello", headers: { "content-type": "text/plain" } }, 415, "send the body as Content-Type: application/json"],
  ["a form", "POST", "/v1/tasks", { raw: "target=alpha&prompt=x", headers: { "content-type": "application/x-www-form-urlencoded" } }, 415, "send the body as Content-Type: application/json"],
  ["an unknown field", "POST", "/v1/tasks", { body: { ...ok, colour: "red" } }, 400, 'unknown field "colour"'],
  ["two unknown fields", "POST", "/v1/tasks", { body: { ...ok, colour: "red", size: 1 } }, 400, 'unknown fields "colour", "size"'],
  ["an unknown field in a report", "POST", "/v1/tasks/1/complete", { body: done({ node: "beta" }) }, 400, 'unknown field "node"'],
  ["an unknown field named with ESC", "POST", "/v1/tasks", { body: { ...ok, "\u001b[2J": 1 } }, 400, 'unknown field "\\u001b[2J"'],
  ["no target", "POST", "/v1/tasks", { body: { prompt: "x" } }, 400, 'field "target" is required'],
  ["no prompt", "POST", "/v1/tasks", { body: { target: "alpha" } }, 400, 'field "prompt" is required'],
  ["prompt a number", "POST", "/v1/tasks", { body: { ...ok, prompt: 5 } }, 400, 'field "prompt": expected string, got number'],
  ["prompt null", "POST", "/v1/tasks", { body: { ...ok, prompt: null } }, 400, 'field "prompt": expected string, got null'],
  ["target an array", "POST", "/v1/tasks", { body: { ...ok, target: ["alpha"] } }, 400, 'field "target": expected string, got array'],
  ["timeoutSeconds a string", "POST", "/v1/tasks", { body: { ...ok, timeoutSeconds: "60" } }, 400, 'field "timeoutSeconds": expected number, got string'],
  ["tags an array", "POST", "/v1/tasks", { body: { ...ok, tags: ["os=debian"] } }, 400, 'field "tags": expected record, got array'],
  ["a tag value a number", "POST", "/v1/tasks", { body: { ...ok, tags: { gpu: 1 } } }, 400, 'field "tags.gpu": expected string, got number'],
  ["claimNext a string", "POST", "/v1/tasks/1/complete", { body: done({ claimNext: "yes" }) }, 400, 'field "claimNext": expected boolean, got string'],
  ["waitSeconds a string", "POST", "/v1/claim", { body: { node: "alpha", worker: "w", waitSeconds: "5" } }, 400, 'field "waitSeconds": expected number, got string'],
  ["priority a number", "POST", "/v1/tasks/2/priority", { body: { priority: 1 } }, 400, 'field "priority": Invalid option: expected one of "high"|"medium"|"low"'],
  ["an unknown priority", "POST", "/v1/tasks", { body: { ...ok, priority: "urgent" } }, 400, 'field "priority": Invalid option: expected one of "high"|"medium"|"low"'],
  ["an unknown model", "POST", "/v1/tasks", { body: { ...ok, model: "gpt" } }, 400, 'field "model": Invalid option: expected one of "auto"|"haiku"|"sonnet"|"opus"'],
  ["an unknown outcome", "POST", "/v1/tasks/1/complete", { body: done({ outcome: "done" }) }, 400, 'field "outcome": Invalid option: expected one of "completed"|"failed"|"cancelled"'],

  // ---- text: NUL bytes, lone surrogates, control characters, sizes ----
  ["NUL in the prompt", "POST", "/v1/tasks", { body: { ...ok, prompt: "Run\u0000uptime" } }, 400, `field "prompt": ${NUL}`],
  ["a lone high surrogate in the prompt", "POST", "/v1/tasks", { raw: '{"target": "alpha", "prompt": "Run \\ud800 uptime"}' }, 400, 'field "prompt": contains a lone UTF-16 surrogate (U+D800); send well-formed Unicode'],
  ["a lone low surrogate at the end of the prompt", "POST", "/v1/tasks", { raw: '{"target": "alpha", "prompt": "Run uptime \\udfff"}' }, 400, 'field "prompt": contains a lone UTF-16 surrogate (U+DFFF); send well-formed Unicode'],
  ["surrogates the wrong way round", "POST", "/v1/tasks", { raw: '{"target": "alpha", "prompt": "\\udc00\\ud800"}' }, 400, 'field "prompt": contains a lone UTF-16 surrogate (U+DC00); send well-formed Unicode'],
  ["NUL in the target", "POST", "/v1/tasks", { body: { ...ok, target: "alpha\u0000" } }, 400, `field "target": ${NUL}`],
  ["NUL in a tag value", "POST", "/v1/tasks", { body: { ...ok, tags: { os: "debian\u0000" } } }, 400, `field "tags.os": ${NUL}`],
  ["NUL in a tag name", "POST", "/v1/tasks", { body: { ...ok, tags: { "o\u0000s": "debian" } } }, 400, `field "tags": a key ${NUL}`],
  ["NUL in cwd", "POST", "/v1/tasks", { body: { ...ok, cwd: "/tmp\u0000/x" } }, 400, `field "cwd": ${NUL}`],
  ["NUL in repo", "POST", "/v1/tasks", { body: { ...ok, repo: "https://example.com/a\u0000.git" } }, 400, `field "repo": ${NUL}`],
  ["NUL in an unknown field", "POST", "/v1/tasks", { body: { ...ok, "x\u0000": 1 } }, 400, `request body: a key ${NUL}`],
  ["NUL in a worker id", "POST", "/v1/claim", { body: { node: "alpha", worker: "w\u0000" } }, 400, `field "worker": ${NUL}`],
  ["NUL in a lease id", "POST", "/v1/tasks/1/heartbeat", { body: { leaseId: "LEASE1\u0000" } }, 400, `field "leaseId": ${NUL}`],
  ["NUL in a result", "POST", "/v1/tasks/1/complete", { body: done({ result: "ok\u0000" }) }, 400, `field "result": ${NUL}`],
  ["a lone surrogate in an error", "POST", "/v1/tasks/1/complete", { raw: '{"leaseId": "LEASE1", "outcome": "failed", "error": "\\ud83d"}' }, 400, 'field "error": contains a lone UTF-16 surrogate (U+D83D); send well-formed Unicode'],
  ["NUL in a model reason", "POST", "/v1/tasks/1/complete", { body: done({ modelReason: "why\u0000" }) }, 400, `field "modelReason": ${NUL}`],
  ["NUL in a presence message", "POST", "/v1/nodes/me/presence", { body: { status: "busy", message: "task\u0000" } }, 400, `field "message": ${NUL}`],
  ["NUL in a query value", "GET", "/v1/tasks?state=pending%00", {}, 400, `query "state": ${NUL}`],
  ["invalid UTF-8 in a query value (kept encoded)", "GET", "/v1/tasks?node=%ED%A0%80", {}, 400, 'query "node": unknown node "%ED%A0%80"'],
  ["ESC in a worker id", "POST", "/v1/claim", { body: { node: "alpha", worker: "w\u001b[2J" } }, 400, `field "worker": ${ONE_LINE}`],
  ["a newline in a model reason", "POST", "/v1/tasks/1/complete", { body: done({ modelReason: "a\nb" }) }, 400, `field "modelReason": ${ONE_LINE}`],
  ["ESC in a presence message", "POST", "/v1/nodes/me/presence", { body: { status: "busy", message: "\u001b]0;owned\u0007" } }, 400, `field "message": ${ONE_LINE}`],
  ["a C1 control in a tag value", "POST", "/v1/tasks", { body: { ...ok, tags: { os: "debian\u009b" } } }, 400, `field "tags.os": ${ONE_LINE}`],
  ["a prompt of 64 KiB + 1", "POST", "/v1/tasks", { body: { ...ok, prompt: big(64 * 1024 + 1) } }, 400, 'field "prompt": 65537 bytes; the limit is 65536 bytes (64 KiB)'],
  ["a prompt of 21,846 euro signs (3 bytes each)", "POST", "/v1/tasks", { body: { ...ok, prompt: big(21_846, "€") } }, 400, 'field "prompt": 65538 bytes; the limit is 65536 bytes (64 KiB)'],
  ["an empty prompt", "POST", "/v1/tasks", { body: { ...ok, prompt: "" } }, 400, 'field "prompt": the prompt is empty'],
  ["a result of 128 KiB + 1", "POST", "/v1/tasks/1/complete", { body: done({ result: big(128 * 1024 + 1) }) }, 400, 'field "result": 131073 bytes; the limit is 131072 bytes (128 KiB)'],
  ["an error of 16 KiB + 1", "POST", "/v1/tasks/1/complete", { body: done({ outcome: "failed", error: big(16 * 1024 + 1) }) }, 400, 'field "error": 16385 bytes; the limit is 16384 bytes (16 KiB)'],
  ["a worker id of 201 characters", "POST", "/v1/claim", { body: { node: "alpha", worker: big(201) } }, 400, 'field "worker": at most 200 characters'],
  ["a model reason of 201 characters", "POST", "/v1/tasks/1/complete", { body: done({ modelReason: big(201) }) }, 400, 'field "modelReason": at most 200 characters'],
  ["a presence message of 501 characters", "POST", "/v1/nodes/me/presence", { body: { status: "busy", message: big(501) } }, 400, 'field "message": at most 500 characters'],
  ["a lease id of 65 characters", "POST", "/v1/tasks/1/heartbeat", { body: { leaseId: big(65) } }, 400, 'field "leaseId": at most 64 characters'],

  // ---- tags ----
  ["tag __proto__", "POST", "/v1/tasks", { raw: '{"target": "any", "prompt": "p", "tags": {"__proto__": "x"}}' }, 400, RESERVED('field "tags"', "__proto__")],
  ["tag __proto__ holding an object", "POST", "/v1/tasks", { raw: '{"target": "any", "prompt": "p", "tags": {"__proto__": {"os": "macos"}}}' }, 400, RESERVED('field "tags"', "__proto__")],
  ["tag constructor", "POST", "/v1/tasks", { body: { target: "any", prompt: "p", tags: { constructor: "x" } } }, 400, RESERVED('field "tags"', "constructor")],
  ["tag prototype", "POST", "/v1/tasks", { body: { target: "any", prompt: "p", tags: { prototype: "x" } } }, 400, RESERVED('field "tags"', "prototype")],
  ["a top-level __proto__", "POST", "/v1/tasks", { raw: '{"target": "alpha", "prompt": "p", "__proto__": {"timeoutSeconds": 1}}' }, 400, RESERVED("request body", "__proto__")],
  ["tag toString: an ordinary name no node has", "POST", "/v1/tasks", { body: { target: "any", prompt: "p", tags: { toString: "x" } } }, 400, 'field "tags": no node has {"toString":"x"}'],
  ["tag hasOwnProperty on a named node", "POST", "/v1/tasks", { body: { target: "alpha", prompt: "p", tags: { hasOwnProperty: "x" } } }, 400, 'field "tags": no node "alpha" has {"hasOwnProperty":"x"}'],
  ["a tag name with a space", "POST", "/v1/tasks", { body: { ...ok, tags: { "a b": "x" } } }, 400, 'field "tags.a b": tag names are 1-64 letters, digits, _ . -'],
  ["a tag name of 65 characters", "POST", "/v1/tasks", { body: { ...ok, tags: { [big(65, "t")]: "x" } } }, 400, `field "tags.${big(65, "t")}": tag names are 1-64 letters, digits, _ . -`],
  ["33 tags", "POST", "/v1/tasks", { body: { ...ok, tags: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`t${i}`, "x"])) } }, 400, 'field "tags": at most 32 tags'],
  ["no node has the tags", "POST", "/v1/tasks", { body: { target: "any", prompt: "p", tags: { os: "windows-wsl" } } }, 400, 'field "tags": no node has {"os":"windows-wsl"}'],

  // ---- target ----
  ["target constructor", "POST", "/v1/tasks", { body: { ...ok, target: "constructor" } }, 400, 'field "target": unknown node "constructor"; known nodes: alpha, beta, or "any"'],
  ["target tostring", "POST", "/v1/tasks", { body: { ...ok, target: "tostring" } }, 400, 'field "target": unknown node "tostring"; known nodes: alpha, beta, or "any"'],
  ["target toString", "POST", "/v1/tasks", { body: { ...ok, target: "toString" } }, 400, 'field "target": expected a node name (lowercase letters, digits, -) or "any"'],
  ["target __proto__", "POST", "/v1/tasks", { body: { ...ok, target: "__proto__" } }, 400, 'field "target": expected a node name (lowercase letters, digits, -) or "any"'],
  ["target ANY", "POST", "/v1/tasks", { body: { ...ok, target: "ANY" } }, 400, 'field "target": expected a node name (lowercase letters, digits, -) or "any"'],
  ["target empty", "POST", "/v1/tasks", { body: { ...ok, target: "" } }, 400, 'field "target": expected a node name (lowercase letters, digits, -) or "any"'],
  ["target -alpha", "POST", "/v1/tasks", { body: { ...ok, target: "-alpha" } }, 400, 'field "target": expected a node name (lowercase letters, digits, -) or "any"'],
  ["target of 64 characters", "POST", "/v1/tasks", { body: { ...ok, target: big(64, "a") } }, 400, 'field "target": a node name has at most 63 characters'],
  ["an unknown node", "POST", "/v1/tasks", { body: { ...ok, target: "gamma" } }, 400, 'field "target": unknown node "gamma"; known nodes: alpha, beta, or "any"'],
  ["the node lacks the tags", "POST", "/v1/tasks", { body: { target: "beta", prompt: "p", tags: { gpu: "true" } } }, 400, 'field "tags": no node "beta" has {"gpu":"true"}'],

  // ---- numbers ----
  ["timeoutSeconds 1e-300", "POST", "/v1/tasks", { body: { ...ok, timeoutSeconds: 1e-300 } }, 400, `field "timeoutSeconds": ${SECONDS(1, 604800)}`],
  ["timeoutSeconds 0", "POST", "/v1/tasks", { body: { ...ok, timeoutSeconds: 0 } }, 400, `field "timeoutSeconds": ${SECONDS(1, 604800)}`],
  ["timeoutSeconds -0", "POST", "/v1/tasks", { raw: '{"target": "alpha", "prompt": "p", "timeoutSeconds": -0}' }, 400, `field "timeoutSeconds": ${SECONDS(1, 604800)}`],
  ["timeoutSeconds 0.5", "POST", "/v1/tasks", { body: { ...ok, timeoutSeconds: 0.5 } }, 400, `field "timeoutSeconds": ${SECONDS(1, 604800)}`],
  ["timeoutSeconds 1e308", "POST", "/v1/tasks", { body: { ...ok, timeoutSeconds: 1e308 } }, 400, `field "timeoutSeconds": ${SECONDS(1, 604800)}`],
  ["timeoutSeconds 1e309 (Infinity in JSON)", "POST", "/v1/tasks", { raw: '{"target": "alpha", "prompt": "p", "timeoutSeconds": 1e309}' }, 400, 'field "timeoutSeconds": expected number, got Infinity'],
  ["timeoutSeconds \"NaN\"", "POST", "/v1/tasks", { body: { ...ok, timeoutSeconds: "NaN" } }, 400, 'field "timeoutSeconds": expected number, got string'],
  ["maxAttempts 0", "POST", "/v1/tasks", { body: { ...ok, maxAttempts: 0 } }, 400, 'field "maxAttempts": Too small: expected number to be >=1'],
  ["maxAttempts 1.5", "POST", "/v1/tasks", { body: { ...ok, maxAttempts: 1.5 } }, 400, 'field "maxAttempts": expected int, got number'],
  ["maxAttempts 101", "POST", "/v1/tasks", { body: { ...ok, maxAttempts: 101 } }, 400, 'field "maxAttempts": Too big: expected number to be <=100'],
  ["budgetUsd 0", "POST", "/v1/tasks", { body: { ...ok, budgetUsd: 0 } }, 400, 'field "budgetUsd": expected USD above 0, at most 10000'],
  ["budgetUsd -1", "POST", "/v1/tasks", { body: { ...ok, budgetUsd: -1 } }, 400, 'field "budgetUsd": expected USD above 0, at most 10000'],
  ["budgetUsd 1e308", "POST", "/v1/tasks", { body: { ...ok, budgetUsd: 1e308 } }, 400, 'field "budgetUsd": expected USD above 0, at most 10000'],
  ["budgetUsd \"5\"", "POST", "/v1/tasks", { body: { ...ok, budgetUsd: "5" } }, 400, 'field "budgetUsd": expected number, got string'],
  ["spentUsd -0.5 in a heartbeat", "POST", "/v1/tasks/1/heartbeat", { body: { leaseId: "LEASE1", spentUsd: -0.5 } }, 400, 'field "spentUsd": expected USD from 0 to 10000'],
  ["spentUsd 1e308 in a heartbeat", "POST", "/v1/tasks/1/heartbeat", { body: { leaseId: "LEASE1", spentUsd: 1e308 } }, 400, 'field "spentUsd": expected USD from 0 to 10000'],
  ["costUsd 1e308", "POST", "/v1/tasks/1/complete", { body: done({ costUsd: 1e308 }) }, 400, 'field "costUsd": expected USD from 0 to 10000'],
  ["costUsd 10000.01", "POST", "/v1/tasks/1/complete", { body: done({ costUsd: 10_000.01 }) }, 400, 'field "costUsd": expected USD from 0 to 10000'],
  ["costUsd -1", "POST", "/v1/tasks/1/complete", { body: done({ costUsd: -1 }) }, 400, 'field "costUsd": expected USD from 0 to 10000'],
  ["costUsd \"1\"", "POST", "/v1/tasks/1/complete", { body: done({ costUsd: "1" }) }, 400, 'field "costUsd": expected number, got string'],
  ["durationSeconds 1e308", "POST", "/v1/tasks/1/complete", { body: done({ durationSeconds: 1e308 }) }, 400, `field "durationSeconds": ${SECONDS(0, 2592000)}`],
  ["durationSeconds -1", "POST", "/v1/tasks/1/complete", { body: done({ durationSeconds: -1 }) }, 400, `field "durationSeconds": ${SECONDS(0, 2592000)}`],
  ["exitCode 1.5", "POST", "/v1/tasks/1/complete", { body: done({ exitCode: 1.5 }) }, 400, 'field "exitCode": expected int, got number'],
  ["exitCode 2^32", "POST", "/v1/tasks/1/complete", { body: done({ exitCode: 2 ** 32 }) }, 400, 'field "exitCode": Too big: expected number to be <=4294967295'],
  ["waitSeconds 1e308", "POST", "/v1/claim", { body: { node: "alpha", worker: "w", waitSeconds: 1e308 } }, 400, `field "waitSeconds": ${SECONDS(0, 600)}`],
  ["waitSeconds -1", "POST", "/v1/claim", { body: { node: "alpha", worker: "w", waitSeconds: -1 } }, 400, `field "waitSeconds": ${SECONDS(0, 600)}`],

  // ---- repo and cwd ----
  ["repo ftp://", "POST", "/v1/tasks", { body: { ...ok, repo: "ftp://example.com/a.git" } }, 400, `field "repo": ${GIT_URL} "ftp://example.com/a.git"`],
  ["repo http:// (no TLS)", "POST", "/v1/tasks", { body: { ...ok, repo: "http://example.com/a.git" } }, 400, `field "repo": ${GIT_URL} "http://example.com/a.git"`],
  ["repo without a path", "POST", "/v1/tasks", { body: { ...ok, repo: "https://example.com" } }, 400, `field "repo": ${GIT_URL} "https://example.com"`],
  ["repo ending in /..", "POST", "/v1/tasks", { body: { ...ok, repo: "https://example.com/org/.." } }, 400, `field "repo": ${GIT_URL} "https://example.com/org/.."`],
  ["repo with a . segment", "POST", "/v1/tasks", { body: { ...ok, repo: "https://example.com/./a.git" } }, 400, `field "repo": ${GIT_URL} "https://example.com/./a.git"`],
  ["repo an option (--upload-pack)", "POST", "/v1/tasks", { body: { ...ok, repo: "--upload-pack=touch /tmp/pwned" } }, 400, `field "repo": ${GIT_URL} "--upload-pack=touch /tmp/pwned"`],
  ["repo scp form, path an option", "POST", "/v1/tasks", { body: { ...ok, repo: "git@example.com:-oProxyCommand=x" } }, 400, `field "repo": ${GIT_URL} "git@example.com:-oProxyCommand=x"`],
  ["repo ssh://, host an option", "POST", "/v1/tasks", { body: { ...ok, repo: "ssh://-oProxyCommand=x/a.git" } }, 400, `field "repo": ${GIT_URL} "ssh://-oProxyCommand=x/a.git"`],
  ["repo with a space", "POST", "/v1/tasks", { body: { ...ok, repo: "https://example.com/a b.git" } }, 400, `field "repo": ${GIT_URL} "https://example.com/a b.git"`],
  ["repo file:// relative", "POST", "/v1/tasks", { body: { ...ok, repo: "file://srv/a.git" } }, 400, `field "repo": ${GIT_URL} "file://srv/a.git"`],
  ["repo a bare path", "POST", "/v1/tasks", { body: { ...ok, repo: "/srv/a.git" } }, 400, `field "repo": ${GIT_URL} "/srv/a.git"`],
  ["repo empty", "POST", "/v1/tasks", { body: { ...ok, repo: "" } }, 400, `field "repo": ${GIT_URL} ""`],
  ["repo of 2,049 characters", "POST", "/v1/tasks", { body: { ...ok, repo: `https://example.com/${big(2029)}` } }, 400, `field "repo": ${GIT_URL} "https://example.com/${big(59)}…"`],
  ["repo with a newline", "POST", "/v1/tasks", { body: { ...ok, repo: "https://example.com/a.git\n--x" } }, 400, `field "repo": ${GIT_URL} "https://example.com/a.git\\n--x"`],
  ["cwd relative", "POST", "/v1/tasks", { body: { ...ok, cwd: "src" } }, 400, 'field "cwd": cwd must be an absolute path'],
  ["cwd with ..", "POST", "/v1/tasks", { body: { ...ok, cwd: "/home/fleet/../root" } }, 400, `field "cwd": ${NORMAL} "/home/fleet/../root"`],
  ["cwd /..", "POST", "/v1/tasks", { body: { ...ok, cwd: "/.." } }, 400, `field "cwd": ${NORMAL} "/.."`],
  ["cwd with .", "POST", "/v1/tasks", { body: { ...ok, cwd: "/srv/./x" } }, 400, `field "cwd": ${NORMAL} "/srv/./x"`],
  ["cwd with //", "POST", "/v1/tasks", { body: { ...ok, cwd: "/srv//x" } }, 400, `field "cwd": ${NORMAL} "/srv//x"`],
  ["cwd with a trailing /", "POST", "/v1/tasks", { body: { ...ok, cwd: "/srv/x/" } }, 400, `field "cwd": ${NORMAL} "/srv/x/"`],
  ["cwd with a newline", "POST", "/v1/tasks", { body: { ...ok, cwd: "/srv/x\ny" } }, 400, 'field "cwd": a path without control characters'],
  ["cwd of 4,097 bytes", "POST", "/v1/tasks", { body: { ...ok, cwd: `/${big(4096)}` } }, 400, 'field "cwd": 4097 bytes; the limit is 4096 bytes (PATH_MAX)'],
  ["cwd and repo", "POST", "/v1/tasks", { body: { ...ok, cwd: "/srv", repo: "https://example.com/a.git" } }, 400, 'field "repo": give either cwd or repo, not both'],

  // ---- health reports (fleet status --report): an operator's only ----
  ["node reports health", "POST", "/v1/health", { body: HEALTH({}) }, 403, "POST /v1/health needs an operator token; this is node alpha's token"],
  ["viewer reports health", "POST", "/v1/health", { who: "bob", body: HEALTH({}) }, 403, "POST /v1/health needs an operator token; this is viewer bob's token"],
  ["health of an unknown node", "POST", "/v1/health", { who: "alice", body: HEALTH({ node: "gamma" }) }, 400, 'field "nodes": unknown node "gamma"; this queue serves alpha, beta'],
  ["health of a node named __proto__", "POST", "/v1/health", { who: "alice", body: HEALTH({ node: "__proto__" }) }, 400, 'field "nodes": unknown node "__proto__"; this queue serves alpha, beta'],
  ["health with an unknown reach", "POST", "/v1/health", { who: "alice", body: HEALTH({ reach: "down" }) }, 400, 'field "nodes.0.reach": Invalid option: expected one of "ok"|"offline"|"timeout"'],
  ["health with a 1001-character problem", "POST", "/v1/health", { who: "alice", body: HEALTH({ problems: [big(1001)] }) }, 400, 'field "nodes.0.problems.0": Too big: expected string to have <=1000 characters'],
  ["health with 501 problems", "POST", "/v1/health", { who: "alice", body: HEALTH({ problems: Array(501).fill("x") }) }, 400, 'field "nodes.0.problems": Too big: expected array to have <=500 items'],
  ["health without a fleet", "POST", "/v1/health", { who: "alice", raw: JSON.stringify({ nodes: [] }) }, 400, 'field "fleet" is required'],

  // ---- query parameters ----
  ["limit 0", "GET", "/v1/tasks?limit=0", {}, 400, 'query "limit" must be an integer from 1 to 10000, got "0"'],
  ["limit -1", "GET", "/v1/tasks?limit=-1", {}, 400, 'query "limit" must be an integer from 1 to 10000, got "-1"'],
  ["limit 1e3", "GET", "/v1/tasks?limit=1e3", {}, 400, 'query "limit" must be an integer from 1 to 10000, got "1e3"'],
  ["limit 10001", "GET", "/v1/tasks?limit=10001", {}, 400, 'query "limit" must be an integer from 1 to 10000, got "10001"'],
  ["limit empty", "GET", "/v1/tasks?limit=", {}, 400, 'query "limit" must be an integer from 1 to 10000, got ""'],
  ["limit twice", "GET", "/v1/tasks?limit=1&limit=2", {}, 400, 'query "limit" is given 2 times; give it once'],
  ["state done", "GET", "/v1/tasks?state=done", {}, 400, 'query "state" must be one of pending, running, completed, failed, cancelled, got "done"'],
  ["state PENDING", "GET", "/v1/tasks?state=PENDING", {}, 400, 'query "state" must be one of pending, running, completed, failed, cancelled, got "PENDING"'],
  ["state with ESC", "GET", "/v1/tasks?state=%1B%5B31m", {}, 400, 'query "state" must be one of pending, running, completed, failed, cancelled, got "\\u001b[31m"'],
  ["node constructor", "GET", "/v1/tasks?node=constructor", {}, 400, 'query "node": unknown node "constructor"'],
  ["node gamma", "GET", "/v1/tasks?node=gamma", {}, 400, 'query "node": unknown node "gamma"'],
  ["an unknown parameter", "GET", "/v1/tasks?owner=me", {}, 400, 'unknown query parameter "owner" (allowed: state, node, limit, tag)'],
  ["__proto__ as a parameter", "GET", "/v1/tasks?__proto__=x", {}, 400, RESERVED("query string", "__proto__")],
  ["tag without =", "GET", "/v1/tasks?tag=gpu", {}, 400, 'query "tag" must be name=value, got "gpu"'],
  ["tag with an empty name", "GET", "/v1/tasks?tag==true", {}, 400, 'query "tag" must be name=value, got "=true"'],
  ["tag twice", "GET", "/v1/tasks?tag=a=1&tag=b=2", {}, 400, 'query "tag" is given 2 times; give it once'],
  ["wait timeoutSeconds abc", "GET", "/v1/tasks/2/wait?timeoutSeconds=abc", {}, 400, 'query "timeoutSeconds" must be a number of seconds ≥ 0, got "abc"'],
  ["wait timeoutSeconds -1", "GET", "/v1/tasks/2/wait?timeoutSeconds=-1", {}, 400, 'query "timeoutSeconds" must be a number of seconds ≥ 0, got "-1"'],
  ["wait timeoutSeconds NaN", "GET", "/v1/tasks/2/wait?timeoutSeconds=NaN", {}, 400, 'query "timeoutSeconds" must be a number of seconds ≥ 0, got "NaN"'],
  ["wait timeoutSeconds Infinity", "GET", "/v1/tasks/2/wait?timeoutSeconds=Infinity", {}, 400, 'query "timeoutSeconds" must be a number of seconds ≥ 0, got "Infinity"'],
  ["wait timeoutSeconds 1e3", "GET", "/v1/tasks/2/wait?timeoutSeconds=1e3", {}, 400, 'query "timeoutSeconds" must be a number of seconds ≥ 0, got "1e3"'],
  ["wait timeoutSeconds 0x10", "GET", "/v1/tasks/2/wait?timeoutSeconds=0x10", {}, 400, 'query "timeoutSeconds" must be a number of seconds ≥ 0, got "0x10"'],
  ["wait timeoutSeconds with a space", "GET", "/v1/tasks/2/wait?timeoutSeconds=%205", {}, 400, 'query "timeoutSeconds" must be a number of seconds ≥ 0, got " 5"'],
  ["wait timeoutSeconds twice", "GET", "/v1/tasks/2/wait?timeoutSeconds=1&timeoutSeconds=2", {}, 400, 'query "timeoutSeconds" is given 2 times; give it once'],
  ["wait with an unknown parameter", "GET", "/v1/tasks/2/wait?t=1", {}, 400, 'unknown query parameter "t" (allowed: timeoutSeconds)'],
];

describe("queue API: hostile requests", () => {
  it("has at least 100 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
  });

  it.each(cases)("%s → %s %s: refused, nothing written", async (_name, method, path, o, status, error) => {
    const headers: Record<string, string> = { ...(o.who === null ? {} : auth(o.who ?? "alpha")), ...o.headers };
    let payload: string | undefined;
    if (o.raw !== undefined) payload = o.raw;
    else if (o.body !== undefined) payload = JSON.stringify(o.body).replaceAll("LEASE1", lease1);
    if (payload !== undefined) headers["content-type"] ??= "application/json";
    const before = snapshot();
    const r = await q.app.inject({ method, url: path, headers, payload });
    const body = r.json();
    expect(r.statusCode, JSON.stringify(body)).toBe(status);
    if (typeof error === "string") expect(body).toEqual({ error });
    else expect(body.error).toMatch(error);
    expect(snapshot()).toBe(before);
  });
});

describe("queue API: what each scope may do", () => {
  const get = async (who: string, url: string) => q.app.inject({ method: "GET", url, headers: auth(who) });
  const ids = async (who: string, query = "") => ((await get(who, `/v1/tasks${query}`)).json().tasks as Task[]).map((t) => t.id);

  it.each([
    // who, what they list: a node its own (submitted, running or targeting it); people everything
    ["alpha", [2, 1]],
    ["beta", [4, 3]],
    ["alice", [4, 3, 2, 1]],
    ["bob", [4, 3, 2, 1]],
  ])("%s lists %j", async (who, expected) => {
    expect(await ids(who)).toEqual(expected);
  });

  it("a node's filters narrow its own view: beta asking for alpha's tasks sees none of them", async () => {
    expect(await ids("beta", "?node=alpha")).toEqual([]);
    expect(await ids("alice", "?node=alpha&state=pending")).toEqual([2]);
  });

  it("every token reads the fleet's aggregates (counts, presence, spend; no task text)", async () => {
    for (const who of ["alpha", "beta", "alice", "bob"]) {
      expect((await get(who, "/v1/stats")).json().byState).toEqual({ pending: 3, running: 1, completed: 0, failed: 0, cancelled: 0 });
      expect((await get(who, "/v1/nodes")).json().nodes.map((n: { node: string }) => n.node)).toEqual(["alpha", "beta"]);
      expect((await get(who, "/metrics")).statusCode).toBe(200);
    }
  });

  it("a viewer reads any task; a node reads a task that targets it, submitted by someone else", async () => {
    expect((await get("bob", "/v1/tasks/2")).json()).toMatchObject({ id: 2, submittedBy: "alpha" });
    expect((await get("beta", "/v1/tasks/4")).json()).toMatchObject({ id: 4, submittedBy: "alice", target: "beta" });
    expect((await get("bob", "/v1/tasks/2/wait?timeoutSeconds=0")).json()).toMatchObject({ id: 2, state: "pending" });
  });

  it("the Bearer scheme is case-insensitive (RFC 9110)", async () => {
    const r = await q.app.inject({ method: "GET", url: "/v1/tasks/2", headers: { authorization: `bearer ${tokenOf("alpha")}` } });
    expect(r.statusCode).toBe(200);
  });

  it("beta re-prioritises and cancels alice's task for beta; alice cancels alpha's; all recorded", async () => {
    const post = (who: string, url: string, payload?: object) => q.app.inject({ method: "POST", url, headers: auth(who), payload });
    expect((await post("beta", "/v1/tasks/4/priority", { priority: "high" })).json()).toMatchObject({ id: 4, priority: "high" });
    expect((await post("beta", "/v1/tasks/4/cancel")).json()).toMatchObject({ id: 4, state: "cancelled" });
    expect((await post("alice", "/v1/tasks/2/cancel")).json()).toMatchObject({ id: 2, state: "cancelled" });
    expect(q.store.get(2)!.state).toBe("cancelled");
  });
});

describe("queue API: text that is accepted is stored exactly", () => {
  const submit = async (body: object) => q.app.inject({ method: "POST", url: "/v1/tasks", headers: auth("alpha"), payload: body });

  it.each([
    ["ESC sequences (printed escaped by fleet task)", "\u001b[2J\u001b]0;owned\u0007 Run uptime"],
    ["a surrogate pair (emoji)", "Run uptime 😀"],
    ["tabs, newlines, carriage returns", "line 1\r\n\tline 2"],
    ["exactly 64 KiB", "y".repeat(64 * 1024)],
  ])("a prompt with %s", async (_n, prompt) => {
    const r = await submit({ target: "alpha", prompt });
    expect(r.statusCode).toBe(201);
    expect(q.store.get(r.json().id)!.prompt).toBe(prompt);
  });

  it.each([
    ["https", { repo: "https://github.com/org/repo.git" }],
    ["https with a port and user", { repo: "https://ci@git.example.com:8443/org/sub/repo" }],
    ["ssh://", { repo: "ssh://git@git.example.com:2222/srv/repo.git" }],
    ["scp form", { repo: "git@github.com:org/repo.git" }],
    ["file:// (tests, mirrors)", { repo: "file:///srv/git/repo.git" }],
    ["cwd /", { cwd: "/" }],
    ["a normal cwd", { cwd: "/home/fleet/src/app" }],
  ])("%s", async (_n, where) => {
    const r = await submit({ target: "alpha", prompt: "p", ...where });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject(where);
  });

  it("a worker reports costUsd 10000 (the cap) and a 128 KiB result", async () => {
    const t = (await submit({ target: "beta", prompt: "expensive", priority: "high" })).json() as Task;
    const claim = (await q.app.inject({ method: "POST", url: "/v1/claim", headers: auth("beta"), payload: { node: "beta", worker: "beta/w/0" } })).json();
    expect(claim.task.id).toBe(t.id);
    const result = "€".repeat((128 * 1024) / 4) + "ab".repeat((128 * 1024) / 8);
    const r = await q.app.inject({ method: "POST", url: `/v1/tasks/${t.id}/complete`, headers: auth("beta"), payload: { leaseId: claim.leaseId, outcome: "completed", result, costUsd: 10_000 } });
    expect(r.statusCode).toBe(200);
    expect(q.store.get(t.id)).toMatchObject({ state: "completed", costUsd: 10_000, result });
  });
});

describe("queue API: a refusal before the body is read closes the connection", () => {
  it.each([
    ["401", { headers: {} }, 401, "close"],
    ["403 (viewer)", { headers: auth("bob") }, 403, "close"],
    ["413", { headers: auth("alpha"), payload: JSON.stringify({ ...ok, prompt: big(1024 * 1024) }) }, 413, "close"],
    ["415", { headers: { ...auth("alpha"), "content-type": "text/plain" }, payload: "x" }, 415, "close"],
    ["400, not JSON", { headers: auth("alpha"), payload: "{" }, 400, "close"],
    ["400 from validation: the body was read, the connection stays", { headers: auth("alpha"), payload: JSON.stringify({ ...ok, target: "gamma" }) }, 400, "keep-alive"],
  ] as const)("%s", async (_n, o, status, connection) => {
    const headers: Record<string, string> = { "content-type": "application/json", ...o.headers };
    const r = await q.app.inject({ method: "POST", url: "/v1/tasks", headers, payload: "payload" in o ? o.payload : JSON.stringify(ok) });
    expect(r.statusCode).toBe(status);
    expect(r.headers.connection).toBe(connection);
  });

  it("over a real socket: a 401 with 1 MB of body still to come is answered and the socket closed by the server", async () => {
    const port = Number(new URL(url).port);
    const { answer, closedByServer } = await new Promise<{ answer: string; closedByServer: boolean }>((resolve, reject) => {
      const s = connect(port, "127.0.0.1");
      let answer = "";
      s.setEncoding("utf8");
      s.on("data", (d: string) => (answer += d));
      s.on("end", () => resolve({ answer, closedByServer: true }));
      s.on("error", reject);
      s.write("POST /v1/tasks HTTP/1.1\r\nHost: q\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{");
      setTimeout(() => resolve({ answer, closedByServer: false }), 10_000).unref();
    });
    expect(closedByServer).toBe(true);
    expect(answer).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(answer).toContain('{"error":"missing Authorization: Bearer <token>"}');
  });
});

describe("a worker's report is cut to the limits, never refused for what its run printed", () => {
  it.each([
    ["short ASCII: unchanged", "abc", 10, "abc"],
    ["NUL and a lone surrogate: U+FFFD", "a\u0000b\ud800c", 100, "a\uFFFDb\uFFFDc"],
    ["cut on a character boundary, with a note", "€".repeat(40), 60, `${"€".repeat(4)}\n… (108 more bytes cut: the limit is 60 bytes)`],
  ])("clipUtf8: %s", (_n, text, max, expected) => {
    const out = clipUtf8(text, max);
    expect(out).toBe(expected);
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(max);
  });

  it("QueueClient.complete records a 200 KiB result with NUL bytes, a lone surrogate in the error and a cost of 1e308", async () => {
    const beta = new QueueClient(url, tokenOf("beta"));
    try {
      const t = await beta.submit({ target: "beta", prompt: "noisy", priority: "high" });
      const claim = await beta.claim("beta", "beta/w/1", 0);
      expect(claim.task!.id).toBe(t.id);
      const result = `start\u0000${"r".repeat(200 * 1024)}`;
      const done = await beta.complete(t.id, { leaseId: claim.leaseId!, outcome: "failed", result, error: "bad \udc00 byte", costUsd: 1e308, durationSeconds: Infinity, exitCode: 2 ** 40 });
      expect(done).toMatchObject({ state: "failed", error: "bad \uFFFD byte", costUsd: 10_000, durationSeconds: 2_592_000, exitCode: null });
      expect(Buffer.byteLength(done.result!)).toBeLessThanOrEqual(128 * 1024);
      expect(done.result!.startsWith("start\uFFFDrrr")).toBe(true);
      expect(done.result!.endsWith(`more bytes cut: the limit is ${128 * 1024} bytes)`)).toBe(true);
    } finally {
      await beta.close();
    }
  });
});
