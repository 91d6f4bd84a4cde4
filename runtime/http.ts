/**
 * The queue server's HTTP layer: fastify configured for hostile clients (body limit, header and request
 * timeouts, a connection cap), one JSON error shape `{ "error": message }` for every refusal, and the
 * helpers routes use to read bodies, ids and queries into one-line 400s that name the field.
 */
import Fastify, { type FastifyInstance } from "fastify";
import type { z } from "zod";
import { quoted } from "./api.js";
import { issuePath } from "./config.js";

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

export function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "request body must be a JSON object");
  }
  const r = schema.safeParse(body, { reportInput: true });
  if (!r.success) throw new HttpError(400, zodMessage(r.error));
  return r.data;
}

/** Task ids are positive integers within JavaScript's exact range (≤ 15 digits). */
export function taskId(raw: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(raw)) throw new HttpError(400, `task id must be a positive integer, got ${quoted(raw)}`);
  return Number(raw);
}

/** One query parameter: undefined, or its single value (given twice is a 400). */
export function queryValue(q: Record<string, unknown>, name: string): string | undefined {
  const v = Object.hasOwn(q, name) ? q[name] : undefined;
  if (Array.isArray(v)) throw new HttpError(400, `query "${name}" is given ${v.length} times; give it once`);
  return v as string | undefined;
}

/**
 * A `tag` query or filter: `name=value` (a task's tag, exact match), as `fleet task` and the dashboard write
 * tags. @throws HttpError 400 without `=` or an empty name.
 */
export function tagFilter(raw: string): [string, string] {
  const i = raw.indexOf("=");
  if (i <= 0) throw new HttpError(400, `query "tag" must be name=value, got ${quoted(raw)}`);
  return [raw.slice(0, i), raw.slice(i + 1)];
}

/** Checks that a query has only the `allowed` parameters. */
export function onlyQuery(q: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(q)) if (!allowed.includes(k)) throw new HttpError(400, `unknown query parameter ${quoted(k)} (allowed: ${allowed.join(", ") || "none"})`);
}

/** A query's number of seconds: digits with an optional fraction (no signs, exponents, hex or spaces). */
export function seconds(raw: string | undefined, name: string, max: number, dflt: number): number {
  if (raw === undefined) return dflt;
  if (!/^[0-9]{1,9}(\.[0-9]{1,9})?$/.test(raw)) throw new HttpError(400, `query "${name}" must be a number of seconds ≥ 0, got ${quoted(raw)}`);
  return Math.min(Number(raw), max);
}

/** Timeouts and limits of {@link queueFastify}; seconds (fractions allowed, for tests). */
export interface HttpLimits {
  /** Whole request headers must arrive within this (default 10 s). */
  headersTimeoutSeconds?: number;
  /** A whole request (headers and body) must arrive within this (default 30 s, at least the headers timeout). */
  requestTimeoutSeconds?: number;
  /** Open connections at most; beyond it new connections are closed on accept (default: from the fd limit). */
  maxConnections: number;
}

/**
 * A fastify instance with the queue's limits, error handler, strict JSON parser and 404 answer; routes and
 * hooks are added by the caller. Errors: an {@link HttpError} is answered as it says; a malformed, empty,
 * too large or wrongly typed body is a 400/413/415 with `Connection: close`; anything else is logged to
 * stderr and answered 500 "internal error".
 */
export function queueFastify(opts: HttpLimits): FastifyInstance {
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
  app.server.maxConnections = opts.maxConnections;

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

  return app;
}
