/**
 * The queue server's view of the fleet: the tokens file (`fleet queue serve --tokens FILE`), rendered by the
 * `queue` role from fleet.yaml and kept on the orchestrator as a 0600 file. Also the env file parser for the
 * worker's credentials (secrets come from files, runtime/secret-file.ts, never from a command line).
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { UserError } from "../model/errors.js";
import { readSecretFile } from "./secret-file.js";

const NAME = /^[a-z0-9][a-z0-9-]*$/;

/** What a token can do (DESIGN.md: every token has one scope). See runtime/README.md for the route table. */
export const SCOPES = ["node", "operator", "viewer", "task"] as const;
/**
 * A token's scope: a node's worker and CLI, a person who may do everything, a person who may only read, or a
 * task's own token for one lease (minted by the queue, never in the tokens file: runtime/auth.ts).
 */
export type Scope = (typeof SCOPES)[number];
/** The scopes a person's token can have (fleet.yaml `people:`). */
export const PERSON_SCOPES = ["operator", "viewer"] as const;
/** A person's scope. */
export type PersonScope = (typeof PERSON_SCOPES)[number];

/** SHA-256 of a token as lower-case hex, as the tokens file keeps it (the same as `printf %s "$TOKEN" | sha256sum`). */
export function tokenSha256(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** SHA-256 of a token as lower-case hex (`printf %s "$TOKEN" | sha256sum`): the tokens file never holds a token in clear. */
export const tokenSha256Schema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, "expected the token's SHA-256 as 64 lower-case hex digits (printf %s \"$TOKEN\" | sha256sum)");
/** A token in clear where only its hash belongs: refused with how to fix it. */
const noClearToken = z
  .never({ error: "the tokens file keeps only a token's SHA-256 (tokenSha256), never the token; replace token with tokenSha256" })
  .optional();

/** One node as the queue knows it: its token's hash and the facts tasks can require (fleet.yaml's node). */
export const TokensNodeSchema = z
  .object({
    /** SHA-256 of the bearer token of this node's worker and CLI (the token is minted by the stack, a Pulumi secret). */
    token: noClearToken,
    tokenSha256: tokenSha256Schema,
    /** fleet.yaml `os` (macos, debian, raspios, arch, windows-wsl); matched by a task's `os` tag. */
    os: z.string().min(1),
    /** fleet.yaml `arch` (x86_64, aarch64); matched by a task's `arch` tag. */
    arch: z.string().min(1),
    /** fleet.yaml `tags` (free labels); a task's other tags must all match. */
    tags: z.record(z.string(), z.string()).default({}),
    /** fleet.yaml `budgetUsdPerSession` in USD: the per-task cap and the node's daily cap; absent = no cap. */
    budgetUsdPerSession: z.number().positive().nullable().optional(),
    /** fleet.yaml `profile` (shown on the dashboard); null or absent = none. */
    profile: z.string().min(1).nullable().optional(),
    /** The node's roles (profile ∪ node roles, model/fleet.ts `FleetNode.roles`), shown on the dashboard. */
    roles: z.array(z.string().min(1)).default([]),
    /**
     * Base URL the queue node reaches the node's AgentAPI at (`http://<host>:3284`, roles/agentapi/render.ts
     * `agentapiUrl`); the dashboard's agent panel proxies to it. Null or absent = the node runs no AgentAPI.
     */
    agentapi: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }).nullable().optional(),
  })
  .strict();

/** One person (fleet.yaml `people:`): their token's hash and scope. */
export const TokensPersonSchema = z
  .object({
    /** `operator`: everything a node token can do on every task, and no worker routes; `viewer`: read only. */
    scope: z.enum(PERSON_SCOPES),
    token: noClearToken,
    /** SHA-256 of the person's token (minted by the stack, `pulumi stack output --show-secrets peopleTokens`). */
    tokenSha256: tokenSha256Schema,
  })
  .strict();

/** ntfy settings the workers publish to (fleet.yaml `services.ntfy` plus the access token, `tk_…`). */
export const NtfySchema = z
  .object({
    /** Base URL of the ntfy server, e.g. `http://arch-orchestrator:8091`. */
    url: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }),
    /** Topic to publish to, e.g. `fleet-tasks`. */
    topic: z.string().regex(/^[-_A-Za-z0-9]{1,64}$/, "an ntfy topic is 1-64 letters, digits, - or _"),
    /** Access token sent as `Authorization: Bearer`; null when the server allows anonymous publish. */
    token: z.string().min(1).nullable().optional(),
  })
  .strict();

