/**
 * The fleet's web dashboard, served by the queue server on its own port (issue 12): sign-in with a person's
 * token (operator or viewer; a node's token opens no page), the fleet (every node of the tokens file with its
 * presence and spend today), the task list with filters, a task's page, the submit form, cancel and re-prioritise.
 *
 * Built from well-kept parts: @fastify/session (in-memory sessions; the cookie is HttpOnly, SameSite=Strict
 * and Secure when the request came over HTTPS), @fastify/csrf-protection (a token per session on every
 * state-changing form, checked once the form body is parsed; a sign-in starts a new session, so older tokens
 * stop working), @fastify/helmet (security
 * headers and a CSP that allows only this origin's scripts), @fastify/rate-limit (sign-in attempts per
 * client address), @fastify/formbody, @fastify/static (htmx and its SSE extension from their npm packages,
 * no CDN), Mustache (HTML escaping). Live updates are Server-Sent Events on `/events`: one `task` event per
 * change of any task, on which the open page re-fetches itself and swaps its table (htmx), so nothing polls.
 *
 * Everything here lives in its own fastify context: the API's routes keep their JSON parser, error shape
 * and bearer tokens; these routes carry `config.web` so the bearer check ({@link installAuth}) skips them.
 */
import formbody from "@fastify/formbody";
import cookie from "@fastify/cookie";
import csrf from "@fastify/csrf-protection";
import helmet from "@fastify/helmet";
import rateLimit from "@fastify/rate-limit";
import session from "@fastify/session";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { randomBytes } from "node:crypto";
import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { AgentApiClient, AgentApiError, type AgentMessage, type AgentStatus } from "./agentapi.js";
import { defaultIssuePrompt, FINAL_STATES, parseIssueRef, PRIORITIES, TASK_STATES, type GitHubOrphan, type ReportedHealth, type NodePresence, type Task, type TaskState } from "./api.js";
import { principalLookup } from "./auth.js";
import type { TokensFile } from "./config.js";
import { CHARTS_JS, DASHBOARD_CSS, renderPage, type LayoutUser, type PageName } from "./dashboard-views.js";
import { HttpError, tagFilter, taskId } from "./http.js";
import { MODELS } from "./model-choice.js";
import type { Store } from "./store.js";

/** What the dashboard needs from the queue server (runtime/server.ts builds it). */
export interface DashboardQueue {
  tokens: TokensFile;
  store: Store;
  /** Every node's presence and spend today, as `GET /v1/nodes` answers it. */
  nodes: () => NodePresence[];
  /** Each node's latest `fleet status --report` row (`GET /v1/health`), by node. */
  health: () => ReadonlyMap<string, ReportedHealth>;
  /** Submits as `POST /v1/tasks` does (same validation); throws {@link HttpError} 400 with the API's message. */
  submit: (body: unknown, by: string) => Promise<Task>;
  /** Cancels as `POST /v1/tasks/:id/cancel` does; throws {@link HttpError} 404 / 409. */
  cancel: (id: number) => Task;
  /** Re-prioritises as `POST /v1/tasks/:id/priority` does (body `{ priority }`); throws {@link HttpError} 400 / 404 / 409. */
  prioritise: (id: number, body: unknown) => Task;
  /**
   * Emits `"task"` with the {@link Task} after every change of a task (submit, claim, report, cancel,
   * expiry), and `"health"` when a health report arrived.
   */
  changes: EventEmitter;
  /**
   * Orphaned GitHub work as `GET /v1/github/orphans` lists it (runtime/api.ts `githubOrphans`): a query of the
   * `github-issue` tasks only, and the poller's last list of fleet pull requests (no GitHub call per render).
   */
  githubOrphans: () => GitHubOrphan[];
}

/** Options of {@link installDashboard}. */
export interface DashboardOptions {
  /** Sign-in attempts allowed per client address per minute (default 10). */
  loginsPerMinute?: number;
  /** How long a session lasts after sign-in, in seconds (default 12 hours). */
  sessionSeconds?: number;
  /** Limit of one call to an agent's AgentAPI, in seconds (default 5). */
  agentTimeoutSeconds?: number;
  /** How often an open agent page asks its AgentAPI for news, in seconds (default 1). */
  agentPollSeconds?: number;
  /** Task events to one open page are sent at most this often, in seconds (default 0.1): a burst of changes is one refresh. */
  eventBatchSeconds?: number;
}

