/**
 * The human and interactive-Claude flow (the Discord queue's check / next / claim / complete -n): `fleet task
 * next`, `claim`, `note`, `complete`. Two parts:
 * - the API's rules, as one table of requests with exact status and message, against the real server
 *   (createQueueServer: fastify, SQLite on disk) through fastify's `inject`; a refused request writes nothing;
 * - the whole cycle through real `fleet queue serve` and `fleet task` processes, with an ntfy stand-in:
 *   a foreground claim renewing a short lease, notes, complete from another shell, Ctrl-C, a killed claim.
 *
 * Tokens: nodes alpha and beta; people alice (operator), carol (operator) and bob (viewer).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_NOTES, type Task } from "../../runtime/api.js";
import { parseTokensFile } from "../../runtime/config.js";
import { createQueueServer } from "../../runtime/server.js";
import { startNtfy } from "./fixtures/standins.js";
import { api, fleet, fleetRun, startServer, stopAll, tempDir, tokenOf, waitUntil, writeTokens, type ServerProc } from "./harness.js";

const PEOPLE = { alice: "operator", carol: "operator", bob: "viewer" } as const;
const auth = (who: string) => ({ authorization: `Bearer ${tokenOf(who)}` });

describe("interactive claims: who may do what (API table)", () => {
  let q: ReturnType<typeof createQueueServer>;
  let aliceLease: string;
  const inject = async (who: string | null, method: "GET" | "POST", url: string, payload?: unknown) => {
    const r = await q.app.inject({ method, url, headers: who ? auth(who) : {}, ...(payload === undefined ? {} : { payload: payload as object }) });
    return { status: r.statusCode, body: r.json() };
  };
  /** Every task as stored: what "nothing written" compares. */
  const snapshot = () => JSON.stringify(q.store.list({ limit: 10_000 }));

  // #1 alpha's, running on alpha's worker; #2 alpha's, claimed by alice (session laptop); #3 beta's, pending;
  // #4 alpha's, pending (low); #5 alpha's, pending (high).
  beforeAll(async () => {
    const dir = tempDir("fleet-interactive-");
    const file = writeTokens(dir, { alpha: {}, beta: {} }, null, PEOPLE);
    q = createQueueServer({ db: join(dir, "q.db"), tokens: parseTokensFile(readFileSync(file, "utf8"), file), leaseSeconds: 60 });
    const submit = async (who: string, body: object) => (await inject(who, "POST", "/v1/tasks", body)).body as Task;
    expect((await submit("alpha", { target: "alpha", prompt: "worker's task" })).id).toBe(1);
    expect((await inject("alpha", "POST", "/v1/claim", { node: "alpha", worker: "alpha/w/0" })).body.task.id).toBe(1);
    expect((await submit("alpha", { target: "alpha", prompt: "alice's claim" })).id).toBe(2);
    const take = await inject("alice", "POST", "/v1/tasks/2/claim", { session: "laptop" });
    expect(take).toMatchObject({ status: 200, body: { task: { id: 2, state: "running", node: null, worker: "laptop", claimedBy: "alice", attempts: 1 }, leaseSeconds: 60 } });
    aliceLease = take.body.leaseId;
    expect((await submit("beta", { target: "beta", prompt: "beta's task" })).id).toBe(3);
    expect((await submit("alpha", { target: "alpha", prompt: "low one", priority: "low" })).id).toBe(4);
    expect((await submit("alpha", { target: "alpha", prompt: "high one", priority: "high" })).id).toBe(5);
  });
  afterAll(() => q?.close());

  const VISIBLE = (id: number) => `task ${id} is not node beta's: a node token reads and changes only the tasks its node submitted, runs or that target it`;
  const CHANGE_CALL = (route: string) => `${route} needs a node or operator token; this is viewer bob's token`;

  it.each([
    // ---- a viewer reads, never claims, notes or finishes ----
    ["viewer claims", "bob", "POST", "/v1/tasks/4/claim", {}, 403, CHANGE_CALL("POST /v1/tasks/:id/claim")],
    ["viewer notes", "bob", "POST", "/v1/tasks/4/notes", { text: "hi" }, 403, CHANGE_CALL("POST /v1/tasks/:id/notes")],
    ["viewer finishes", "bob", "POST", "/v1/tasks/2/finish", { outcome: "completed" }, 403, CHANGE_CALL("POST /v1/tasks/:id/finish")],
    ["viewer renews", "bob", "POST", "/v1/tasks/2/claim/renew", { leaseId: "x" }, 403, CHANGE_CALL("POST /v1/tasks/:id/claim/renew")],
    ["viewer releases", "bob", "POST", "/v1/tasks/2/claim/release", { leaseId: "x" }, 403, CHANGE_CALL("POST /v1/tasks/:id/claim/release")],
    ["no token peeks", null, "GET", "/v1/next?node=alpha", undefined, 401, "missing Authorization: Bearer <token>"],
    // ---- a node token: only what it may see, only its own node's next ----
    ["beta claims alpha's task", "beta", "POST", "/v1/tasks/4/claim", {}, 403, VISIBLE(4)],
    ["beta notes alpha's task", "beta", "POST", "/v1/tasks/4/notes", { text: "hi" }, 403, VISIBLE(4)],
    ["beta finishes alice's claim of alpha's task", "beta", "POST", "/v1/tasks/2/finish", { outcome: "completed" }, 403, VISIBLE(2)],
    ["beta peeks at alpha's next", "beta", "GET", "/v1/next?node=alpha", undefined, 403, "this token belongs to node beta; it peeks only its own node's next task, not node alpha's"],
    ["a person peeks without a node", "alice", "GET", "/v1/next", undefined, 400, `query "node" is required for operator alice's token (a person has no node of their own)`],
    ["peek at an unknown node", "alice", "GET", "/v1/next?node=gamma", undefined, 400, 'query "node": unknown node "gamma"'],
    ["peek with an unknown parameter", "alice", "GET", "/v1/next?node=alpha&all=1", undefined, 400, 'unknown query parameter "all" (allowed: node)'],
    // ---- the claim belongs to its claimant ----
    ["alpha finishes alice's claim", "alpha", "POST", "/v1/tasks/2/finish", { outcome: "completed" }, 403, "task 2 is claimed by alice; only that token or an operator finishes it"],
    ["carol renews alice's claim", "carol", "POST", "/v1/tasks/2/claim/renew", { leaseId: "x" }, 403, "task 2 is claimed by alice; only that token renews or releases the claim"],
    ["carol releases alice's claim", "carol", "POST", "/v1/tasks/2/claim/release", { leaseId: "x" }, 403, "task 2 is claimed by alice; only that token renews or releases the claim"],
    ["alice renews with a wrong lease", "alice", "POST", "/v1/tasks/2/claim/renew", { leaseId: "not-it" }, 409, "lease lost: task 2 is claimed under another lease"],
    // ---- states ----
    ["claim a claimed task", "carol", "POST", "/v1/tasks/2/claim", {}, 409, "task 2 is running (claimed by alice); only a pending task can be claimed"],
    ["claim a worker's task", "alice", "POST", "/v1/tasks/1/claim", {}, 409, "task 1 is running (on worker alpha/w/0); only a pending task can be claimed"],
    ["finish a worker's task", "alice", "POST", "/v1/tasks/1/finish", { outcome: "completed" }, 409, "task 1 is running on worker alpha/w/0, which reports it itself; only a task under an interactive claim (fleet task claim) is finished by hand"],
    ["finish a pending task", "alice", "POST", "/v1/tasks/4/finish", { outcome: "failed" }, 409, "task 4 is pending; only a task under an interactive claim (fleet task claim) is finished by hand"],
    ["renew a worker's lease", "alpha", "POST", "/v1/tasks/1/claim/renew", { leaseId: "x" }, 409, "task 1 is running on worker alpha/w/0, not under an interactive claim; there is no claim to change"],
    ["release a pending task", "alice", "POST", "/v1/tasks/4/claim/release", { leaseId: "x" }, 409, "task 4 is pending; there is no claim to change"],
    ["claim an unknown task", "alice", "POST", "/v1/tasks/99/claim", {}, 404, "no task 99"],
    ["note an unknown task", "alice", "POST", "/v1/tasks/99/notes", { text: "x" }, 404, "no task 99"],
    // ---- bodies ----
    ["claim without a body", "alice", "POST", "/v1/tasks/4/claim", undefined, 400, "request body must be a JSON object"],
    ["a session of two lines", "alice", "POST", "/v1/tasks/4/claim", { session: "a\nb" }, 400, 'field "session": one line of printable text (no control characters)'],
    ["a session of 101 characters", "alice", "POST", "/v1/tasks/4/claim", { session: "s".repeat(101) }, 400, 'field "session": at most 100 characters'],
    ["claim with an unknown field", "alice", "POST", "/v1/tasks/4/claim", { node: "alpha" }, 400, 'unknown field "node"'],
    ["an empty note", "alice", "POST", "/v1/tasks/4/notes", { text: "" }, 400, 'field "text": the note is empty'],
    ["a note of 16 KiB + 1", "alice", "POST", "/v1/tasks/4/notes", { text: "n".repeat(16 * 1024 + 1) }, 400, 'field "text": 16385 bytes; the limit is 16384 bytes (16 KiB)'],
    ["a note with a NUL byte", "alice", "POST", "/v1/tasks/4/notes", { text: "a\u0000b" }, 400, 'field "text": contains a NUL byte (U+0000), which no text may hold'],
    ["finish as done", "alice", "POST", "/v1/tasks/2/finish", { outcome: "done" }, 400, 'field "outcome": Invalid option: expected one of "completed"|"failed"'],
    ["finish with empty notes", "alice", "POST", "/v1/tasks/2/finish", { outcome: "completed", notes: "" }, 400, 'field "notes": the notes are empty; leave the field out instead'],
  ] as const)("%s", async (_n, who, method, url, payload, status, error) => {
    const before = snapshot();
    expect(await inject(who, method, url, payload)).toEqual({ status, body: { error } });
    expect(snapshot()).toBe(before);
  });

  it("next: the task a claim would take (priority, then age), for a node or a person; nothing changes", async () => {
    const before = snapshot();
    for (const who of ["alpha", "alice", "bob"]) {
      const r = await inject(who, "GET", who === "alpha" ? "/v1/next" : "/v1/next?node=alpha");
      expect(r.status).toBe(200);
      expect({ node: r.body.node, id: r.body.task.id, overBudget: r.body.overBudget }).toEqual({ node: "alpha", id: 5, overBudget: false });
    }
    expect(await inject("alice", "GET", "/v1/next?node=beta")).toMatchObject({ status: 200, body: { node: "beta", task: { id: 3 } } });
    expect(snapshot()).toBe(before);
  });

  it("notes: in order, with author and time, on any task the token sees; at most MAX_NOTES", async () => {
    expect(await inject("alpha", "POST", "/v1/tasks/4/notes", { text: "first\nof two lines" })).toMatchObject({ status: 201, body: { notes: [{ author: "alpha", text: "first\nof two lines" }] } });
    const r = await inject("alice", "POST", "/v1/tasks/4/notes", { text: "second" });
    expect(r.body.notes.map((n: { author: string; text: string }) => [n.author, n.text])).toEqual([["alpha", "first\nof two lines"], ["alice", "second"]]);
    expect(r.body.notes[1].at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    for (let i = 2; i < MAX_NOTES; i++) expect((await inject("alice", "POST", "/v1/tasks/4/notes", { text: `n${i}` })).status).toBe(201);
    const before = snapshot();
    expect(await inject("alice", "POST", "/v1/tasks/4/notes", { text: "one too many" })).toEqual({ status: 409, body: { error: "task 4 already has 100 notes, the most a task holds" } });
    expect(snapshot()).toBe(before);
  });

  it("a node claims a task of its own; an operator may finish another's claim; the task records both", async () => {
    const take = await inject("alpha", "POST", "/v1/tasks/5/claim", { session: "rpi-claude" });
    expect(take.body.task).toMatchObject({ id: 5, state: "running", node: "alpha", worker: "rpi-claude", claimedBy: "alpha" });
    expect((await inject("alpha", "POST", "/v1/tasks/5/claim/renew", { leaseId: take.body.leaseId })).body).toMatchObject({ task: { id: 5, state: "running" }, leaseSeconds: 60 });
    expect((await inject("alice", "GET", "/v1/next?node=alpha")).body.task.id).toBe(4);
    const done = await inject("carol", "POST", "/v1/tasks/2/finish", { outcome: "failed", notes: "alice is away; could not reproduce" });
    expect(done.body).toMatchObject({ id: 2, state: "failed", error: "alice is away; could not reproduce", result: null, claimedBy: "alice", notes: [{ author: "carol", text: "alice is away; could not reproduce" }] });
    expect(done.body.durationSeconds).toBeGreaterThanOrEqual(0);
    expect((await inject("alice", "POST", "/v1/tasks/2/claim/renew", { leaseId: aliceLease })).body).toEqual({ error: "task 2 is failed; there is no claim to change" });
  });
});

