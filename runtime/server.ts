/**
 * The queue server (role `queue`): a fastify HTTP JSON API over the {@link Store}. Every route but
 * `/healthz` needs `Authorization: Bearer <token>` whose SHA-256 is in the tokens file (401 unknown), and a
 * token of a scope the route allows (403): a node's token (its worker and CLI: its own tasks), an operator's
 * (a person: every task) or a viewer's (a person: reads only). Claims are long-polled leases; a sweeper
 * re-queues tasks whose lease expired. See runtime/README.md for the route table and who may call what.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { readFileSync } from "node:fs";
import { Counter, Gauge, Registry } from "prom-client";
import type { z } from "zod";
import {
  ClaimBodySchema,
  CompleteBodySchema,
  FINAL_STATES,
  HeartbeatBodySchema,
  PresenceBodySchema,
  PriorityBodySchema,
  ReleaseBodySchema,
  SubmitBodySchema,
  TASK_STATES,
  quoted,
  textProblem,
  type ClaimAnswer,
  type NodeInfo,
  type NodePresence,
  type Stats,
  type Task,
  type TaskState,
} from "./api.js";
import { issuePath, tokenSha256, type PersonScope, type Scope, type TokensFile } from "./config.js";
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
  /** Longest a client may take to send a request's headers, from its first byte (default 10). */
  headersTimeoutSeconds?: number;
  /**
   * Longest a client may take to send a whole request, headers and body (default 30). A long poll's wait is
   * not counted: it starts once the request is in (Node's `requestTimeout`).
   */
  requestTimeoutSeconds?: number;
  /**
   * Most open connections; more are closed as soon as they are accepted (default: {@link defaultMaxConnections}),
   * so trickling clients can never take the file descriptors the database and real clients need.
   */
  maxConnections?: number;
}

/** File descriptors kept for the database, its WAL and temp files, stdio and Node itself. */
const RESERVED_FDS = 64;

/**
 * The process's soft limit on open files (`ulimit -n`), from /proc/self/limits ("Max open files"; Linux,
 * where the queue role runs), or null where that file does not exist or says "unlimited".
 */
export function openFilesLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Default connection cap: the open-files limit less {@link RESERVED_FDS} (at least 16), at most 10,000. */
export function defaultMaxConnections(limit = openFilesLimit()): number {
  return limit === null ? 10_000 : Math.min(10_000, Math.max(16, limit - RESERVED_FDS));
}

/** Who sent a request: a node (by its token) or a person with a scope. */
export type Principal = { kind: "node"; name: string } | { kind: "person"; name: string; scope: PersonScope };

/** The principal's scope. */
const scopeOf = (p: Principal): Scope => (p.kind === "node" ? "node" : p.scope);
/** How a principal is named in messages: `node alpha's token`, `viewer bob's token`. */
const describe = (p: Principal) => `${p.kind === "node" ? "node" : p.scope} ${p.name}'s token`;

/** Scopes a route allows, in its fastify `config.scopes` (absent: every scope). */
const ANY: readonly Scope[] = ["node", "operator", "viewer"];
const CHANGE: readonly Scope[] = ["node", "operator"];
const WORKER: readonly Scope[] = ["node"];

/**
 * An error answered as `{ "error": message }` with a status code. `close`: answer with `Connection: close`
 * (the request's body may be unread, e.g. refused before it was parsed).
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly close = false,
  ) {
    super(message);
  }
}

/** Start of the current UTC day in epoch ms (daily budgets reset at 00:00 UTC). */
export function utcDayStart(nowMs: number): number {
  const d = new Date(nowMs);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}

/** True when a node's facts satisfy a task's required tags (`os`, `arch` and custom tags, all equal). */
export function nodeMatches(node: TokensFile["nodes"][string], tags: Record<string, string>): boolean {
  // A Map: a tag named like an Object.prototype member ("toString") must find nothing but the node's own tags.
  const facts = new Map([...Object.entries(node.tags), ["os", node.os], ["arch", node.arch]]);
  return Object.entries(tags).every(([k, v]) => facts.get(k) === v);
}