/** A signed-in person, as kept in the session. */
interface SessionUser {
  name: string;
  scope: "operator" | "viewer";
}

declare module "fastify" {
  interface Session {
    user?: SessionUser;
  }
}

/** Directory of an npm package's file (the package has no `exports` map, so `require.resolve` finds it). */
function packageDir(file: string): string {
  return dirname(createRequire(import.meta.url).resolve(file));
}

/** Form fields whose API error (`field "<name>"…`) is shown beside them on the submit form. */
const SUBMIT_FIELDS = ["target", "tags", "github", "prompt", "priority", "model", "timeoutSeconds"] as const;
type SubmitField = (typeof SUBMIT_FIELDS)[number];

/**
 * The form's values as the API's submit body: empty optional fields are left out (the API's defaults
 * apply); `tags` is `name=value` pairs separated by spaces; `github` an issue as `owner/repo#n` (a
 * `github-issue` task; an empty prompt then becomes `fleet task github`'s default); `timeoutSeconds` a number
 * when it reads as one, else the text itself, so the API's own message names the field.
 * @throws HttpError 400 `field "tags": …` for a pair without `=`; `field "github": …` for a reference that is
 *   not `owner/repo#n`.
 */
export function submitBodyOf(form: Record<string, unknown>): Record<string, unknown> {
  const text = (k: string) => (typeof form[k] === "string" ? (form[k] as string) : undefined);
  const body: Record<string, unknown> = { target: text("target") ?? "", prompt: text("prompt") ?? "" };
  for (const k of ["priority", "model"]) if (text(k)) body[k] = text(k);
  const github = text("github")?.trim();
  if (github) {
    const ref = parseIssueRef(github);
    if (typeof ref === "string") throw new HttpError(400, `field "github": ${ref}`);
    body.github = ref;
    if (typeof body.prompt === "string" && body.prompt.trim() === "") body.prompt = defaultIssuePrompt(ref);
  }
  const timeout = text("timeoutSeconds")?.trim();
  if (timeout) body.timeoutSeconds = /^[0-9]+(\.[0-9]+)?$/.test(timeout) ? Number(timeout) : timeout;
  const tags = text("tags")?.trim();
  if (tags) {
    const pairs = tags.split(/\s+/);
    const bad = pairs.find((p) => !/^[^=]+=.*$/.test(p));
    if (bad !== undefined) throw new HttpError(400, `field "tags": expected name=value pairs separated by spaces, got ${JSON.stringify(bad.slice(0, 80))}`);
    body.tags = Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]));
  }
  return body;
}

/** The submit-form field an API message names (`field "tags.os": …` → tags), or null for the whole form. */
export function fieldOf(message: string): SubmitField | null {
  const m = /^field "([A-Za-z]+)/.exec(message);
  return m && (SUBMIT_FIELDS as readonly string[]).includes(m[1]!) ? (m[1] as SubmitField) : null;
}

const money = (usd: number | null) => (usd === null ? "–" : `$${usd.toFixed(4)}`);
const secondsText = (s: number | null) => (s === null ? "–" : `${s.toFixed(1)} s`);
const modelText = (t: Task) => (t.chosenModel ? `${t.chosenModel}${t.model === "auto" ? " (auto)" : ""}${t.modelReason ? `: ${t.modelReason}` : ""}` : t.model);
/** A prompt's first line, cut to 120 characters, for the task list. */
const promptLine = (p: string) => {
  const line = p.split("\n", 1)[0]!;
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
};

/**
 * Where to go after sign-in: a path of this dashboard (`/tasks/5`, with its query), or null for anything
 * else — another origin (`//host`, `https://…`), a backslash trick, control characters — so the sign-in
 * page is never an open redirect.
 */
export function nextPage(raw: unknown): string | null {
  if (typeof raw !== "string" || raw.length > 512) return null;
  return /^\/(?![/\\])[\x21-\x7e]*$/.test(raw) && !raw.includes("\\") && !raw.startsWith("/login") ? raw : null;
}