/**
 * The tokens file: JSON `{ "nodes": { "<node>": TokensNode }, "people": { "<person>": TokensPerson },
 * "ntfy": Ntfy | null, "publicUrl"?: string, "retentionDays"?: number }`. `retentionDays`: how long finished tasks are
 * kept (default 30, 0 = forever). `publicUrl` is the queue's URL as users reach it (used for
 * ntfy click links); default: the listen address. Every token hash appears once (one token, one scope), and
 * a person's name is never a node's (a task's `submittedBy` names one of them).
 */
export const TokensFileSchema = z
  .object({
    nodes: z
      .record(z.string(), TokensNodeSchema)
      .refine((n) => Object.keys(n).length > 0, "at least one node is required"),
    people: z.record(z.string(), TokensPersonSchema).default({}),
    ntfy: NtfySchema.nullable().default(null),
    publicUrl: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }).optional(),
    /** Days a completed, failed or cancelled task is kept before the queue purges it (0 keeps every task; default 30). */
    retentionDays: z.number().int("a whole number of days").min(0, "0 (keep every task) or more days").max(36500, "at most 36500 days").optional(),
  })
  .strict()
  .superRefine((file, ctx) => {
    const seen = new Map<string, string>();
    const holders: Array<["nodes" | "people", string, { tokenSha256: string }]> = [
      ...Object.entries(file.nodes).map(([n, v]) => ["nodes", n, v] as ["nodes", string, typeof v]),
      ...Object.entries(file.people).map(([n, v]) => ["people", n, v] as ["people", string, typeof v]),
    ];
    for (const [kind, name, holder] of holders) {
      const what = kind === "nodes" ? "node" : "person";
      if (!NAME.test(name)) ctx.addIssue({ code: "custom", path: [kind, name], message: `${what} names are lowercase letters, digits and - (as in fleet.yaml)` });
      if (kind === "people" && Object.hasOwn(file.nodes, name)) ctx.addIssue({ code: "custom", path: [kind, name], message: `a node has the same name; a person and a node need different names` });
      const other = seen.get(holder.tokenSha256);
      if (other) ctx.addIssue({ code: "custom", path: [kind, name, "tokenSha256"], message: `the same token as ${other}; every token has one scope, so each needs its own` });
      seen.set(holder.tokenSha256, `${what} "${name}"`);
    }
  });

/** A parsed, validated tokens file. */
export type TokensFile = z.infer<typeof TokensFileSchema>;
/** One node of a tokens file. */
export type TokensNode = z.infer<typeof TokensNodeSchema>;
/** One person of a tokens file. */
export type TokensPerson = z.infer<typeof TokensPersonSchema>;
/** ntfy settings of a tokens file. */
export type NtfySettings = z.infer<typeof NtfySchema>;

const SHAPE = '{ "nodes": { "<node>": { "tokenSha256", "os", "arch", "tags", "budgetUsdPerSession" } }, "people": { "<person>": { "scope", "tokenSha256" } }, "ntfy": { "url", "topic", "token" } | null }';

/** Formats a zod issue path as `nodes.pi.token`. */
export function issuePath(path: readonly PropertyKey[]): string {
  return path.length ? path.map(String).join(".") : "(top level)";
}

/**
 * Parses tokens-file text. Throws {@link UserError} (exit 2) naming the file, the field and a fix; the error
 * never echoes a token value.
 */
export function parseTokensFile(text: string, file: string): TokensFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file}: not valid JSON (${(err as Error).message}). The tokens file is JSON of the shape ${SHAPE}; re-render it with the queue role or fix it by hand.`);
  }
  const parsed = TokensFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const extra = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problem(s))` : "";
    throw new UserError(`${file}: field ${issuePath(issue.path)}: ${issue.message}${extra}. The tokens file is JSON of the shape ${SHAPE}; fix that field and restart the queue server.`);
  }
  return parsed.data;
}

/** Reads and parses a tokens file; a missing or unreadable file is a {@link UserError}. */
export function loadTokensFile(file: string): TokensFile {
  return parseTokensFile(readSecretFile(file, "tokens file"), file);
}

/**
 * Parses an env file of `KEY=VALUE` lines (blank lines and `#` comments skipped, optional `export `, values
 * optionally in single or double quotes). Used for the node's Claude credentials (ANTHROPIC_API_KEY or
 * CLAUDE_CODE_OAUTH_TOKEN). Throws {@link UserError} naming the line of a malformed entry.
 */
export function parseEnvFile(text: string, file: string): Record<string, string> {
  // A Map, then own properties: a line `__proto__=…` is a variable like any other, not the object's prototype.
  const env = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith("#")) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(trimmed);
    if (!m) throw new UserError(`${file}:${i + 1}: expected KEY=VALUE (e.g. ANTHROPIC_API_KEY=sk-ant-…); fix or remove that line.`);
    let value = m[2]!;
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!)) value = value.slice(1, -1);
    env.set(m[1]!, value);
  });
  return Object.fromEntries(env);
}
