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
import { FINAL_STATES, PRIORITIES, TASK_STATES, type NodePresence, type Task, type TaskState } from "./api.js";
import { principalLookup } from "./auth.js";
import type { TokensFile } from "./config.js";
import { DASHBOARD_CSS, renderPage, type LayoutUser, type PageName } from "./dashboard-views.js";
import { HttpError, taskId } from "./http.js";
import { MODELS } from "./model-choice.js";
import type { Store } from "./store.js";

/** What the dashboard needs from the queue server (runtime/server.ts builds it). */
export interface DashboardQueue {
  tokens: TokensFile;
  store: Store;
  /** Every node's presence and spend today, as `GET /v1/nodes` answers it. */
  nodes: () => NodePresence[];
  /** Submits as `POST /v1/tasks` does (same validation); throws {@link HttpError} 400 with the API's message. */
  submit: (body: unknown, by: string) => Promise<Task>;
  /** Cancels as `POST /v1/tasks/:id/cancel` does; throws {@link HttpError} 404 / 409. */
  cancel: (id: number) => Task;
  /** Re-prioritises as `POST /v1/tasks/:id/priority` does (body `{ priority }`); throws {@link HttpError} 400 / 404 / 409. */
  prioritise: (id: number, body: unknown) => Task;
  /** Emits `"task"` with the {@link Task} after every change of a task (submit, claim, report, cancel, expiry). */
  changes: EventEmitter;
}