/** An ISO time as `YYYY-MM-DD HH:MM:SS` UTC, or "" for none. */
const utcText = (iso: string | undefined | null) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "");

/** Buckets of the dashboard's charts, as uPlot takes them: x in seconds since the epoch, one array of y per series. */
export interface ChartData {
  x: number[];
  series: Array<{ label: string; values: number[] }>;
}

/**
 * The charts' data for the 24 hours before `now` (ms): tasks per minute (submitted, and each final state as
 * tasks reached it) and spend per node (USD, cumulative per hour, every node of `nodes` in order). Every
 * bucket is present (zeros included), so the x axis is the whole day.
 */
export function chartData(activity: ReturnType<Store["activity"]>, nodes: readonly string[], now: number): { tasks: ChartData; spend: ChartData } {
  const minute = 60_000;
  const hour = 3_600_000;
  const firstMinute = Math.floor((now - 86_400_000) / minute) * minute;
  const minutes = Array.from({ length: Math.floor(now / minute) - firstMinute / minute + 1 }, (_, i) => firstMinute + i * minute);
  const at = new Map(minutes.map((m, i) => [m, i]));
  const perState = new Map<string, number[]>(["submitted", ...FINAL_STATES].map((k) => [k, minutes.map(() => 0)]));
  for (const r of activity.submitted) if (at.has(r.minute)) perState.get("submitted")![at.get(r.minute)!] = r.n;
  for (const r of activity.finished) if (at.has(r.minute) && perState.has(r.state)) perState.get(r.state)![at.get(r.minute)!] = r.n;
  const firstHour = Math.floor((now - 86_400_000) / hour) * hour;
  const hours = Array.from({ length: Math.floor(now / hour) - firstHour / hour + 1 }, (_, i) => firstHour + i * hour);
  const spent = new Map(nodes.map((n) => [n, hours.map(() => 0)]));
  for (const r of activity.spend) {
    const i = Math.floor((r.hour - firstHour) / hour);
    if (i >= 0 && i < hours.length) spent.get(r.node)?.splice(i, 1, r.usd);
  }
  const cumulative = (v: number[]) => {
    let sum = 0;
    return v.map((x) => Math.round((sum += x) * 1e6) / 1e6);
  };
  return {
    tasks: { x: minutes.map((m) => m / 1000), series: [...perState].map(([label, values]) => ({ label, values })) },
    spend: { x: hours.map((h) => h / 1000), series: [...spent].map(([label, values]) => ({ label, values: cumulative(values) })) },
  };
}

/**
 * Registers the dashboard on `app` (the queue server's fastify, before it listens), in its own context
 * (fastify loads it at `ready`/`listen`).
 * Returns `close()`, which ends every open event stream (call it before `app.close()`).
 */
