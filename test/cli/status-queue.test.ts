/**
 * `fleet status` reads worker presence from a real queue server (the runtime's fastify + SQLite server,
 * in this process, on 127.0.0.1): a worker that reported presence is online, one that never did is
 * reported as not seen; without a token or with the queue down, status says why and does not fail on it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createQueueServer } from "../../runtime/server.js";
import { tokenSha256 } from "../../runtime/config.js";
import { QueueClient } from "../../runtime/client.js";
import { parseFleet } from "../../model/load.js";
import { nodeStatus, queuePresence, sendHealth } from "../../cli/status.js";
import { fleetQueueUrl as queueUrl } from "../../model/fleet.js";
import { renderNodeBundles } from "../../roles/index.js";
import { parseProbe } from "../../cli/probe.js";
import type { Fleet, FleetNode } from "../../model/fleet.js";

const tokenOf = (node: string) => `${node}-token-status-test-0001`;
let dir: string;
let server: ReturnType<typeof createQueueServer>;
let fleet: Fleet;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "fleet-status-queue-"));
  const port = await freePort();
  fleet = parseFleet(
    `fleet: q
defaults:
  claude: { version: 1.0.0 }
  budgetUsdPerSession: 5
services:
  queue: { port: ${port} }
nodes:
  orch: { host: 127.0.0.1, os: debian, arch: x86_64, roles: [queue, worker] }
  pi: { host: pi, os: raspios, arch: aarch64, roles: [worker] }
`,
    "q.yaml",
  );
  const nodes = Object.fromEntries(fleet.nodes.map((n) => [n.name, { tokenSha256: tokenSha256(tokenOf(n.name)), os: n.os, arch: n.arch, tags: {}, roles: [...n.roles] }]));
  const people = { ann: { scope: "operator" as const, tokenSha256: tokenSha256(tokenOf("ann")) }, bob: { scope: "viewer" as const, tokenSha256: tokenSha256(tokenOf("bob")) } };
  server = createQueueServer({ db: join(dir, "queue.db"), tokens: { nodes, people, ntfy: null } });
  await server.app.listen({ host: "127.0.0.1", port });
  // orch's worker says it is there; pi's never does.
  await new QueueClient(queueUrl(fleet)!, tokenOf("orch")).presence("idle");
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A complete probe of `node` in which every rendered role looks installed and running. */
function healthyProbe(node: FleetNode) {
  const bundles = renderNodeBundles(fleet, node);
  const lines = ["fk-probe 1", ...bundles.flatMap((b) => [`marker\t${b.role}\t${b.hash}`, ...b.services.map((s) => `svc\t${b.role}\t${s.manager}\t${s.name}\tactive`)])];
  // Files are not judged by status (drift compares them), so they are left out here.
  return { fleet, node, reach: "ok" as const, ms: 5, report: parseProbe([...lines, "fk-probe-end"].join("\n")), bundles };
}

