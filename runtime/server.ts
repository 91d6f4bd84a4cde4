/**
 * The queue server (role `queue`): a fastify HTTP JSON API over the {@link Store}. Every route but
 * `/healthz` needs `Authorization: Bearer <node token>` from the tokens file (401 unknown, 403 wrong node).
 * Claims are long-polled leases; a sweeper re-queues tasks whose lease expired. See runtime/README.md for
 * the endpoint list.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { createHash } from "node:crypto";
import { Counter, Gauge, Registry } from "prom-client";
import type { z } from "zod";
import {
  ClaimBodySchema,
  CompleteBodySchema,
  FINAL_STATES,
  HeartbeatBodySchema,
  MAX_PROMPT_BYTES,
  PresenceBodySchema,
  PriorityBodySchema,
  ReleaseBodySchema,
  SubmitBodySchema,
  TASK_STATES,
  type ClaimAnswer,
  type NodeInfo,
  type NodePresence,
  type Stats,
  type Task,
  type TaskState,
} from "./api.js";
import { issuePath, type TokensFile } from "./config.js";
import { Store } from "./store.js";

/** Options of {@link createQueueServer}. Durations are seconds (fractions allowed, for tests). */
export interface QueueServerOptions {
  /** SQLite database file. */
  db: string;
  /** The fleet view (tokens file). */
  tokens: TokensFile;
  /** Lease length; a worker heartbeats every third of it (default 30). */
  leaseSeconds?: number;
  /** Longest a claim may be held open (default 30). */
  maxClaimWaitSeconds?: number;
  /** Longest a result wait may be held open (default 300). */
  maxResultWaitSeconds?: number;
  /** How often expired leases are swept (default: a quarter of the lease, at most 5). */
  sweepSeconds?: number;
  /** A node not seen for this long (and not long-polling) is offline (default: max(60, 2 × claim wait)). */
  presenceSeconds?: number;
  /** SQLite durability, see {@link StoreOptions} (default normal). */
  synchronous?: "full" | "normal";
  /** Base URL for links to tasks (default tokens.publicUrl, else the Host the client used). */
  publicUrl?: string;
}

/** An error answered as `{ "error": message }` with a status code. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** Start of the current UTC day in epoch ms (daily budgets reset at 00:00 UTC). */
export function utcDayStart(nowMs: number): number {
  const d = new Date(nowMs);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}

/** True when a node's facts satisfy a task's required tags (`os`, `arch` and custom tags, all equal). */
export function nodeMatches(node: TokensFile["nodes"][string], tags: Record<string, string>): boolean {
  const facts: Record<string, string> = { ...node.tags, os: node.os, arch: node.arch };
  return Object.entries(tags).every(([k, v]) => facts[k] === v);
}

/** Formats the first zod issue as a one-line message naming the field. */
function zodMessage(err: z.ZodError): string {
  const issue = err.issues[0]!;
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => `"${k}"`).join(", ");
    return `unknown field${issue.keys.length > 1 ? "s" : ""} ${keys}${issue.path.length ? ` in ${issuePath(issue.path)}` : ""}`;
  }
  if (issue.code === "invalid_type" && issue.input === undefined) return `field "${issuePath(issue.path)}" is required`;
  return `field "${issuePath(issue.path)}": ${issue.message}`;
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "request body must be a JSON object");
  }
  const r = schema.safeParse(body);
  if (!r.success) throw new HttpError(400, zodMessage(r.error));
  return r.data;
}

function taskId(raw: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(raw)) throw new HttpError(400, `task id must be a positive integer, got "${raw}"`);
  return Number(raw);
}

function seconds(raw: unknown, name: string, max: number, dflt: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (typeof raw !== "string" || raw === "" || !Number.isFinite(n) || n < 0) throw new HttpError(400, `query "${name}" must be a number of seconds ≥ 0, got "${String(raw)}"`);
  return Math.min(n, max);
}

type Waiter = () => void;

/**
 * Builds the queue server (not yet listening). The returned `close()` answers open long-polls, stops the
 * sweeper, closes HTTP and the database.
 */