/** A zod issue's received type in words: string, number, null, array, object, boolean (Infinity: JSON's 1e309). */
function typeOfInput(v: unknown): string {
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/** Formats the first zod issue as a one-line message naming the field. */
function zodMessage(err: z.ZodError): string {
  const issue = err.issues[0]!;
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => quoted(k)).join(", ");
    return `unknown field${issue.keys.length > 1 ? "s" : ""} ${keys}${issue.path.length ? ` in ${issuePath(issue.path)}` : ""}`;
  }
  // A record key's own message (tag names) sits one level down.
  if (issue.code === "invalid_key" && issue.issues[0]) return `field "${issuePath(issue.path)}": ${issue.issues[0].message}`;
  if (issue.code === "invalid_type") {
    // With reportInput the issue carries what was sent: absent is "required", anything else a wrong type.
    if (!("input" in issue) || issue.input === undefined) return `field "${issuePath(issue.path)}" is required`;
    return `field "${issuePath(issue.path)}": expected ${issue.expected}, got ${typeOfInput(issue.input)}`;
  }
  return `field "${issuePath(issue.path)}": ${issue.message}`;
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "request body must be a JSON object");
  }
  const r = schema.safeParse(body, { reportInput: true });
  if (!r.success) throw new HttpError(400, zodMessage(r.error));
  return r.data;
}

/** Task ids are positive integers within JavaScript's exact range (≤ 15 digits). */
function taskId(raw: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(raw)) throw new HttpError(400, `task id must be a positive integer, got ${quoted(raw)}`);
  return Number(raw);
}

/** One query parameter: undefined, or its single value (given twice is a 400). */
function queryValue(q: Record<string, unknown>, name: string): string | undefined {
  const v = Object.hasOwn(q, name) ? q[name] : undefined;
  if (Array.isArray(v)) throw new HttpError(400, `query "${name}" is given ${v.length} times; give it once`);
  return v as string | undefined;
}

/** Checks that a query has only the `allowed` parameters. */
function onlyQuery(q: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(q)) if (!allowed.includes(k)) throw new HttpError(400, `unknown query parameter ${quoted(k)} (allowed: ${allowed.join(", ") || "none"})`);
}

