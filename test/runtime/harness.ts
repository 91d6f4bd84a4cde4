/**
 * Test harness of the runtime level: real `fleet queue serve` and `fleet worker` processes on 127.0.0.1,
 * started through bin/fleet.mjs exactly as users run them, plus temp dirs and token files. Every process a
 * test starts is killed by {@link stopAll} (call it in afterEach/afterAll).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tokenSha256, type PersonScope, type TokensFile } from "../../runtime/config.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const FLEET_BIN = join(ROOT, "bin/fleet.mjs");
export const FAKE_CLAUDE = join(ROOT, "test/runtime/fixtures/claude");

const live = new Set<ChildProcess>();

/** A fresh temp directory. */
export function tempDir(prefix = "fleet-rt-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Test tokens: `<node>-token-<16 hex>` (deterministic, never a real secret). */
export const tokenOf = (node: string) => `${node}-token-0123456789abcdef`;

/**
 * Writes a 0600 tokens file for the given nodes (and people: name → scope, token {@link tokenOf} the name);
 * it holds each token's SHA-256, as the queue role writes it. Returns its path.
 */
export function writeTokens(
  dir: string,
  nodes: Record<string, Partial<TokensFile["nodes"][string]>>,
  ntfy: TokensFile["ntfy"] = null,
  people: Record<string, PersonScope> = {},
): string {
  const file = join(dir, "tokens.json");
  const full = Object.fromEntries(Object.entries(nodes).map(([n, v]) => [n, { tokenSha256: tokenSha256(tokenOf(n)), os: "debian", arch: "x86_64", tags: {}, ...v }]));
  const persons = Object.fromEntries(Object.entries(people).map(([n, scope]) => [n, { scope, tokenSha256: tokenSha256(tokenOf(n)) }]));
  writeFileSync(file, JSON.stringify({ nodes: full, people: persons, ntfy }, null, 2), { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** Writes a node's 0600 token file; returns its path. */
export function writeTokenFile(dir: string, node: string): string {
  const file = join(dir, `${node}.token`);
  writeFileSync(file, tokenOf(node) + "\n", { mode: 0o600 });
  return file;
}

/** A child process with its collected output. */
export interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

/**
 * Spawns `node bin/fleet.mjs <args>`; output is collected, the process tracked for {@link stopAll}.
 * `openFiles` runs it under `ulimit -n openFiles` (through sh, which then execs node: the same pid).
 */
export function fleet(args: string[], env: NodeJS.ProcessEnv = {}, o: { openFiles?: number } = {}): Proc {
  const [cmd, argv]: [string, string[]] = o.openFiles
    ? ["sh", ["-c", `ulimit -n ${o.openFiles} && exec "$0" "$@"`, process.execPath, FLEET_BIN, ...args]]
    : [process.execPath, [FLEET_BIN, ...args]];
  const child = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let buf = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (buf += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (buf += d));
  const exited = new Promise<number | null>((r) =>
    child.on("exit", (code) => {
      live.delete(child);
      r(code);
    }),
  );
  return { child, out: () => buf, exited };
}

/** Runs a fleet CLI command to completion (bounded by `timeoutSeconds`); returns its exit code and output. */
export async function fleetRun(args: string[], env: NodeJS.ProcessEnv = {}, timeoutSeconds = 60): Promise<{ code: number | null; out: string }> {
  const p = fleet(args, env);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), timeoutSeconds * 1000);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, out: p.out() };
}

/** Polls `fn` every 20 ms until it returns a truthy value or `timeoutSeconds` pass (then throws `what`). */
export async function waitUntil<T>(what: string, fn: () => T | Promise<T>, timeoutSeconds = 30): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutSeconds} s waiting for ${what}`);
    await sleep(20);
  }
}

/** A running queue server process. */
export interface ServerProc extends Proc {
  url: string;
  port: number;
}

/** Starts `fleet queue serve` on 127.0.0.1 (port 0 = a free one) and waits for its listening line. `openFiles`: see {@link fleet}. */
export async function startServer(o: { db: string; tokens: string; port?: number; leaseSeconds?: number; claimWaitSeconds?: number; extra?: string[]; openFiles?: number }): Promise<ServerProc> {
  const args = ["queue", "serve", "--db", o.db, "--listen", `127.0.0.1:${o.port ?? 0}`, "--tokens", o.tokens];
  if (o.leaseSeconds !== undefined) args.push("--lease-seconds", String(o.leaseSeconds));
  if (o.claimWaitSeconds !== undefined) args.push("--claim-wait-seconds", String(o.claimWaitSeconds));
  const p = fleet([...args, ...(o.extra ?? [])], {}, { openFiles: o.openFiles });
  const url = await waitUntil("the queue's listening line", async () => {
    const m = /listening on (http:\/\/[\d.]+:(\d+))/.exec(p.out());
    if (!m && p.child.exitCode !== null) throw new Error(`queue server exited ${p.child.exitCode}: ${p.out()}`);
    return m?.[1];
  });
  return { ...p, url, port: Number(new URL(url).port) };
}

/** Starts `fleet worker` for a node with the stand-in claude (override with `extra`). */
export function startWorker(o: { url: string; dir: string; node: string; extra?: string[]; env?: NodeJS.ProcessEnv }): Proc {
  const tokenFile = writeTokenFile(o.dir, o.node);
  return fleet(["worker", "--queue", o.url, "--token-file", tokenFile, "--node", o.node, "--claude", FAKE_CLAUDE, "--home-root", join(o.dir, "homes"), ...(o.extra ?? [])], o.env);
}

/** Kills (SIGKILL) every process the harness started that is still running, and waits for them. */
export async function stopAll(): Promise<void> {
  const procs = [...live];
  for (const c of procs) c.kill("SIGKILL");
  await Promise.all(procs.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once("exit", r)))));
}

/** Minimal authenticated JSON request to the queue (tests of raw API behaviour). */
export async function api(url: string, method: string, path: string, o: { token?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token !== null) headers.authorization = `Bearer ${o.token ?? tokenOf("alpha")}`;
  let body: string | undefined;
  if (o.rawBody !== undefined) body = o.rawBody;
  else if (o.body !== undefined) body = JSON.stringify(o.body);
  if (body !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
  const res = await fetch(url + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* keep text */
  }
  return { status: res.status, body: parsed };
}