describe("worker presence from the queue", () => {
  it("is read with a node token: a present worker is online, an absent one makes its node unhealthy", async () => {
    const presence = await queuePresence(queueUrl(fleet)!, tokenOf("pi"), 5);
    expect(presence.ok).toBe(true);
    const [orch, pi] = fleet.nodes.map((n) => nodeStatus(healthyProbe(n), presence));
    expect(orch.worker).toMatchObject({ online: true, status: "idle" });
    expect(orch.problems.filter((p) => p.startsWith("worker:"))).toEqual([]);
    expect(pi.worker).toEqual({ online: false, lastSeen: null, status: null });
    expect(pi.problems.filter((p) => p.startsWith("worker:"))).toEqual(["worker: not seen by the queue yet"]);
    expect(pi.healthy).toBe(false);
  });

  it.each([
    [undefined, "not checked: no queue token (pass --token-file FILE or set FLEET_TOKEN)"],
    ["not-a-token-of-this-queue", /^queue http:\/\/127\.0\.0\.1:\d+ not reachable: unknown token$/],
  ])("without a usable token (%s) says why and judges nothing", async (token, reason) => {
    const presence = await queuePresence(queueUrl(fleet)!, token, 5);
    expect(presence.ok).toBe(false);
    if (!presence.ok) expect(presence.reason).toMatch(reason);
    const pi = nodeStatus(healthyProbe(fleet.nodes[1]), presence);
    expect(pi.worker).toBeNull();
    expect(pi.problems.filter((p) => p.startsWith("worker:"))).toEqual([]);
  });

  it("a queue that does not answer is reported, within the timeout", async () => {
    const presence = await queuePresence("http://127.0.0.1:1", tokenOf("pi"), 2);
    expect(presence.ok).toBe(false);
    // The wording of the connection error is the queue client's (fetch's cause when it gives one).
    if (!presence.ok) expect(presence.reason).toMatch(/^queue http:\/\/127\.0\.0\.1:1 not reachable: (fetch failed|connect ECONNREFUSED 127\.0\.0\.1:1)$/);
  });
});

describe("fleet status --report", () => {
  it("sends each node's health, as status judged it, to the queue for the dashboard; only an operator's token may", async () => {
    const presence = await queuePresence(queueUrl(fleet)!, tokenOf("pi"), 5);
    const nodes = fleet.nodes.map((n) => nodeStatus(healthyProbe(n), presence));
    const report = { fleet: fleet.name, healthy: nodes.every((n) => n.healthy), nodes };
    for (const [who, reason] of [
      ["bob", /^queue http:\/\/127\.0\.0\.1:\d+: POST \/v1\/health needs an operator token; this is viewer bob's token$/],
      ["pi", /^queue http:\/\/127\.0\.0\.1:\d+: POST \/v1\/health needs an operator token; this is node pi's token$/],
    ] as const) {
      const r = await sendHealth(queueUrl(fleet)!, tokenOf(who), report);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(reason);
    }
    expect(await new QueueClient(queueUrl(fleet)!, tokenOf("bob")).request("GET", "/v1/health")).toEqual({ nodes: [] });

    expect(await sendHealth(queueUrl(fleet)!, tokenOf("ann"), report)).toEqual({ ok: true });
    const got = await new QueueClient(queueUrl(fleet)!, tokenOf("bob")).request<{ nodes: Array<Record<string, unknown>> }>("GET", "/v1/health");
    expect(got.nodes.map(({ at, ...rest }) => [typeof at, rest])).toEqual([
      ["string", { node: "orch", reach: "ok", healthy: true, problems: [], by: "ann", roles: nodes[0]!.roles.map((r) => ({ role: r.role, ok: r.ok, problems: r.problems })) }],
      ["string", { node: "pi", reach: "ok", healthy: false, problems: ["worker: not seen by the queue yet"], by: "ann", roles: nodes[1]!.roles.map((r) => ({ role: r.role, ok: r.ok, problems: r.problems })) }],
    ]);

    // A report on one node replaces that node's row only.
    const again = await sendHealth(queueUrl(fleet)!, tokenOf("ann"), { ...report, nodes: [{ ...nodes[1]!, healthy: true, problems: [] }] });
    expect(again).toEqual({ ok: true });
    const after = await new QueueClient(queueUrl(fleet)!, tokenOf("ann")).request<{ nodes: Array<{ node: string; healthy: boolean }> }>("GET", "/v1/health");
    expect(after.nodes.map((n) => `${n.node} ${n.healthy}`)).toEqual(["orch true", "pi true"]);

    const stranger = await sendHealth(queueUrl(fleet)!, tokenOf("ann"), { ...report, nodes: [{ ...nodes[0]!, node: "ghost" }] });
    expect(stranger).toEqual({ ok: false, reason: `queue ${queueUrl(fleet)}: field "nodes": unknown node "ghost"; this queue serves orch, pi` });
  });
});