/** Options of {@link installDashboard}. */
export interface DashboardOptions {
  /** Sign-in attempts allowed per client address per minute (default 10). */
  loginsPerMinute?: number;
  /** How long a session lasts after sign-in, in seconds (default 12 hours). */
  sessionSeconds?: number;
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
const SUBMIT_FIELDS = ["target", "tags", "prompt", "priority", "model", "timeoutSeconds"] as const;
type SubmitField = (typeof SUBMIT_FIELDS)[number];

/**
 * The form's values as the API's submit body: empty optional fields are left out (the API's defaults
 * apply); `tags` is `name=value` pairs separated by spaces; `timeoutSeconds` a number when it reads as one,
 * else the text itself, so the API's own message names the field.
 * @throws HttpError 400 `field "tags": …` for a pair without `=`.
 */
export function submitBodyOf(form: Record<string, unknown>): Record<string, unknown> {
  const text = (k: string) => (typeof form[k] === "string" ? (form[k] as string) : undefined);
  const body: Record<string, unknown> = { target: text("target") ?? "", prompt: text("prompt") ?? "" };
  for (const k of ["priority", "model"]) if (text(k)) body[k] = text(k);
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
 * Registers the dashboard on `app` (the queue server's fastify, before it listens), in its own context
 * (fastify loads it at `ready`/`listen`).
 * Returns `close()`, which ends every open event stream (call it before `app.close()`).
 */
export function installDashboard(app: FastifyInstance, q: DashboardQueue, opts: DashboardOptions = {}): { close: () => void } {
  const lookup = principalLookup(q.tokens);
  const streams = new Set<FastifyReply["raw"]>();
  const nodeNames = Object.keys(q.tokens.nodes);

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
      root: [packageDir("htmx.org/dist/htmx.min.js"), packageDir("htmx-ext-sse/dist/sse.js")],
      prefix: "/assets/",
      index: false,
      list: false,
      wildcard: false,
      allowedPath: (path) => path === "/htmx.min.js" || path === "/sse.js",
    });
    web.get("/assets/fleet.css", async (_req, reply) => reply.type("text/css; charset=utf-8").send(DASHBOARD_CSS));

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
      if (req.method === "GET") reply.redirect("/login", 303);
      else throw new HttpError(403, "sign in first: this page needs a person's session");
      return null;
    };
    const operator = (req: FastifyRequest): SessionUser => {
      const u = userOf(req);
      if (!u) throw new HttpError(403, "sign in first: this page needs a person's session");
      if (u.scope !== "operator") throw new HttpError(403, `viewer ${u.name} may not change tasks; an operator's token may`);
      return u;
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

    web.get("/login", async (_req, reply) => page(reply, 200, "login", "Sign in", null, {}));

    web.post("/login", { config: { rateLimit: { max: opts.loginsPerMinute ?? 10, timeWindow: 60_000 } } }, async (req, reply) => {
      const token = (req.body as Record<string, unknown> | undefined)?.token;
      const p = typeof token === "string" && /^[\x21-\x7e]{1,512}$/.test(token) ? lookup(token) : undefined;
      const refuse = (error: string) => page(reply, 401, "login", "Sign in", null, { error });
      if (!p) return refuse("unknown token");
      if (p.kind === "node") return refuse("this is a node's token; it works for the API, not here: sign in with a person's token (operator or viewer)");
      // A new session id at sign-in (no fixation); its CSRF secret is new too.
      await req.session.regenerate();
      req.session.set("user", { name: p.name, scope: p.scope });
      req.session.cookie.secure = req.protocol === "https";
      return reply.redirect("/fleet", 303);
    });

    web.post("/logout", { preHandler: web.csrfProtection }, async (req, reply) => {
      await req.session.destroy();
      return reply.redirect("/login", 303);
    });

    web.get("/fleet", async (req, reply) => {
      const u = signedIn(req, reply);
      if (!u) return reply;
      const nodes = q.nodes().map((n) => ({
        ...n,
        cap: n.budgetUsdPerSession,
        spent: Math.min(n.spentTodayUsd, n.budgetUsdPerSession ?? n.spentTodayUsd),
        spentText: n.spentTodayUsd.toFixed(2),
        capText: n.budgetUsdPerSession?.toFixed(2),
      }));
      return page(reply, 200, "fleet", "Fleet", layoutUser(reply, u), { nodes, count: nodes.length, online: nodes.filter((n) => n.online).length });
    });

    web.get("/tasks", async (req, reply) => {
      const u = signedIn(req, reply);
      if (!u) return reply;
      const query = req.query as Record<string, unknown>;
      const pick = (k: string) => (typeof query[k] === "string" && query[k] !== "" ? (query[k] as string) : undefined);
      const state = pick("state");
      const node = pick("node");
      if (state !== undefined && !TASK_STATES.includes(state as TaskState)) throw new HttpError(400, `filter "state" must be one of ${TASK_STATES.join(", ")}`);
      if (node !== undefined && !nodeNames.includes(node)) throw new HttpError(400, `filter "node": unknown node; known nodes: ${nodeNames.join(", ")}`);
      const tasks = q.store.list({ state: state as TaskState | undefined, node, limit: 200 });
      const params = new URLSearchParams();
      if (state) params.set("state", state);
      if (node) params.set("node", node);
      return page(reply, 200, "tasks", "Tasks", layoutUser(reply, u), {
        self: `/tasks${params.size ? `?${params}` : ""}`,
        filtered: params.size > 0,
        count: tasks.length,
        states: TASK_STATES.map((value) => ({ value, selected: value === state })),
        nodeOptions: nodeNames.map((value) => ({ value, selected: value === node })),
        tasks: tasks.map((t) => ({ ...t, modelText: modelText(t), cost: money(t.costUsd), duration: secondsText(t.durationSeconds), promptLine: promptLine(t.prompt) })),
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

    // Server-Sent Events: `event: task` with the task's id on every change, `event: nodes` when presence
    // changed (see below); a comment every 15 s keeps
    // proxies and the browser from timing the stream out.
    web.get("/events", async (req, reply) => {
      if (!userOf(req)) throw new HttpError(401, "sign in first");
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" });
      res.write(": fleet events\n\n");
      const onTask = (t: Task) => res.write(`event: task\ndata: ${t.id}\n\n`);
      const ping = setInterval(() => res.write(": ping\n\n"), 15_000);
      q.changes.on("task", onTask);
      streams.add(res);
      res.on("close", () => {
        clearInterval(ping);
        q.changes.off("task", onTask);
        streams.delete(res);
      });
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