describe("interactive claims: the whole cycle through fleet task (real processes, ntfy stand-in)", () => {
  let server: ServerProc;
  let ntfy: Awaited<ReturnType<typeof startNtfy>>;
  const as = (who: string) => ({ FLEET_QUEUE_URL: server.url, FLEET_TOKEN: tokenOf(who) });
  const cli = (who: string, args: string[]) => fleetRun(["task", ...args], as(who));
  const task = async (id: number) => (await api(server.url, "GET", `/v1/tasks/${id}`)).body as Task;

  beforeAll(async () => {
    ntfy = await startNtfy();
    const dir = tempDir();
    const tokens = writeTokens(dir, { alpha: {}, beta: {} }, { url: ntfy.url, topic: "fleet-tasks", token: "tk_teststandin" }, PEOPLE);
    // A 1.5 s lease: the claim command renews it every 0.5 s, and a stopped one loses it within 2 s.
    server = await startServer({ db: join(dir, "q.db"), tokens, leaseSeconds: 1.5 });
    for (const prompt of ["Fix the flaky test", "Update the docs", "Tidy the logs"]) expect((await cli("alpha", ["delegate", "alpha", prompt])).code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await stopAll();
    await ntfy.close();
  });

  it("next peeks without taking; a person must name the node", async () => {
    const r = await cli("bob", ["next", "--node", "alpha"]);
    expect(r.code).toBe(0);
    expect(r.out.split("\n").slice(0, 2)).toEqual(["Next for node alpha:", "Task #1  pending"]);
    expect((await cli("alpha", ["next", "--json"])).out).toContain('"overBudget": false');
    expect(await cli("alice", ["next"])).toEqual({ code: 2, out: `queue refused (HTTP 400): query "node" is required for operator alice's token (a person has no node of their own)\n` });
    expect((await task(1)).state).toBe("pending");
  });

  it("claim → note → complete: the claim holds its lease while it runs, and ends when the task is completed elsewhere", async () => {
    const claim = fleet(["task", "claim", "1", "--session", "MacBook-Claude"], as("alice"));
    await waitUntil("the claim", () => claim.out().includes("Ctrl-C here gives the task back"));
    const lines = claim.out().split("\n");
    expect(lines[0]).toBe("Task #1 claimed by MacBook-Claude (alice); lease 1.5 s, renewed while this command runs.");
    expect(lines).toContain("  claimed    by alice (session MacBook-Claude)");
    await waitUntil("the claim notification", () => ntfy.published.length === 1);
    expect(ntfy.published[0]).toEqual({
      topic: "fleet-tasks",
      title: "Task #1 claimed by MacBook-Claude (alice)",
      priority: "2",
      tags: "raising_hand",
      click: `${server.url}/tasks/1`,
      authorization: "Bearer tk_teststandin",
      body: "Fix the flaky test",
    });
    // Three lease lengths later it is still alice's: the command renewed it.
    await new Promise((r) => setTimeout(r, 4500));
    expect(await task(1)).toMatchObject({ state: "running", claimedBy: "alice", attempts: 1 });
    // Another person cannot take it; a viewer cannot note it.
    expect(await cli("carol", ["claim", "1"])).toEqual({ code: 2, out: "queue refused (HTTP 409): task 1 is running (claimed by alice); only a pending task can be claimed\n" });
    expect(await cli("bob", ["note", "1", "x"])).toEqual({ code: 2, out: "queue refused (HTTP 403): POST /v1/tasks/:id/notes needs a node or operator token; this is viewer bob's token\n" });
    expect(await cli("alice", ["note", "1", "found it: a race in setup"])).toEqual({ code: 0, out: "Note added to task #1 (1 note).\n" });
    expect(await cli("alice", ["complete", "1", "-n", "Fixed: await the server before the first request"])).toEqual({ code: 0, out: "Task #1 completed.\n" });
    expect(await claim.exited).toBe(0);
    expect(claim.out().trimEnd().split("\n").at(-1)).toBe("Task #1 completed.");
    const t = await task(1);
    expect(t).toMatchObject({ state: "completed", result: "Fixed: await the server before the first request", error: null, claimedBy: "alice", worker: "MacBook-Claude", node: null });
    expect(t.notes.map((n) => [n.author, n.text])).toEqual([["alice", "found it: a race in setup"], ["alice", "Fixed: await the server before the first request"]]);
    const show = await cli("bob", ["show", "1"]);
    const at = t.notes.map((n) => n.at);
    expect(show.out.split("\n").filter((l) => /^ {2}(claimed|notes| {10})/.test(l))).toEqual([
      "  claimed    by alice (session MacBook-Claude)",
      `  notes      ${at[0]} alice: found it: a race in setup`,
      `             ${at[1]} alice: Fixed: await the server before the first request`,
    ]);
    await waitUntil("the finish notification", () => ntfy.published.length === 2);
    expect(ntfy.published[1]).toMatchObject({
      title: "Task #1 completed by alice",
      priority: "3",
      tags: "white_check_mark",
      click: `${server.url}/tasks/1`,
      body: `alice (${at[0]!.slice(0, 16).replace("T", " ")}Z): found it: a race in setup\nalice (${at[1]!.slice(0, 16).replace("T", " ")}Z): Fixed: await the server before the first request`,
    });
  });

  it("Ctrl-C gives the task back (pending, no attempt counted); a node's claim shows its node", async () => {
    const claim = fleet(["task", "claim", "2"], as("alpha"));
    await waitUntil("the claim", () => claim.out().includes("Ctrl-C here gives the task back"));
    expect(claim.out().split("\n")[0]).toBe("Task #2 claimed by alpha; lease 1.5 s, renewed while this command runs.");
    expect(await task(2)).toMatchObject({ state: "running", node: "alpha", worker: "alpha", claimedBy: "alpha" });
    claim.child.kill("SIGINT");
    expect(await claim.exited).toBe(0);
    expect(claim.out().trimEnd().split("\n").at(-1)).toBe("Task #2 given back: pending again.");
    expect(await task(2)).toMatchObject({ state: "pending", attempts: 0, claimedBy: null, node: "alpha" });
  });

  it("a claim whose command dies loses its lease: the task is pending again and complete is refused", async () => {
    const claim = fleet(["task", "claim", "3", "--json"], as("alice"));
    await waitUntil("the claim", () => claim.out().includes('"leaseId"'));
    expect(JSON.parse(claim.out().split("\n")[0]!)).toMatchObject({ task: { id: 3, state: "running" }, leaseSeconds: 1.5 });
    claim.child.kill("SIGKILL");
    await waitUntil("the lease to expire", async () => (await task(3)).state === "pending", 10);
    expect(await task(3)).toMatchObject({ attempts: 1, claimedBy: null, error: expect.stringMatching(/^claim by alice \(session alice\) expired at .* \(attempt 1 of 3\)$/) });
    expect(await cli("alice", ["complete", "3"])).toEqual({ code: 2, out: "queue refused (HTTP 409): task 3 is pending; only a task under an interactive claim (fleet task claim) is finished by hand\n" });
  });

  it.each([
    ["a bad id", ["claim", "x"], 'expected a task id (a positive integer like 12), got "x".'],
    ["claim with two ids", ["claim", "1", "2"], "fleet task claim: expected 1 argument(s), got 2."],
    ["an empty note", ["note", "2", "  "], "the note is empty; write something (or leave it out)."],
    ["empty notes", ["complete", "2", "-n", ""], "--notes is empty; write something (or leave it out)."],
    ["complete without an id", ["complete", "--failed"], "fleet task complete: expected 1 argument(s), got 0."],
    ["an unknown flag", ["note", "2", "x", "--urgent"], "fleet task note: unknown option --urgent"],
  ])("bad input: %s → exit 2, one message, nothing written", async (_n, args, message) => {
    const before = JSON.stringify((await api(server.url, "GET", "/v1/tasks")).body);
    const r = await cli("alice", args);
    expect(r.code).toBe(2);
    expect(r.out.split("\n")[0]).toBe(message);
    expect(JSON.stringify((await api(server.url, "GET", "/v1/tasks")).body)).toBe(before);
  });
});