export function createQueueServer(opts: QueueServerOptions): { app: FastifyInstance; store: Store; close: () => Promise<void> } {
  const tokens = opts.tokens;
  const leaseSeconds = opts.leaseSeconds ?? 30;
  const leaseMs = leaseSeconds * 1000;
  const maxClaimWait = opts.maxClaimWaitSeconds ?? 30;
  const maxResultWait = opts.maxResultWaitSeconds ?? 300;
  const sweepMs = (opts.sweepSeconds ?? Math.min(leaseSeconds / 4, 5)) * 1000;
  const presenceMs = (opts.presenceSeconds ?? Math.max(60, 2 * maxClaimWait)) * 1000;
  const nodeNames = Object.keys(tokens.nodes);
  const byTokenHash = new Map(Object.entries(tokens.nodes).map(([n, v]) => [sha256(v.token), n]));

  const eligible = (target: string, tags: Record<string, string>): string[] =>
    (target === "any" ? nodeNames : nodeNames.includes(target) ? [target] : []).filter((n) => nodeMatches(tokens.nodes[n]!, tags));

  const store = new Store(opts.db, eligible, { synchronous: opts.synchronous });
  store.rebuildReady();
  // Workers that outlived a restart keep their tasks if they heartbeat within one lease from now.
  store.extendRunningLeases(Date.now() + leaseMs);

  // Presence lives in memory and is persisted on change or every 15 s per node.
  const presence = new Map<string, { lastSeen: number; status: string | null; message: string | null; persisted: number }>();
  for (const n of store.nodes()) if (n.lastSeen !== null) presence.set(n.name, { lastSeen: n.lastSeen, status: n.status, message: n.message, persisted: n.lastSeen });
  const openClaims = new Map<string, number>();
  const seen = (node: string, status: string | null = null, message: string | null = null) => {
    const now = Date.now();
    const p = presence.get(node);
    const changed = status !== null && (p?.status !== status || p?.message !== message);
    const next = { lastSeen: now, status: status ?? p?.status ?? null, message: status !== null ? message : (p?.message ?? null), persisted: p?.persisted ?? 0 };
    if (changed || now - next.persisted > 15_000) {
      store.touchNode(node, now, next.status, next.message);
      next.persisted = now;
    }
    presence.set(node, next);
  };

  // Spend today per node, cached; complete() adds to it.
  let spendDay = utcDayStart(Date.now());
  const spend = new Map<string, number>();
  const spentToday = (node: string): number => {
    const day = utcDayStart(Date.now());
    if (day !== spendDay) {
      spendDay = day;
      spend.clear();
    }
    let s = spend.get(node);
    if (s === undefined) spend.set(node, (s = store.spentSince(node, day)));
    return s;
  };
  const overBudget = (node: string): { spent: number; cap: number } | null => {
    const cap = tokens.nodes[node]?.budgetUsdPerSession ?? null;
    if (cap === null) return null;
    const spent = spentToday(node);
    return spent >= cap ? { spent, cap } : null;
  };

  // Long-poll waiters: claims per node, result waits per task.
  const claimWaiters = new Map<string, Set<Waiter>>();
  const resultWaiters = new Map<number, Set<Waiter>>();
  let closing = false;
  const wake = (map: Map<any, Set<Waiter>>, key: unknown) => {
    const set = map.get(key);
    if (!set) return;
    map.delete(key);
    for (const w of set) w();
  };
  // One new task wakes one waiting claim per eligible node (the longest-waiting), not the whole herd.
  const wakeOne = (node: string) => {
    const set = claimWaiters.get(node);
    const first = set?.values().next().value;
    if (first) first();
  };
  const taskReady = (t: Task) => {
    for (const n of eligible(t.target, t.tags)) wakeOne(n);
  };
  const taskFinal = (t: Task) => wake(resultWaiters, t.id);
  const waitFor = <K>(map: Map<K, Set<Waiter>>, key: K, ms: number, reply: FastifyReply): Promise<void> =>
    new Promise((resolve) => {
      if (closing) return resolve();
      let set = map.get(key);
      if (!set) map.set(key, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        reply.raw.off("close", done);
        map.get(key)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      reply.raw.on("close", done);
      set.add(done);
    });

  // Metrics (Prometheus text at /metrics).
  const registry = new Registry();
  const submitted = new Counter({ name: "fleet_tasks_submitted_total", help: "Tasks accepted by POST /v1/tasks.", registers: [registry] });
  const claims = new Counter({ name: "fleet_claims_total", help: "Leases granted.", labelNames: ["node"], registers: [registry] });
  const expiries = new Counter({ name: "fleet_lease_expiries_total", help: "Leases that expired (task re-queued or failed).", registers: [registry] });
  new Gauge({
    name: "fleet_tasks",
    help: "Tasks by state.",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const s = store.stats(utcDayStart(Date.now()));
      for (const st of TASK_STATES) this.set({ state: st }, s.byState[st]);
    },
  });
  new Gauge({
    name: "fleet_node_online",
    help: "1 when the node's worker was seen recently or is long-polling.",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      for (const p of nodePresence()) this.set({ node: p.node }, p.online ? 1 : 0);
    },
  });
  new Gauge({
    name: "fleet_spend_today_usd",
    help: "USD spent today (UTC) by the node's tasks.",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      for (const n of nodeNames) this.set({ node: n }, spentToday(n));
    },
  });

  const nodePresence = (): NodePresence[] => {
    const now = Date.now();
    return nodeNames.map((n) => {
      const p = presence.get(n);
      const node = tokens.nodes[n]!;
      const over = overBudget(n);
      return {
        node: n,
        os: node.os,
        arch: node.arch,
        online: (openClaims.get(n) ?? 0) > 0 || (p !== undefined && now - p.lastSeen < presenceMs),
        lastSeen: p ? new Date(p.lastSeen).toISOString() : null,
        status: over ? "over-budget" : (p?.status ?? null),
        message: over ? `spent $${over.spent.toFixed(2)} of $${over.cap.toFixed(2)} today (UTC)` : (p?.message ?? null),
        budgetUsdPerSession: node.budgetUsdPerSession ?? null,
        spentTodayUsd: spentToday(n),
      };
    });
  };

  const sweep = () => {
    const { requeued, finished } = store.expireLeases(Date.now());
    if (requeued.length + finished.length) expiries.inc(requeued.length + finished.length);
    requeued.forEach(taskReady);
    finished.forEach(taskFinal);
  };
  const sweeper = setInterval(sweep, sweepMs);

  const app = Fastify({ logger: false, bodyLimit: MAX_PROMPT_BYTES * 4 + 64 * 1024, forceCloseConnections: true });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof HttpError) return reply.code(err.statusCode).send({ error: err.message });
    if (err.code === "FST_ERR_CTP_INVALID_JSON_BODY" || err.name === "SyntaxError") return reply.code(400).send({ error: `request body is not valid JSON: ${err.message}` });
    if (err.code === "FST_ERR_CTP_EMPTY_JSON_BODY") return reply.code(400).send({ error: "request body is empty; send a JSON object" });
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") return reply.code(413).send({ error: `request body is larger than ${app.initialConfig.bodyLimit} bytes` });
    if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return reply.code(415).send({ error: "send the body as Content-Type: application/json" });
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    process.stderr.write(`fleet queue: internal error: ${err.stack ?? err}\n`);
    return reply.code(500).send({ error: "internal error" });
  });
  app.removeContentTypeParser(["text/plain", "application/json"]);
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => {
    if (!(body as string).trim()) return done(new HttpError(400, "request body is empty; send a JSON object"), undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      // V8's wording changes between Node versions; keep only the position it reports.
      const pos = /position (\d+)/.exec((err as Error).message);
      done(new HttpError(400, `request body is not valid JSON (${pos ? `error at character ${pos[1]}` : "it ends early or is not JSON at all"})`), undefined);
    }
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split("?")[0]}` }));

  app.decorateRequest("node", "");
  app.addHook("onRequest", async (req) => {
    if (req.url === "/healthz") return;
    const h = req.headers.authorization;
    if (!h) throw new HttpError(401, "missing Authorization: Bearer <node token>");
    const m = /^Bearer (\S+)$/.exec(h);
    if (!m) throw new HttpError(401, "Authorization header must be \"Bearer <node token>\"");
    const node = byTokenHash.get(sha256(m[1]!));
    if (!node) throw new HttpError(401, "unknown token");
    (req as FastifyRequest & { node: string }).node = node;
  });
  const nodeOf = (req: FastifyRequest) => (req as FastifyRequest & { node: string }).node;
  const mustGet = (id: number): Task => {
    const t = store.get(id);
    if (!t) throw new HttpError(404, `no task ${id}`);
    return t;
  };
  const mustHold = (req: FastifyRequest, t: Task) => {
    if (t.node !== nodeOf(req)) throw new HttpError(403, `task ${t.id} is leased to node ${t.node ?? "(none)"}, not ${nodeOf(req)}`);
  };

  app.get("/healthz", async () => ({ ok: true }));

  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", registry.contentType);
    return registry.metrics();
  });

  app.post("/v1/tasks", async (req, reply) => {
    const body = parse(SubmitBodySchema, req.body);
    const bytes = Buffer.byteLength(body.prompt, "utf8");
    if (bytes > MAX_PROMPT_BYTES) throw new HttpError(400, `field "prompt": ${bytes} bytes; the limit is ${MAX_PROMPT_BYTES} bytes (64 KiB)`);
    if (body.target !== "any" && !tokens.nodes[body.target]) throw new HttpError(400, `field "target": unknown node "${body.target}"; known nodes: ${nodeNames.join(", ")}, or "any"`);
    const nodes = eligible(body.target, body.tags);
    if (nodes.length === 0) throw new HttpError(400, `field "tags": no node ${body.target === "any" ? "" : `"${body.target}" `}has ${JSON.stringify(body.tags)}`);
    const task = await store.grouped(() => store.submit(body, nodeOf(req), nodes, Date.now()));
    submitted.inc();
    taskReady(task);
    return reply.code(201).send(task);
  });

  app.get("/v1/tasks", async (req) => {
    const q = req.query as Record<string, string | undefined>;
    for (const k of Object.keys(q)) if (!["state", "node", "limit"].includes(k)) throw new HttpError(400, `unknown query parameter "${k}" (allowed: state, node, limit)`);
    if (q.state !== undefined && !TASK_STATES.includes(q.state as TaskState)) throw new HttpError(400, `query "state" must be one of ${TASK_STATES.join(", ")}, got "${q.state}"`);
    if (q.node !== undefined && q.node !== "any" && !tokens.nodes[q.node]) throw new HttpError(400, `query "node": unknown node "${q.node}"`);
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new HttpError(400, `query "limit" must be an integer from 1 to 10000, got "${q.limit}"`);
    return { tasks: store.list({ state: q.state as TaskState | undefined, node: q.node, limit }) };
  });

  app.get("/v1/tasks/:id", async (req) => mustGet(taskId((req.params as { id: string }).id)));

  app.get("/v1/tasks/:id/wait", async (req, reply) => {
    const id = taskId((req.params as { id: string }).id);
    const wait = seconds((req.query as Record<string, string>).timeoutSeconds, "timeoutSeconds", maxResultWait, 60);
    const deadline = Date.now() + wait * 1000;
    for (;;) {
      const t = mustGet(id);
      if (FINAL_STATES.includes(t.state) || Date.now() >= deadline || closing || reply.raw.destroyed) return t;
      await waitFor(resultWaiters, id, deadline - Date.now(), reply);
    }
  });

  app.post("/v1/tasks/:id/cancel", async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const before = mustGet(id);
    if (FINAL_STATES.includes(before.state)) throw new HttpError(409, `task ${id} is already ${before.state}`);
    const t = store.cancel(id, Date.now())!;
    if (t.state === "cancelled") taskFinal(t);
    return t;
  });

  app.post("/v1/tasks/:id/priority", async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const { priority } = parse(PriorityBodySchema, req.body);
    const before = mustGet(id);
    if (before.state !== "pending") throw new HttpError(409, `task ${id} is ${before.state}; only a pending task's priority can change`);
    const t = store.setPriority(id, priority)!;
    taskReady(t);
    return t;
  });

  /** One claim attempt for `node` without waiting: a lease, or why not (budget cap reached, nothing ready). */
  const claimNow = (node: string, worker: string): ClaimAnswer => {
    const over = overBudget(node);
    if (over) {
      seen(node, "over-budget", `spent $${over.spent.toFixed(2)} of $${over.cap.toFixed(2)} today (UTC)`);
      return { task: null, leaseId: null, leaseSeconds, maxBudgetUsd: null, reason: "over-budget" };
    }
    seen(node, "idle");
    const c = store.claim(node, worker, leaseMs, Date.now());
    if (!c) return { task: null, leaseId: null, leaseSeconds, maxBudgetUsd: null, reason: "empty" };
    claims.inc({ node });
    const cap = tokens.nodes[node]!.budgetUsdPerSession ?? null;
    const maxBudgetUsd = cap === null ? null : Math.max(0, Math.floor((cap - spentToday(node)) * 100) / 100);
    return { task: c.task, leaseId: c.leaseId, leaseSeconds, maxBudgetUsd, reason: null };
  };

  app.post("/v1/claim", async (req, reply): Promise<ClaimAnswer> => {
    const body = parse(ClaimBodySchema, req.body);
    const node = nodeOf(req);
    if (body.node !== node) throw new HttpError(403, `this token belongs to node ${node}; it cannot claim tasks for node ${body.node}`);
    const deadline = Date.now() + Math.min(body.waitSeconds, maxClaimWait) * 1000;
    openClaims.set(node, (openClaims.get(node) ?? 0) + 1);
    try {
      for (;;) {
        if (reply.raw.destroyed || closing) {
          wakeOne(node); // a wake-up this claim cannot use goes to the next waiter
          return { task: null, leaseId: null, leaseSeconds, maxBudgetUsd: null, reason: "empty" };
        }
        const a = claimNow(node, body.worker);
        if (a.task || a.reason === "over-budget" || Date.now() >= deadline) return a;
        await waitFor(claimWaiters, node, deadline - Date.now(), reply);
      }
    } finally {
      openClaims.set(node, (openClaims.get(node) ?? 1) - 1);
    }
  });

  app.post("/v1/tasks/:id/heartbeat", async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const { leaseId } = parse(HeartbeatBodySchema, req.body);
    const before = mustGet(id);
    mustHold(req, before);
    const t = store.heartbeat(id, leaseId, leaseMs, Date.now());
    if (!t) throw new HttpError(409, `lease lost: task ${id} is ${before.state}${before.state === "running" ? " under another lease" : ""}`);
    seen(nodeOf(req), "busy", `task ${id}`);
    return { task: t, leaseSeconds };
  });

  app.post("/v1/tasks/:id/complete", async (req, reply) => {
    const id = taskId((req.params as { id: string }).id);
    const body = parse(CompleteBodySchema, req.body);
    const node = nodeOf(req);
    // The report and the next claim riding on it (no waiting: one round trip per task instead of two) commit
    // together, with the other writes of this event-loop turn.
    const { r, next } = await store.grouped(() => {
      const r = store.complete(id, node, body, Date.now());
      if (!r) throw new HttpError(404, `no task ${id}`);
      if (r.kind === "forbidden") mustHold(req, r.task);
      if (r.kind === "lost") throw new HttpError(409, `lease lost: task ${id} is ${r.task.state}${r.task.state === "running" ? " under another lease" : ""}; the result was not recorded`);
      if (r.kind === "ok") {
        // Add to a cached day total only: an uncached total is read from the store, which already has this cost.
        const cached = r.task.node ? spend.get(r.task.node) : undefined;
        if (r.task.costUsd && cached !== undefined && utcDayStart(Date.now()) === spendDay) spend.set(r.task.node!, cached + r.task.costUsd);
      }
      const next = body.claimNext && r.kind === "ok" && !closing ? claimNow(node, r.task.worker ?? node) : null;
      return { r, next };
    });
    if (r.kind === "ok") taskFinal(r.task);
    if (!body.claimNext) {
      seen(node, "idle");
      return reply.code(200).send(r.task);
    }
    return reply.code(200).send({ task: r.task, next });
  });

  app.post("/v1/tasks/:id/release", async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const { leaseId } = parse(ReleaseBodySchema, req.body);
    mustHold(req, mustGet(id));
    const t = store.release(id, leaseId);
    if (!t) throw new HttpError(409, `lease lost: task ${id} is not running under that lease`);
    taskReady(t);
    return t;
  });

  app.get("/v1/nodes", async () => ({ nodes: nodePresence() }));

  app.get("/v1/nodes/me", async (req): Promise<NodeInfo> => {
    const n = nodeOf(req);
    const node = tokens.nodes[n]!;
    seen(n);
    return {
      node: n,
      os: node.os,
      arch: node.arch,
      tags: node.tags,
      budgetUsdPerSession: node.budgetUsdPerSession ?? null,
      spentTodayUsd: spentToday(n),
      ntfy: tokens.ntfy ? { url: tokens.ntfy.url, topic: tokens.ntfy.topic, token: tokens.ntfy.token ?? null } : null,
      // Without a configured URL, links use the address the worker reached us at.
      publicUrl: opts.publicUrl ?? tokens.publicUrl ?? `http://${req.headers.host}`,
    };
  });

  app.post("/v1/nodes/me/presence", async (req, reply) => {
    const body = parse(PresenceBodySchema, req.body);
    seen(nodeOf(req), body.status, body.message);
    return reply.code(204).send();
  });

  app.get("/v1/stats", async (): Promise<Stats> => {
    const s = store.stats(utcDayStart(Date.now()));
    return { byState: s.byState, byNode: s.byNode, spentTodayUsd: Object.values(s.spentByNode).reduce((a, b) => a + b, 0), spentTodayByNode: s.spentByNode };
  });

  const close = async () => {
    closing = true;
    clearInterval(sweeper);
    for (const m of [claimWaiters, resultWaiters] as Array<Map<unknown, Set<Waiter>>>) for (const k of [...m.keys()]) wake(m, k);
    await app.close();
    store.close();
  };
  return { app, store, close };
}