export function installDashboard(app: FastifyInstance, q: DashboardQueue, opts: DashboardOptions = {}): { close: () => void } {
  const lookup = principalLookup(q.tokens);
  const streams = new Set<FastifyReply["raw"]>();
  const nodeNames = Object.keys(q.tokens.nodes);
  // The queue alone knows how to reach each AgentAPI (the tokens file's `agentapi` URL); the node firewall
  // admits only this node there, so these routes are the one authenticated door to the agents.
  const agents = new Map<string, AgentApiClient>();
  for (const [name, n] of Object.entries(q.tokens.nodes)) if (n.agentapi) agents.set(name, new AgentApiClient(n.agentapi, opts.agentTimeoutSeconds ?? 5));
  const agentPollMs = (opts.agentPollSeconds ?? 1) * 1000;
  const batchMs = (opts.eventBatchSeconds ?? 0.1) * 1000;

  void app.register(async (web) => {
    // Every route of this context is a web route: no bearer token (installAuth), a session instead.
    web.addHook("onRoute", (r) => {
      r.config = { ...(r.config as object), web: true } as typeof r.config;
    });
    await web.register(helmet, {
      contentSecurityPolicy: {
        // Nodes are reached over plain HTTP on the tailnet: upgrading would break every asset.
        directives: { upgradeInsecureRequests: null, scriptSrc: ["'self'"], styleSrc: ["'self'"] },
      },
    });
    await web.register(rateLimit, { global: false });
    await web.register(formbody);
    await web.register(cookie);
    await web.register(session, {
      // A fresh secret per start: sessions end with the process (sign in again after a restart).
      secret: randomBytes(32).toString("base64url"),
      cookieName: "fleet_session",
      saveUninitialized: false,
      // Not secure: "auto", which also lowers SameSite to Lax over HTTP; Secure is set at sign-in instead.
      cookie: { httpOnly: true, sameSite: "strict", secure: false, path: "/", maxAge: (opts.sessionSeconds ?? 12 * 3600) * 1000 },
    });
    await web.register(csrf, { sessionPlugin: "@fastify/session" });
    await web.register(fastifyStatic, {
      root: [packageDir("htmx.org/dist/htmx.min.js"), packageDir("htmx-ext-sse/dist/sse.js"), packageDir("uplot/dist/uPlot.iife.min.js")],
      prefix: "/assets/",
      index: false,
      list: false,
      wildcard: false,
      allowedPath: (path) => ["/htmx.min.js", "/sse.js", "/uPlot.iife.min.js", "/uPlot.min.css"].includes(path),
    });
    web.get("/assets/fleet.css", async (_req, reply) => reply.type("text/css; charset=utf-8").send(DASHBOARD_CSS));
    web.get("/assets/charts.js", async (_req, reply) => reply.type("text/javascript; charset=utf-8").send(CHARTS_JS));

    const userOf = (req: FastifyRequest): SessionUser | null => {
      const u = req.session.get("user");
      // A person removed from the tokens file (server restarted with a new file) loses their session.
      return u && Object.hasOwn(q.tokens.people, u.name) ? u : null;
    };
    const layoutUser = (reply: FastifyReply, u: SessionUser): LayoutUser => ({
      name: u.name,
      scope: u.scope,
      canChange: u.scope === "operator",
      csrf: reply.generateCsrf(),
    });
    const page = (reply: FastifyReply, status: number, name: PageName, title: string, user: LayoutUser | null, view: object) =>
      reply.code(status).type("text/html; charset=utf-8").header("cache-control", "no-store").send(renderPage(name, title, user, view));
    /** The signed-in person, or a redirect to the sign-in page (GET) / a 403 (anything else). */
    const signedIn = (req: FastifyRequest, reply: FastifyReply): SessionUser | null => {
      const u = userOf(req);
      if (u) return u;
      // Back to this page after sign-in (a notification's link to a task lands here first).
      if (req.method === "GET") reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
      else throw new HttpError(403, "sign in first: this page needs a person's session");
      return null;
    };
    const operator = (req: FastifyRequest): SessionUser => {
      const u = userOf(req);
      if (!u) throw new HttpError(403, "sign in first: this page needs a person's session");
      if (u.scope !== "operator") throw new HttpError(403, `viewer ${u.name} may not change tasks; an operator's token may`);
      return u;
    };

    /** The AgentAPI client of node `raw` (a path parameter). @throws HttpError 404 for an unknown node or one without AgentAPI. */
    const agentOf = (raw: string): AgentApiClient => {
      const c = agents.get(raw);
      if (c) return c;
      throw new HttpError(404, nodeNames.includes(raw) ? `node ${raw} runs no AgentAPI (role agentapi)` : `no node ${JSON.stringify(raw.slice(0, 63))}`);
    };
    /** An agent's status, or why it could not be asked (one line). */
    const agentStatus = async (c: AgentApiClient): Promise<{ status: AgentStatus | null; error: string | null }> => {
      try {
        return { status: await c.status(), error: null };
      } catch (err) {
        return { status: null, error: (err as Error).message };
      }
    };
    /**
     * Opens a Server-Sent Events stream for a signed-in person: the headers, a comment every 15 s (so proxies
     * and the browser do not time it out), and `onClose` when the page goes. Returns the response to write to.
     * @throws HttpError 401 without a session.
     */
    const openStream = (req: FastifyRequest, reply: FastifyReply, onClose: () => void): FastifyReply["raw"] => {
      if (!userOf(req)) throw new HttpError(401, "sign in first");
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" });
      res.write(": fleet events\n\n");
      const ping = setInterval(() => res.write(": ping\n\n"), 15_000);
      streams.add(res);
      res.on("close", () => {
        clearInterval(ping);
        streams.delete(res);
        onClose();
      });
      return res;
    };
    /**
     * Opens a Server-Sent Events stream that sends `event: <event>` whenever `snapshot()` (asked every
     * `everyMs`, never twice at once) differs from the last answer: the page then re-fetches its live part.
     */
    const watch = (req: FastifyRequest, reply: FastifyReply, event: string, everyMs: number, snapshot: () => Promise<string>) => {
      let timer: NodeJS.Timeout | undefined;
      const res = openStream(req, reply, () => clearInterval(timer));
      let last: string | null = null;
      let busy = false;
      const tick = async () => {
        if (busy) return;
        busy = true;
        try {
          const now = await snapshot();
          if (last !== null && now !== last && !res.destroyed) res.write(`event: ${event}\ndata: \n\n`);
          last = now;
        } finally {
          busy = false;
        }
      };
      void tick();
      timer = setInterval(() => void tick(), everyMs);
    };

    web.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
      const status = err instanceof HttpError ? err.statusCode : err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) process.stderr.write(`fleet queue: dashboard internal error: ${err.stack ?? err}\n`);
      const message =
        status === 500
          ? "internal error"
          : err.code?.startsWith("FST_CSRF_")
            ? "this form is out of date or was not sent by this dashboard (invalid CSRF token); reload the page and try again"
            : err.message;
      const u = userOf(req);
      return page(reply, status, "error", `${status}`, u ? layoutUser(reply, u) : null, { status, message });
    });

    web.get("/", async (req, reply) => reply.redirect(userOf(req) ? "/fleet" : "/login", 303));

    web.get("/login", async (req, reply) => page(reply, 200, "login", "Sign in", null, { next: nextPage((req.query as Record<string, unknown>).next) }));

    web.post("/login", { config: { rateLimit: { max: opts.loginsPerMinute ?? 10, timeWindow: 60_000 } } }, async (req, reply) => {
      const token = (req.body as Record<string, unknown> | undefined)?.token;
      const p = typeof token === "string" && /^[\x21-\x7e]{1,512}$/.test(token) ? lookup(token) : undefined;
      const next = nextPage((req.body as Record<string, unknown> | undefined)?.next);
      const refuse = (error: string) => page(reply, 401, "login", "Sign in", null, { error, next });
      if (!p) return refuse("unknown token");
      if (p.kind === "node") return refuse("this is a node's token; it works for the API, not here: sign in with a person's token (operator or viewer)");
      // A new session id at sign-in (no fixation); its CSRF secret is new too.
      await req.session.regenerate();
      req.session.set("user", { name: p.name, scope: p.scope });
      req.session.cookie.secure = req.protocol === "https";
      return reply.redirect(next ?? "/fleet", 303);
    });

    web.post("/logout", { preHandler: web.csrfProtection }, async (req, reply) => {
      await req.session.destroy();
      return reply.redirect("/login", 303);
    });

    web.get("/fleet", async (req, reply) => {
      const u = signedIn(req, reply);
      if (!u) return reply;
      const healthOf = q.health();
      const reported = [...healthOf.values()];
      const nodes = q.nodes().map((n) => ({
        ...n,
        profile: n.profile ?? "–",
        rolesText: n.roles.join(", "),
        health: healthOf.has(n.node) ? { ...healthOf.get(n.node)!, atText: utcText(healthOf.get(n.node)!.at) } : null,
        lastSeenText: utcText(n.lastSeen),
        agent: agents.has(n.node),
        cap: n.budgetUsdPerSession,
        spent: Math.min(n.spentTodayUsd, n.budgetUsdPerSession ?? n.spentTodayUsd),
        spentText: n.spentTodayUsd.toFixed(2),
        capText: n.budgetUsdPerSession?.toFixed(2),
      }));
      return page(reply, 200, "fleet", "Fleet", layoutUser(reply, u), {
        nodes,
        count: nodes.length,
        online: nodes.filter((n) => n.online).length,
        report: reported.length
          ? { atText: utcText(reported.map((h) => h.at).sort().at(-1)), unhealthy: reported.filter((h) => !h.healthy).length, checked: reported.length }
          : null,
      });
    });

    web.get("/tasks", async (req, reply) => {
      const u = signedIn(req, reply);
      if (!u) return reply;
      const query = req.query as Record<string, unknown>;
      const pick = (k: string) => (typeof query[k] === "string" && query[k] !== "" ? (query[k] as string) : undefined);
      const state = pick("state");
      const node = pick("node");
      const tagText = pick("tag")?.trim();
      const tag = tagText ? tagFilter(tagText) : undefined;
      if (state !== undefined && !TASK_STATES.includes(state as TaskState)) throw new HttpError(400, `filter "state" must be one of ${TASK_STATES.join(", ")}`);
      if (node !== undefined && !nodeNames.includes(node)) throw new HttpError(400, `filter "node": unknown node; known nodes: ${nodeNames.join(", ")}`);
      const tasks = q.store.list({ state: state as TaskState | undefined, node, tag, limit: 200 });
      const params = new URLSearchParams();
      if (state) params.set("state", state);
      if (node) params.set("node", node);
      if (tagText) params.set("tag", tagText);
      return page(reply, 200, "tasks", "Tasks", layoutUser(reply, u), {
        self: `/tasks${params.size ? `?${params}` : ""}`,
        filtered: params.size > 0,
        count: tasks.length,
        states: TASK_STATES.map((value) => ({ value, selected: value === state })),
        nodeOptions: nodeNames.map((value) => ({ value, selected: value === node })),
        tag: tagText ?? "",
        // GitHub work left behind, as fleet task status lists it (the same queue function).
        orphans: q.githubOrphans().map((o) => ({ ...o, linked: o.kind === "issue", whyText: o.why === "failed" ? `failed: ${o.error ?? ""}` : o.why === "lease-lost" ? "lost its worker; waits for another attempt" : o.task === null ? "its body names no task" : `task #${o.task} is gone (purged)` })),
        tasks: tasks.map((t) => ({ ...t, tagsText: Object.entries(t.tags).map(([k, v]) => `${k}=${v}`).join(" "), modelText: modelText(t), cost: money(t.costUsd), duration: secondsText(t.durationSeconds), promptLine: promptLine(t.prompt) })),
      });
    });

    const submitPage = (req: FastifyRequest, reply: FastifyReply, u: SessionUser, status: number, values: Record<string, unknown>, error: string | null) => {
      const field = error ? fieldOf(error) : null;
      const v = (k: string, d = "") => (typeof values[k] === "string" ? (values[k] as string) : d);
      const options = (k: string, all: readonly string[], d: string) => ({ options: all.map((value) => ({ value, selected: value === v(k, d) })) });
      const f = (name: SubmitField, label: string, kind: object) => ({ name, label, error: field === name ? error : null, value: v(name), ...kind });
      return page(reply, status, "submit", "Submit a task", layoutUser(reply, u), {
        csrf: reply.generateCsrf(),
        formError: error && !field ? error : null,
        fields: [
          f("target", "Target node", { select: options("target", ["any", ...nodeNames], "any") }),
          f("tags", "Required tags (name=value, space-separated; optional)", { text: true, hint: "os=debian arch=x86_64" }),
          f("github", "GitHub issue to turn into a pull request (owner/repo#n; optional)", { text: true, hint: "acme/widgets#12" }),
          f("prompt", "Prompt", { textarea: true }),
          f("priority", "Priority", { select: options("priority", PRIORITIES, "medium") }),
          f("model", "Model", { select: options("model", ["auto", ...MODELS], "auto") }),
          f("timeoutSeconds", "Timeout (seconds; optional, default 3600)", { text: true }),
        ],
      });
    };

    web.get("/tasks/new", async (req, reply) => {
      if (!signedIn(req, reply)) return reply;
      return submitPage(req, reply, operator(req), 200, {}, null);
    });

    web.post("/tasks", { preHandler: web.csrfProtection }, async (req, reply) => {
      const u = operator(req);
      const form = (req.body ?? {}) as Record<string, unknown>;
      let task: Task;
      try {
        task = await q.submit(submitBodyOf(form), u.name);
      } catch (err) {
        if (err instanceof HttpError && err.statusCode === 400) return submitPage(req, reply, u, 400, form, err.message);
        throw err;
      }
      return reply.redirect(`/tasks/${task.id}`, 303);
    });

    web.get("/tasks/:id", async (req, reply) => {
      const u = signedIn(req, reply);
      if (!u) return reply;
      const id = taskId((req.params as { id: string }).id);
      const t = q.store.get(id);
      if (!t) throw new HttpError(404, `no task ${id}`);
      return page(reply, 200, "task", `Task #${id}`, layoutUser(reply, u), {
        task: t,
        csrf: reply.generateCsrf(),
        canCancel: u.scope === "operator" && !FINAL_STATES.includes(t.state),
        canPrioritise: u.scope === "operator" && t.state === "pending",
        priorities: PRIORITIES.map((value) => ({ value, selected: value === t.priority })),
        tagsText: Object.entries(t.tags).map(([k, v]) => `${k}=${v}`).join(" "),
        modelText: modelText(t),
        leases: q.store.leaseHistory(id).map((e) => ({ ...e, atText: utcText(e.at), leased: e.event === "leased" })),
        children: q.store.children(id).map((c, i) => ({ ...c, comma: i > 0 })),
        hasNotes: t.notes.length > 0,
        notes: t.notes.map((n) => ({ ...n, atText: utcText(n.at) })),
        hasExit: t.exitCode !== null,
        cost: money(t.costUsd),
        duration: secondsText(t.durationSeconds),
      });
    });

    web.post("/tasks/:id/priority", { preHandler: web.csrfProtection }, async (req, reply) => {
      operator(req);
      const id = taskId((req.params as { id: string }).id);
      const form = (req.body ?? {}) as Record<string, unknown>;
      q.prioritise(id, { priority: form.priority });
      return reply.redirect(`/tasks/${id}`, 303);
    });

    web.post("/tasks/:id/cancel", { preHandler: web.csrfProtection }, async (req, reply) => {
      operator(req);
      const id = taskId((req.params as { id: string }).id);
      q.cancel(id);
      return reply.redirect(`/tasks/${id}`, 303);
    });

    web.get("/agents", async (req, reply) => {
      const u = signedIn(req, reply);
      if (!u) return reply;
      const rows = await Promise.all([...agents].map(async ([node, c]) => ({ node, ...(await agentStatus(c)) })));
      return page(reply, 200, "agents", "Agents", layoutUser(reply, u), { agents: rows, count: rows.length });
    });

    web.get("/events/agents", async (req, reply) =>
      watch(req, reply, "agents", agentPollMs * 2, async () => JSON.stringify(await Promise.all([...agents.values()].map(agentStatus)))),
    );

    const agentPage = async (reply: FastifyReply, u: SessionUser, node: string, status: number, sendError: string | null, draft = "") => {
      const c = agentOf(node);
      const state = await agentStatus(c);
      let messages: AgentMessage[] = [];
      let error = state.error;
      if (!error) {
        try {
          messages = await c.messages();
        } catch (err) {
          error = (err as Error).message;
        }
      }
      return page(reply, status, "agent", `Agent ${node}`, layoutUser(reply, u), {
        node,
        status: state.status,
        running: state.status === "running",
        error,
        messages: messages.slice(-200).map((m) => ({ ...m, who: m.role === "agent" ? "agent" : "you", timeText: utcText(m.time) })),
        older: Math.max(messages.length - 200, 0),
        canSend: u.scope === "operator",
        csrf: reply.generateCsrf(),
        sendError,
        draft,
      });
    };

    web.get("/agents/:node", async (req, reply) => {
      const u = signedIn(req, reply);
      if (!u) return reply;
      return agentPage(reply, u, (req.params as { node: string }).node, 200, null);
    });

    web.get("/events/agents/:node", async (req, reply) => {
      // Signed in first: which nodes run an agent is not told to strangers (404 vs 401).
      if (!userOf(req)) throw new HttpError(401, "sign in first");
      const c = agentOf((req.params as { node: string }).node);
      return watch(req, reply, "agent", agentPollMs, async () => {
        try {
          const [status, messages] = await Promise.all([c.status(), c.messages()]);
          const last = messages.at(-1);
          return `${status} ${messages.length} ${last?.content.length ?? 0}`;
        } catch (err) {
          return `error ${(err as Error).message}`;
        }
      });
    });

    web.post("/agents/:node/message", { preHandler: web.csrfProtection }, async (req, reply) => {
      const u = operator(req);
      const node = (req.params as { node: string }).node;
      const c = agentOf(node);
      const content = (req.body as Record<string, unknown> | undefined)?.content;
      const text = typeof content === "string" ? content.replace(/\r\n/g, "\n") : "";
      const draft = text.slice(0, 64 * 1024);
      if (text.trim() === "") return agentPage(reply, u, node, 400, "write a message first", draft);
      if (Buffer.byteLength(text) > 64 * 1024) return agentPage(reply, u, node, 400, `the message is ${Buffer.byteLength(text)} bytes; at most 65536 go to an agent at once`, draft);
      try {
        await c.send(text, "user");
      } catch (err) {
        const status = err instanceof AgentApiError && err.status !== null && err.status < 500 ? 409 : 502;
        return agentPage(reply, u, node, status, `${node} did not take the message: ${(err as Error).message}`, draft);
      }
      return reply.redirect(`/agents/${node}`, 303);
    });

    web.post("/agents/:node/interrupt", { preHandler: web.csrfProtection }, async (req, reply) => {
      const u = operator(req);
      const node = (req.params as { node: string }).node;
      try {
        // Escape, as a keystroke: Claude Code stops what it is doing (AgentAPI `type: "raw"`).
        await agentOf(node).send("\u001b", "raw");
      } catch (err) {
        if (err instanceof HttpError) throw err;
        return agentPage(reply, u, node, 502, `could not interrupt ${node}: ${(err as Error).message}`);
      }
      return reply.redirect(`/agents/${node}`, 303);
    });

    web.get("/charts", async (req, reply) => {
      const u = signedIn(req, reply);
      if (!u) return reply;
      const now = Date.now();
      const data = chartData(q.store.activity(now - 86_400_000), nodeNames, now);
      const total = (values: number[]) => values.reduce((a, b) => a + b, 0);
      return page(reply, 200, "charts", "Charts", layoutUser(reply, u), {
        states: data.tasks.series.map((s) => ({ label: s.label, total: total(s.values) })),
        spend: data.spend.series.map((s) => ({ label: s.label, total: money(s.values.at(-1) ?? 0) })),
      });
    });

    web.get("/charts.json", async (req) => {
      if (!userOf(req)) throw new HttpError(401, "sign in first");
      const now = Date.now();
      return chartData(q.store.activity(now - 86_400_000), nodeNames, now);
    });

    // Server-Sent Events: `event: task` with the ids of the tasks that changed (batched), `event: nodes` when
    // presence (see below) or a health report changed.
    web.get("/events", async (req, reply) => {
      // A burst of changes (a worker finishing many tasks) is one event per batch window, naming every task.
      const pending = new Set<number>();
      let flush: NodeJS.Timeout | undefined;
      const res = openStream(req, reply, () => {
        clearTimeout(flush);
        q.changes.off("task", onTask);
        q.changes.off("health", onHealth);
      });
      const onTask = (t: Task) => {
        pending.add(t.id);
        flush ??= setTimeout(() => {
          flush = undefined;
          res.write(`event: task\ndata: ${[...pending].join(" ")}\n\n`);
          pending.clear();
        }, batchMs);
      };
      const onHealth = () => res.write("event: nodes\ndata: \n\n");
      q.changes.on("task", onTask);
      q.changes.on("health", onHealth);
    });
  });

  // Presence has no event of its own (a node goes offline by not calling): while a page listens, compare
  // every node's online flag and status once a second and send `event: nodes` when one changed.
  let lastNodes = "";
  const presenceCheck = setInterval(() => {
    if (streams.size === 0) return;
    const now = JSON.stringify(q.nodes().map((n) => [n.node, n.online, n.status, n.message]));
    if (now === lastNodes) return;
    lastNodes = now;
    for (const res of streams) res.write("event: nodes\ndata: \n\n");
  }, 1000);
  presenceCheck.unref();

  return {
    close: () => {
      clearInterval(presenceCheck);
      for (const res of streams) res.end();
    },
  };
}
