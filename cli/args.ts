/**
 * Flag values shared by `fleet task`, `fleet queue` and `fleet worker` (seconds, integers, token files, the
 * queue's URL and token); the flags themselves are parsed by ./verb.ts `parseVerb`, as for every verb.
 */
import { UserError } from "../model/errors.js";
import { readSecretFile } from "../runtime/secret-file.js";

/** Parses a non-negative number of seconds (fractions allowed) from flag `name`; undefined stays undefined. */
export function secondsFlag(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) throw new UserError(`--${name} must be a number of seconds ≥ 0 (e.g. 30 or 0.5), got "${value}".`);
  return n;
}

/** Parses a positive integer from flag `name`. */
export function intFlag(value: string | undefined, name: string, min = 1, max = 1_000_000): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UserError(`--${name} must be an integer from ${min} to ${max}, got "${value}".`);
  return n;
}

/** Reads a token from a file (first line, trimmed); the file should be mode 0600. */
export function readToken(file: string): string {
  const token = readSecretFile(file, "token file").split(/\r?\n/)[0]!.trim();
  if (!token) throw new UserError(`token file ${file}: the first line is empty; it must hold the node's queue token.`);
  return token;
}

/**
 * The queue URL and token for CLI use: `--queue` or FLEET_QUEUE_URL, and `--token-file`, FLEET_TOKEN or
 * FLEET_TOKEN_FILE, in that order (never a token flag, so it never shows in `ps`). On a node, the `fleet`
 * command the worker role installs sets FLEET_QUEUE_URL and FLEET_TOKEN_FILE (the node's 0600 token file).
 * @throws UserError (exit 2) without a URL or token; for a token file that cannot be read (e.g. permission
 *   denied: a task's user reading the node's token).
 */
export function queueAccess(flags: { queue?: string; "token-file"?: string }): { url: string; token: string } {
  const url = flags.queue ?? process.env.FLEET_QUEUE_URL;
  if (!url) throw new UserError("no queue URL: pass --queue http://HOST:PORT or set FLEET_QUEUE_URL.");
  if (!/^https?:\/\/[^/]+/.test(url)) throw new UserError(`queue URL "${url}" must start with http:// or https:// (e.g. http://arch-orchestrator:8787).`);
  const file = flags["token-file"] ?? (process.env.FLEET_TOKEN ? undefined : process.env.FLEET_TOKEN_FILE || undefined);
  const token = file ? readToken(file) : process.env.FLEET_TOKEN;
  if (!token) throw new UserError("no queue token: pass --token-file FILE (mode 0600) or set FLEET_TOKEN.");
  return { url, token };
}
