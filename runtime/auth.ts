/**
 * Who may call the queue: every route but `/healthz` needs `Authorization: Bearer <token>` whose SHA-256 is
 * in the tokens file or among the live task tokens (401 unknown or expired), and a token of a scope the route
 * allows (403): a node's token (its worker and CLI), an operator's (a person: every task), a viewer's (a
 * person: reads only) or a task's (its run: submit children, read and wait for itself and its children, for
 * as long as its lease lasts). Checked in fastify's onRequest hook, before the body is read, so a refused
 * request costs no parsing.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { textProblem, type Task } from "./api.js";
import { tokenSha256, type PersonScope, type Scope, type TokensFile } from "./config.js";
import { HttpError } from "./http.js";
import type { TaskTokenRecord } from "./store.js";

/**
 * Who sent a request: a node (by its token), a person with a scope, or a task's run by its task token (`name`
 * is the node running it, which is also who its children are submitted by; `taskId` the task).
 */
export type Principal = { kind: "node"; name: string } | { kind: "person"; name: string; scope: PersonScope } | { kind: "task"; name: string; taskId: number };

/** A principal whose token is in the tokens file (a node or a person). */
export type FilePrincipal = Exclude<Principal, { kind: "task" }>;

/** The principal's scope. */
const scopeOf = (p: Principal): Scope => (p.kind === "person" ? p.scope : p.kind);
/** How a principal is named in messages: `node alpha's token`, `viewer bob's token`, `task 12's token (on node alpha)`. */
const describe = (p: Principal) => (p.kind === "task" ? `task ${p.taskId}'s token (on node ${p.name})` : `${p.kind === "node" ? "node" : p.scope} ${p.name}'s token`);

/** Scopes a route allows, in its fastify `config.scopes` (absent: {@link ANY}). */
export const ANY: readonly Scope[] = ["node", "operator", "viewer"];
export const CHANGE: readonly Scope[] = ["node", "operator"];
export const WORKER: readonly Scope[] = ["node"];
/** Reading one task (and waiting for it): every scope, a task's token for itself and its children. */
export const READ_TASK: readonly Scope[] = [...ANY, "task"];
/** Submitting a task: nodes and operators, and a task's token (a child task). */
export const SUBMIT: readonly Scope[] = [...CHANGE, "task"];

/** What a task token may do, in its refusals. */
const TASK_TOKEN_MAY = "a task's token may only submit child tasks (POST /v1/tasks) and read or wait for its own task and its children";

/**
 * Why principal `p` may not call `route` (e.g. `GET /v1/tasks`) whose scopes are `allowed`: one line for a 403,
 * or null when it may. Pure (unit-tested, test/runtime/task-token-scopes.test.ts).
 */
export function routeRefusal(p: Principal, route: string, allowed: readonly Scope[]): string | null {
  if (allowed.includes(scopeOf(p))) return null;
  if (p.kind === "task") return `${route}: ${TASK_TOKEN_MAY}; this is ${describe(p)}`;
  const needs = allowed.filter((s) => s !== "task");
  return `${route} needs ${/^[aeiou]/.test(needs[0]!) ? "an" : "a"} ${needs.join(" or ")} token; this is ${describe(p)}${allowed === WORKER ? " (it is a worker's call)" : ""}`;
}

/**
 * Whether `p` may read (and wait on, and with a change scope cancel or re-prioritise) task `t`: a person sees
 * every task; a node the tasks it submitted, runs or that target it; a task's token only its own task and its
 * children (`t.parent`).
 */
export function maySee(p: Principal, t: Pick<Task, "id" | "parent" | "submittedBy" | "target" | "node">): boolean {
  if (p.kind === "person") return true;
  if (p.kind === "task") return t.id === p.taskId || t.parent === p.taskId;
  return t.submittedBy === p.name || t.target === p.name || t.node === p.name;
}

/** The 403 line for `p` reading task `id` that {@link maySee} refuses. */
export function seeRefusal(p: Principal, id: number): string {
  if (p.kind === "task") return `task ${id} is not task ${p.taskId} or one of its children: ${TASK_TOKEN_MAY}`;
  return `task ${id} is not node ${p.name}'s: a node token reads and changes only the tasks its node submitted, runs or that target it`;
}