/** A query's number of seconds: digits with an optional fraction (no signs, exponents, hex or spaces). */
function seconds(raw: string | undefined, name: string, max: number, dflt: number): number {
  if (raw === undefined) return dflt;
  if (!/^[0-9]{1,9}(\.[0-9]{1,9})?$/.test(raw)) throw new HttpError(400, `query "${name}" must be a number of seconds ≥ 0, got ${quoted(raw)}`);
  return Math.min(Number(raw), max);
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
  // Node and person names are user-named keys: look them up in Maps, never on the plain objects.
  const nodes = new Map(Object.entries(tokens.nodes));
  const nodeNames = [...nodes.keys()];
  const byTokenHash = new Map<string, Principal>([
    ...Object.entries(tokens.nodes).map(([name, v]): [string, Principal] => [v.tokenSha256, { kind: "node", name }]),
    ...Object.entries(tokens.people).map(([name, v]): [string, Principal] => [v.tokenSha256, { kind: "person", name, scope: v.scope }]),
  ]);

  const eligible = (target: string, tags: Record<string, string>): string[] =>
    (target === "any" ? nodeNames : nodes.has(target) ? [target] : []).filter((n) => nodeMatches(nodes.get(n)!, tags));

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
    const cap = nodes.get(node)?.budgetUsdPerSession ?? null;
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
      const node = nodes.get(n)!;
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

  const headersTimeoutMs = (opts.headersTimeoutSeconds ?? 10) * 1000;
  const requestTimeoutMs = Math.max(headersTimeoutMs, (opts.requestTimeoutSeconds ?? 30) * 1000);
  const app = Fastify({
    logger: false,
    // The largest legal body (a 128 KiB result and a 16 KiB error, every byte a control character JSON
    // escapes as \u00XX: 6 bytes each) fits in 1 MiB.
    bodyLimit: 1024 * 1024,
    forceCloseConnections: true,
    // Slow clients (Node's http server): headers within headersTimeout, the whole request within
    // requestTimeout, checked every second (Node's default check runs every 30 s). Without these a
    // trickling body held its connection forever. A long poll is not cut: its request is already in.
    requestTimeout: requestTimeoutMs,
    http: { headersTimeout: headersTimeoutMs, requestTimeout: requestTimeoutMs, connectionsCheckingInterval: Math.min(1000, headersTimeoutMs) },
  });
  // Beyond the cap Node closes a new connection as soon as it is accepted: the process never runs out of
  // file descriptors (accept's EMFILE), and the connections it has keep being served.
  app.server.maxConnections = opts.maxConnections ?? defaultMaxConnections();

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const answer = (status: number, error: string, close: boolean) => {
      // The request's body may be unread (refused before parsing): end the connection rather than read it.
      if (close) reply.header("connection", "close");
      return reply.code(status).send({ error });
    };
    if (err instanceof HttpError) return answer(err.statusCode, err.message, err.close);
    if (err.code === "FST_ERR_CTP_INVALID_JSON_BODY" || err.name === "SyntaxError") return answer(400, "request body is not valid JSON", true);
    if (err.code === "FST_ERR_CTP_EMPTY_JSON_BODY") return answer(400, "request body is empty; send a JSON object", true);
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") return answer(413, `request body is larger than ${app.initialConfig.bodyLimit} bytes`, true);
    if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return answer(415, "send the body as Content-Type: application/json", true);
    if (err.statusCode && err.statusCode < 500) return answer(err.statusCode, err.message, true);
    process.stderr.write(`fleet queue: internal error: ${err.stack ?? err}\n`);
    return answer(500, "internal error", false);
  });
  app.removeContentTypeParser(["text/plain", "application/json"]);
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => {
    if (!(body as string).trim()) return done(new HttpError(400, "request body is empty; send a JSON object", true), undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      // V8's wording changes between Node versions; keep only the position it reports.
      const pos = /position (\d+)/.exec((err as Error).message);
      done(new HttpError(400, `request body is not valid JSON (${pos ? `error at character ${pos[1]}` : "it ends early or is not JSON at all"})`, true), undefined);
    }
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${quoted(req.url.split("?")[0]).slice(1, -1)}` }));

  // Authentication and the route's scopes, before the body is read: a refused request costs no parsing.
  app.decorateRequest("principal", null);
  app.addHook("onRequest", async (req) => {
    if (req.url === "/healthz") return;
    const h = req.headers.authorization;
    if (!h) throw new HttpError(401, "missing Authorization: Bearer <token>", true);
    // The scheme is case-insensitive (RFC 9110 §11.1); a token is one run of visible ASCII.
    const m = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(h);
    if (!m) throw new HttpError(401, "Authorization header must be \"Bearer <token>\"", true);
    const who = byTokenHash.get(tokenSha256(m[1]!));
    if (!who) throw new HttpError(401, "unknown token", true);
    (req as FastifyRequest & { principal: Principal }).principal = who;
    const scopes = (req.routeOptions.config as { scopes?: readonly Scope[] }).scopes ?? ANY;
    if (!scopes.includes(scopeOf(who))) {
      const route = `${req.method} ${req.routeOptions.url}`;
      throw new HttpError(403, `${route} needs a ${scopes.join(" or ")} token; this is ${describe(who)}${scopes === WORKER ? " (it is a worker's call)" : ""}`, true);
    }
  });
  // Text hygiene: no field of any body or query holds a NUL byte, a lone surrogate or a reserved key.
  app.addHook("preValidation", async (req) => {
    const problem = textProblem(req.query, "query") ?? (req.body === undefined ? null : textProblem(req.body));
    if (problem) throw new HttpError(400, problem);
  });
  const who = (req: FastifyRequest) => (req as FastifyRequest & { principal: Principal }).principal;
  /** The node a worker call comes from (routes whose scopes are {@link WORKER}). */
  const nodeOf = (req: FastifyRequest) => who(req).name;
  const mustGet = (id: number): Task => {
    const t = store.get(id);
    if (!t) throw new HttpError(404, `no task ${id}`);
    return t;
  };
  const mustHold = (req: FastifyRequest, t: Task) => {
    if (t.node !== nodeOf(req)) throw new HttpError(403, `task ${t.id} is leased to node ${t.node ?? "(none)"}, not ${nodeOf(req)}`);
  };
  /** A node sees (reads, waits on, cancels, re-prioritises) the tasks it submitted, runs or that target it; people see all. */
  const visible = (p: Principal, t: Task) => p.kind === "person" || t.submittedBy === p.name || t.target === p.name || t.node === p.name;
  const mustSee = (req: FastifyRequest, id: number): Task => {
    const t = mustGet(id);
    const p = who(req);
    if (!visible(p, t)) throw new HttpError(403, `task ${id} is not node ${p.name}'s: a node token reads and changes only the tasks its node submitted, runs or that target it`);
    return t;
  };
  const scopes = (s: readonly Scope[]) => ({ config: { scopes: s } });

  app.get("/healthz", async () => ({ ok: true }));

  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", registry.contentType);
    return registry.metrics();
  });

  app.post("/v1/tasks", scopes(CHANGE), async (req, reply) => {
    const body = parse(SubmitBodySchema, req.body);
    if (body.target !== "any" && !nodes.has(body.target)) throw new HttpError(400, `field "target": unknown node "${body.target}"; known nodes: ${nodeNames.join(", ")}, or "any"`);
    const runners = eligible(body.target, body.tags);
    if (runners.length === 0) throw new HttpError(400, `field "tags": no node ${body.target === "any" ? "" : `"${body.target}" `}has ${JSON.stringify(body.tags)}`);
    const task = await store.grouped(() => store.submit(body, who(req).name, runners, Date.now()));
    submitted.inc();
    taskReady(task);
    return reply.code(201).send(task);
  });

  app.get("/v1/tasks", async (req) => {
    const q = req.query as Record<string, unknown>;
    onlyQuery(q, ["state", "node", "limit"]);
    const [state, node, rawLimit] = [queryValue(q, "state"), queryValue(q, "node"), queryValue(q, "limit")];
    if (state !== undefined && !TASK_STATES.includes(state as TaskState)) throw new HttpError(400, `query "state" must be one of ${TASK_STATES.join(", ")}, got ${quoted(state)}`);
    if (node !== undefined && node !== "any" && !nodes.has(node)) throw new HttpError(400, `query "node": unknown node ${quoted(node)}`);
    if (rawLimit !== undefined && !/^[1-9][0-9]{0,4}$/.test(rawLimit)) throw new HttpError(400, `query "limit" must be an integer from 1 to 10000, got ${quoted(rawLimit)}`);
    const limit = rawLimit === undefined ? 100 : Number(rawLimit);
    if (limit > 10_000) throw new HttpError(400, `query "limit" must be an integer from 1 to 10000, got ${quoted(rawLimit)}`);
    const p = who(req);
    return { tasks: store.list({ state: state as TaskState | undefined, node, limit, visibleTo: p.kind === "node" ? p.name : undefined }) };
  });

  app.get("/v1/tasks/:id", async (req) => mustSee(req, taskId((req.params as { id: string }).id)));

  app.get("/v1/tasks/:id/wait", async (req, reply) => {
    const id = taskId((req.params as { id: string }).id);
    const q = req.query as Record<string, unknown>;
    onlyQuery(q, ["timeoutSeconds"]);
    const wait = seconds(queryValue(q, "timeoutSeconds"), "timeoutSeconds", maxResultWait, 60);
    mustSee(req, id);
    const deadline = Date.now() + wait * 1000;
    for (;;) {
      const t = mustGet(id);
      if (FINAL_STATES.includes(t.state) || Date.now() >= deadline || closing || reply.raw.destroyed) return t;
      await waitFor(resultWaiters, id, deadline - Date.now(), reply);
    }
  });

  app.post("/v1/tasks/:id/cancel", scopes(CHANGE), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const before = mustSee(req, id);
    if (FINAL_STATES.includes(before.state)) throw new HttpError(409, `task ${id} is already ${before.state}`);
    const t = store.cancel(id, Date.now())!;
    if (t.state === "cancelled") taskFinal(t);
    return t;
  });

  app.post("/v1/tasks/:id/priority", scopes(CHANGE), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const { priority } = parse(PriorityBodySchema, req.body);
    const before = mustSee(req, id);
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
    const cap = nodes.get(node)!.budgetUsdPerSession ?? null;
    const maxBudgetUsd = cap === null ? null : Math.max(0, Math.floor((cap - spentToday(node)) * 100) / 100);
    return { task: c.task, leaseId: c.leaseId, leaseSeconds, maxBudgetUsd, reason: null };
  };

  app.post("/v1/claim", scopes(WORKER), async (req, reply): Promise<ClaimAnswer> => {
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

  app.post("/v1/tasks/:id/heartbeat", scopes(WORKER), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const { leaseId } = parse(HeartbeatBodySchema, req.body);
    const before = mustGet(id);
    mustHold(req, before);
    const t = store.heartbeat(id, leaseId, leaseMs, Date.now());
    if (!t) throw new HttpError(409, `lease lost: task ${id} is ${before.state}${before.state === "running" ? " under another lease" : ""}`);
    seen(nodeOf(req), "busy", `task ${id}`);
    return { task: t, leaseSeconds };
  });

  app.post("/v1/tasks/:id/complete", scopes(WORKER), async (req, reply) => {
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

  app.post("/v1/tasks/:id/release", scopes(WORKER), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const { leaseId } = parse(ReleaseBodySchema, req.body);
    mustHold(req, mustGet(id));
    const t = store.release(id, leaseId);
    if (!t) throw new HttpError(409, `lease lost: task ${id} is not running under that lease`);
    taskReady(t);
    return t;
  });

  app.get("/v1/nodes", async () => ({ nodes: nodePresence() }));

  app.get("/v1/nodes/me", scopes(WORKER), async (req): Promise<NodeInfo> => {
    const n = nodeOf(req);
    const node = nodes.get(n)!;
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

  app.post("/v1/nodes/me/presence", scopes(WORKER), async (req, reply) => {
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
