/**
 * Slow clients: connections that trickle their headers or body must not take the queue offline, and the
 * timeouts that cut them must not cut a long poll (claim, wait), which legitimately holds an idle connection
 * once its request is in. The first case is the issue's: the real `fleet queue serve` process with 256 file
 * descriptors and more trickling connections than that.
 */
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { parseTokensFile } from "../../runtime/config.js";
import { createQueueServer, defaultMaxConnections } from "../../runtime/server.js";
import { readFileSync } from "node:fs";
import { api, startServer, stopAll, tempDir, tokenOf, waitUntil, writeTokens } from "./harness.js";

const sockets: Socket[] = [];
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await stopAll();
});

/**
 * Opens a connection that sends `first`, then one more byte (`drip`) every second, forever. Resolves at once;
 * `closed()` tells whether the server ended it.
 */
function trickle(port: number, first: string, drip: string): { closed: () => boolean; answer: () => string } {
  const s = connect(port, "127.0.0.1");
  sockets.push(s);
  let closed = false;
  let answer = "";
  s.setEncoding("utf8");
  s.on("connect", () => s.write(first));
  s.on("data", (d: string) => (answer += d));
  s.on("error", () => undefined);
  s.on("close", () => (closed = true));
  const timer = setInterval(() => (closed ? clearInterval(timer) : s.write(drip)), 1000);
  return { closed: () => closed, answer: () => answer };
}

/**
 * GETs `url` with `token` until it is answered, a fresh connection each time (each try bounded by what is
 * left of `seconds`), for at most `seconds`. Returns the status and body, or why it never was answered.
 */
async function servedWithin(seconds: number, url: string, token: string): Promise<{ status: number; body: unknown } | string> {
  const deadline = Date.now() + seconds * 1000;
  let last = "never tried";
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url, { headers: { authorization: `Bearer ${token}`, connection: "close" }, signal: AbortSignal.timeout(Math.max(100, deadline - Date.now())) });
      return { status: r.status, body: await r.json() };
    } catch (err) {
      last = `${(err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).name}`;
      await sleep(500);
    }
  }
  return `not served within ${seconds} s (last: ${last})`;
}

describe("slow clients", () => {
  it("256 file descriptors, 360 trickling unauthenticated connections: a real client is still served", async () => {
    const dir = tempDir();
    const server = await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { alpha: {} }), openFiles: 256 });
    const bodies = Array.from({ length: 300 }, () =>
      // Complete headers without a token, then a body that never ends.
      trickle(server.port, "POST /v1/tasks HTTP/1.1\r\nHost: q\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", " "),
    );
    const headers = Array.from({ length: 60 }, () => trickle(server.port, "GET /v1/tasks HTTP/1.1\r\nHost: q\r\n", "X"));
    await sleep(3000);
    // Before the fix the 300 body tricklers alone held more descriptors than the process has, for as long as
    // they trickled: nothing else was ever accepted.
    const r = await servedWithin(60, `${server.url}/v1/tasks`, tokenOf("alpha"));
    expect(r).toEqual({ status: 200, body: { tasks: [] } });
    expect(server.child.exitCode).toBeNull();
    // The server cut every trickler: one over the connection cap as soon as it was accepted (no answer), a
    // body trickler at its headers (401 with Connection: close), a header trickler at the headers timeout (408).
    await waitUntil("the server to close every trickling connection", () => [...bodies, ...headers].every((t) => t.closed()), 60);
    const answers = (ts: typeof bodies) => [...new Set(ts.map((t) => t.answer().split("\r\n")[0] ?? ""))].sort();
    expect(answers(bodies)).toEqual(expect.arrayContaining(["HTTP/1.1 401 Unauthorized"]));
    expect(answers(bodies).filter((a) => a !== "" && a !== "HTTP/1.1 401 Unauthorized")).toEqual([]);
    expect(answers(headers).filter((a) => a !== "" && a !== "HTTP/1.1 408 Request Timeout")).toEqual([]);
  }, 180_000);

  it("the connection cap is the open-files limit less 64 for the database and Node (16 at least, 10,000 at most)", () => {
    expect([defaultMaxConnections(256), defaultMaxConnections(1024), defaultMaxConnections(40), defaultMaxConnections(1_048_576), defaultMaxConnections(null)]).toEqual([192, 960, 16, 10_000, 10_000]);
  });
});

describe("timeouts cut slow requests, never long polls", () => {
  it("a 2 s request timeout: an authenticated body trickle gets 408; a claim and a wait held 4 s are answered", async () => {
    const dir = tempDir();
    const file = writeTokens(dir, { alpha: {} });
    const q = createQueueServer({ db: join(dir, "q.db"), tokens: parseTokensFile(readFileSync(file, "utf8"), file), headersTimeoutSeconds: 1, requestTimeoutSeconds: 2, maxClaimWaitSeconds: 10 });
    try {
      const url = await q.app.listen({ host: "127.0.0.1", port: 0 });
      const port = Number(new URL(url).port);
      const slow = trickle(port, `POST /v1/tasks HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${tokenOf("alpha")}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`, " ");
      const task = (await api(url, "POST", "/v1/tasks", { body: { target: "alpha", prompt: "held" } })).body;
      const wait = api(url, "GET", `/v1/tasks/${task.id}/wait?timeoutSeconds=4`);
      const claim = (async () => {
        await sleep(100);
        return api(url, "POST", "/v1/claim", { body: { node: "alpha", worker: "w", waitSeconds: 4 } });
      })();
      // The claim takes the task at once; a second task arrives 3 s later for a second long-polled claim.
      const first = await claim;
      expect(first.body.task.id).toBe(task.id);
      const second = api(url, "POST", "/v1/claim", { body: { node: "alpha", worker: "w", waitSeconds: 6 } });
      await sleep(3000);
      const late = (await api(url, "POST", "/v1/tasks", { body: { target: "alpha", prompt: "late" } })).body;
      expect((await second).body.task).toMatchObject({ id: late.id, state: "running" });
      const waited = await wait;
      expect([waited.status, waited.body.id, waited.body.state]).toEqual([200, task.id, "running"]);
      expect(slow.closed()).toBe(true);
      expect(slow.answer()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    } finally {
      await q.close();
    }
  }, 30_000);
});