/** The 401 of a task token whose lease ended: `why` says how (e.g. "the task is completed"). */
export function expiredTaskToken(taskId: number, why: string): HttpError {
  return new HttpError(401, `task ${taskId}'s token expired with its lease (${why}); a task token works only while its task runs`, true);
}

/**
 * The principal of a task token from what the store knows of its SHA-256 (store.ts `taskToken`): undefined
 * for an unknown one; HttpError 401 once its lease ended (the task finished, or its lease expired or was
 * released) or its task was purged.
 */
export function taskPrincipal(record: TaskTokenRecord | undefined): Principal | undefined {
  if (!record) return undefined;
  const t = record.task;
  if (!record.live || !t || !t.node) {
    const why = !t ? "the task was purged" : t.state === "running" ? "its lease ended and the task was leased again" : `the task is ${t.state}`;
    throw expiredTaskToken(record.taskId, why);
  }
  return { kind: "task", name: t.node, taskId: record.taskId };
}

/** Route options that allow only scopes `s` (fastify `config.scopes`, read by {@link installAuth}'s hook). */
export const scopes = (s: readonly Scope[]) => ({ config: { scopes: s } });

/** The principal of a request {@link installAuth} let through. */
export const who = (req: FastifyRequest): Principal => (req as FastifyRequest & { principal: Principal }).principal;

/**
 * The principal a token in clear belongs to, by its SHA-256 in the tokens file (the file holds only hashes),
 * or undefined for an unknown token. Used for `Authorization: Bearer` and the dashboard's sign-in form.
 */
export function principalLookup(tokens: TokensFile): (token: string) => FilePrincipal | undefined {
  // Node and person names are user-named keys: look them up in Maps, never on the plain objects.
  const byTokenHash = new Map<string, FilePrincipal>([
    ...Object.entries(tokens.nodes).map(([name, v]): [string, FilePrincipal] => [v.tokenSha256, { kind: "node", name }]),
    ...Object.entries(tokens.people).map(([name, v]): [string, FilePrincipal] => [v.tokenSha256, { kind: "person", name, scope: v.scope }]),
  ]);
  return (token) => byTokenHash.get(tokenSha256(token));
}

/**
 * Route options of a web page or asset (fastify `config.web`): {@link installAuth} asks it for no bearer
 * token; the dashboard checks its own session cookie instead (runtime/dashboard.ts).
 */
export const WEB = { config: { web: true } } as const;

/**
 * Adds authentication (onRequest: token → principal, route scopes) and text hygiene (preValidation: no
 * field of any body or query holds a NUL byte, a lone surrogate or a reserved key) to `app`. Routes with
 * {@link WEB} options and `/healthz` need no token. `taskTokens` looks a task token up by its SHA-256 (the
 * store's `taskToken`; a token not in the tokens file is looked for there).
 */
export function installAuth(app: FastifyInstance, tokens: TokensFile, taskTokens: (tokenSha256: string) => TaskTokenRecord | undefined = () => undefined): void {
  const lookup = principalLookup(tokens);
  app.decorateRequest("principal", null);
  app.addHook("onRequest", async (req) => {
    if (req.url === "/healthz") return;
    if ((req.routeOptions.config as { web?: boolean }).web === true) return;
    // Authenticated by its own signature (the GitHub webhook: HMAC of the body, checked in the handler).
    if ((req.routeOptions.config as { signed?: boolean }).signed === true) return;
    const h = req.headers.authorization;
    if (!h) throw new HttpError(401, "missing Authorization: Bearer <token>", true);
    // The scheme is case-insensitive (RFC 9110 §11.1); a token is one run of visible ASCII.
    const m = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(h);
    if (!m) throw new HttpError(401, "Authorization header must be \"Bearer <token>\"", true);
    const principal = lookup(m[1]!) ?? taskPrincipal(taskTokens(tokenSha256(m[1]!)));
    if (!principal) throw new HttpError(401, "unknown token", true);
    (req as FastifyRequest & { principal: Principal }).principal = principal;
    const allowed = (req.routeOptions.config as { scopes?: readonly Scope[] }).scopes ?? ANY;
    const refused = routeRefusal(principal, `${req.method} ${req.routeOptions.url}`, allowed);
    if (refused) throw new HttpError(403, refused, true);
  });
  app.addHook("preValidation", async (req) => {
    const problem = textProblem(req.query, "query") ?? (req.body === undefined ? null : textProblem(req.body));
    if (problem) throw new HttpError(400, problem);
  });
}
