/**
 * Who may call the queue: every route but `/healthz` needs `Authorization: Bearer <token>` whose SHA-256 is
 * in the tokens file (401 unknown), and a token of a scope the route allows (403): a node's token (its
 * worker and CLI), an operator's (a person: every task) or a viewer's (a person: reads only). Checked in
 * fastify's onRequest hook, before the body is read, so a refused request costs no parsing.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { textProblem } from "./api.js";
import { tokenSha256, type PersonScope, type Scope, type TokensFile } from "./config.js";
import { HttpError } from "./http.js";

/** Who sent a request: a node (by its token) or a person with a scope. */
export type Principal = { kind: "node"; name: string } | { kind: "person"; name: string; scope: PersonScope };

/** The principal's scope. */
const scopeOf = (p: Principal): Scope => (p.kind === "node" ? "node" : p.scope);
/** How a principal is named in messages: `node alpha's token`, `viewer bob's token`. */
const describe = (p: Principal) => `${p.kind === "node" ? "node" : p.scope} ${p.name}'s token`;

/** Scopes a route allows, in its fastify `config.scopes` (absent: every scope). */
export const ANY: readonly Scope[] = ["node", "operator", "viewer"];
export const CHANGE: readonly Scope[] = ["node", "operator"];
export const WORKER: readonly Scope[] = ["node"];

/** Route options that allow only scopes `s` (fastify `config.scopes`, read by {@link installAuth}'s hook). */
export const scopes = (s: readonly Scope[]) => ({ config: { scopes: s } });

/** The principal of a request {@link installAuth} let through. */
export const who = (req: FastifyRequest): Principal => (req as FastifyRequest & { principal: Principal }).principal;

/**
 * The principal a token in clear belongs to, by its SHA-256 in the tokens file (the file holds only hashes),
 * or undefined for an unknown token. Used for `Authorization: Bearer` and the dashboard's sign-in form.
 */
export function principalLookup(tokens: TokensFile): (token: string) => Principal | undefined {
  // Node and person names are user-named keys: look them up in Maps, never on the plain objects.
  const byTokenHash = new Map<string, Principal>([
    ...Object.entries(tokens.nodes).map(([name, v]): [string, Principal] => [v.tokenSha256, { kind: "node", name }]),
    ...Object.entries(tokens.people).map(([name, v]): [string, Principal] => [v.tokenSha256, { kind: "person", name, scope: v.scope }]),
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
 * {@link WEB} options and `/healthz` need no token.
 */
export function installAuth(app: FastifyInstance, tokens: TokensFile): void {
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
    const principal = lookup(m[1]!);
    if (!principal) throw new HttpError(401, "unknown token", true);
    (req as FastifyRequest & { principal: Principal }).principal = principal;
    const allowed = (req.routeOptions.config as { scopes?: readonly Scope[] }).scopes ?? ANY;
    if (!allowed.includes(scopeOf(principal))) {
      const route = `${req.method} ${req.routeOptions.url}`;
      throw new HttpError(403, `${route} needs ${/^[aeiou]/.test(allowed[0]!) ? "an" : "a"} ${allowed.join(" or ")} token; this is ${describe(principal)}${allowed === WORKER ? " (it is a worker's call)" : ""}`, true);
    }
  });
  app.addHook("preValidation", async (req) => {
    const problem = textProblem(req.query, "query") ?? (req.body === undefined ? null : textProblem(req.body));
    if (problem) throw new HttpError(400, problem);
  });
}
