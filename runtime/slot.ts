/**
 * How a worker slot starts processes: every run (Claude for a task, each git step of its checkout) goes through
 * the run supervisor `runtime/supervise.sh`, as the slot's identity.
 *
 * - Without `--run-as` the supervisor runs as the worker's own user (the local demo, tests).
 * - With `--run-as USER` it runs as USER through `sudo -n -u USER -- <supervise.sh>`; the worker role installs
 *   the one sudoers rule that allows exactly this (the node user may start the supervisor as its slot users,
 *   nothing else). The daemon itself stays unprivileged: no root daemon parsing queue answers, and a task
 *   cannot read what the node user can (queue token, tokens file, claude.env, the node user's home).
 *   Signals cross the identity boundary through the supervisor's stdin (TERM/KILL lines) instead of kill(2),
 *   which a node user may not send to another user's processes.
 *
 * The supervisor gets its own session (spawn `detached`), so the run's process group is the supervisor's, and
 * the worker's death closes its stdin, which stops the run (supervise.sh documents the protocol).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Absolute path of the run supervisor beside this module (in the repository and in a node's worker runtime).
 * Spelled `../runtime/` so that it names the same file from the compiled CLI (`dist/*.js`, bin/build-cli.mjs).
 */
export const SUPERVISE_SH = fileURLToPath(new URL("../runtime/supervise.sh", import.meta.url));

/** Exit status supervise.sh uses when a run could not be prepared or started (message on stderr). */
const PREPARE_FAILED = 125;
const SUPERVISE_PREFIX = "fleetkit-supervise: ";

/** One run: a command with its arguments, working directory and complete environment. */
export interface RunSpec {
  command: string;
  args: string[];
  /** Working directory (must exist and be enterable by the slot's identity). */
  cwd: string;
  /** The run's whole environment; must include HOME. */
  env: Record<string, string>;
  /** Directory whose settings.json and CLAUDE.md are mirrored into `$HOME/.claude` before the run. */
  renderFrom?: string;
  /**
   * A secret (one line of visible ASCII: a task token) the supervisor writes to `file` (mode 0600, as the run's
   * user) before the run and removes after it. It travels on the supervisor's stdin, never in argv or env.
   */
  secret?: { file: string; value: string };
}

/** How a run ended. */
export interface RunEnd {
  /** The command's exit code, or null when a signal ended it (or it never started). */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Why the run could not be prepared or started (supervise.sh's message, or the spawn error), else null. */
  startError: string | null;
  /** The last 8,000 characters of the run's stderr (the supervisor's own message removed). */
  stderrTail: string;
}

/** A started run. */
export interface RunHandle {
  /** Signals the run's process group through the supervisor: SIGTERM lets it stop, SIGKILL ends it. */
  signal(sig: "SIGTERM" | "SIGKILL"): void;
  /** Resolves once the run ended and its output is read (at most 2 s after the supervisor exited). */
  done: Promise<RunEnd>;
}

/** Options of {@link Runner}. */
export interface RunnerOptions {
  /** The slot's identity (`--run-as`); null runs as the worker's own user. */
  user: string | null;
  /** sudo executable (default `sudo` on PATH). */
  sudo?: string;
}

const tail = (s: string, n: number) => (s.length > n ? s.slice(-n) : s);
const validEnvName = (k: string) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !k.startsWith("fk_sup_");

/**
 * Starts runs for one slot through supervise.sh. Never throws: a run that cannot start resolves
 * {@link RunHandle.done} with `startError`.
 */
export class Runner {
  constructor(private readonly o: RunnerOptions) {}

  /** The slot's identity, or null for the worker's own user. */
  get user(): string | null {
    return this.o.user;
  }

  /**
   * Starts `spec`. `onLine` receives each complete line of the run's stdout (without the newline) as it
   * arrives, and the unterminated rest at the end.
   */
  start(spec: RunSpec, onLine: (line: string) => void = () => {}): RunHandle {
    const flags = [...(this.o.user ? ["--dedicated"] : []), ...(spec.renderFrom ? ["--render-from", spec.renderFrom] : []), ...(spec.secret ? ["--secret-to", spec.secret.file] : [])];
    const argv = [...flags, spec.cwd, spec.command, ...spec.args];
    const bad = argv.find((a) => a.includes("\0"));
    if (bad !== undefined) return failedRun(`cannot run ${spec.command}: an argument contains a NUL byte (U+0000), which no program can receive`);
    if (spec.secret && !/^[\x21-\x7e]{1,512}$/.test(spec.secret.value)) return failedRun(`cannot run ${spec.command}: the secret for ${spec.secret.file} is not one line of visible ASCII`);
    // Under sudo the environment travels on stdin (sudo resets it, and argv is public in ps); one variable a
    // line, so values with a newline or NUL cannot be sent and are left out.
    const lines = this.o.user
      ? Object.entries(spec.env)
          .filter(([k, v]) => validEnvName(k) && !/[\n\0]/.test(v))
          .map(([k, v]) => `${k}=${v}\n`)
          .join("")
      : "";
    // The secret, when there is one, is the first line (supervise.sh --secret-to), before the environment.
    const stdin = (spec.secret ? `${spec.secret.value}\n` : "") + lines;
    let child: ChildProcess;
    try {
      child = this.o.user
        ? spawn(this.o.sudo ?? "sudo", ["-n", "-u", this.o.user, "--", SUPERVISE_SH, ...argv], { stdio: ["pipe", "pipe", "pipe"], detached: true, env: sudoEnv() })
        : spawn("/bin/sh", [SUPERVISE_SH, ...argv], { stdio: ["pipe", "pipe", "pipe"], detached: true, env: spec.env });
    } catch (err) {
      return failedRun(`cannot start the run supervisor for ${spec.command}: ${(err as Error).message}`);
    }
    return supervise(child, stdin, onLine, this.o.user);
  }

  /**
   * Runs `spec` to its end and collects its output (git steps). Stops it (SIGTERM, SIGKILL 5 s later) after
   * `timeoutSeconds` or when `signal` aborts.
   */
  async run(spec: RunSpec, timeoutSeconds: number, signal?: AbortSignal): Promise<RunEnd & { stdout: string; timedOut: boolean }> {
    let stdout = "";
    const h = this.start(spec, (l) => (stdout += l + "\n"));
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      h.signal("SIGTERM");
      killTimer = setTimeout(() => h.signal("SIGKILL"), 5000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, timeoutSeconds * 1000);
    if (signal?.aborted) stop();
    else signal?.addEventListener("abort", stop, { once: true });
    const end = await h.done;
    clearTimeout(timer);
    clearTimeout(killTimer);
    signal?.removeEventListener("abort", stop);
    return { ...end, stdout, timedOut };
  }

  /**
   * With a slot identity: kills every process it still has (runs of a worker that died) and checks that sudo
   * lets this worker start the supervisor as it, and that it is neither root nor the worker's own user.
   * @returns null when fine, else why not (one line, naming the sudoers file to check).
   */
  async reap(): Promise<string | null> {
    if (!this.o.user) return null;
    let child: ChildProcess;
    try {
      child = spawn(this.o.sudo ?? "sudo", ["-n", "-u", this.o.user, "--", SUPERVISE_SH, "--dedicated", "--reap"], { stdio: ["ignore", "pipe", "pipe"], detached: true, env: sudoEnv() });
    } catch (err) {
      return `cannot start sudo: ${(err as Error).message}`;
    }
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
    const code = await new Promise<number | string>((resolve) => {
      child.on("error", (err) => resolve(err.message));
      child.on("close", (c, s) => resolve(c ?? `signal ${s}`));
    });
    if (code === 0 && /^uid=\d+$/m.test(out)) return null;
    const why = out.trim().split("\n").filter(Boolean).map((l) => l.replace(SUPERVISE_PREFIX, "")).join("; ") || `exit ${code}`;
    return `sudo -n -u ${this.o.user} -- ${SUPERVISE_SH} failed: ${why}`;
  }
}

/** sudo's own environment: PATH to find it; sudo builds the run's environment itself (env_reset). */
function sudoEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: process.env.LANG ?? "C" };
}

function failedRun(startError: string): RunHandle {
  return { signal: () => {}, done: Promise.resolve({ exitCode: null, signal: null, startError, stderrTail: "" }) };
}

function supervise(child: ChildProcess, envLines: string, onLine: (line: string) => void, user: string | null): RunHandle {
  let exited = false;
  const send = (line: string) => {
    if (child.stdin!.writable) child.stdin!.write(line);
  };
  child.stdin!.on("error", () => undefined); // EPIPE when the supervisor is gone; its exit says why
  send(`${envLines}\n`);
  let partial = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    const parts = (partial + d).split("\n");
    partial = parts.pop()!;
    for (const l of parts) onLine(l);
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr = tail(stderr + d, 16_000)));
  const done = new Promise<RunEnd>((resolve) => {
    let spawnError: Error | null = null;
    let status: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let drainTimer: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(drainTimer);
      if (partial) onLine(partial);
      partial = "";
      const lines = stderr.split("\n");
      const own = lines.filter((l) => l.startsWith(SUPERVISE_PREFIX)).at(-1);
      const stderrTail = tail(lines.filter((l) => !l.startsWith(SUPERVISE_PREFIX)).join("\n"), 8000);
      if (spawnError) return resolve({ exitCode: null, signal: null, startError: `cannot start ${user ? "sudo" : "/bin/sh"}: ${spawnError.message}`, stderrTail });
      const startError = status?.code === PREPARE_FAILED && own ? own.slice(SUPERVISE_PREFIX.length) : null;
      resolve({ exitCode: startError ? null : (status?.code ?? null), signal: status?.signal ?? null, startError, stderrTail });
    };
    child.on("error", (err) => {
      spawnError = err;
      finish();
    });
    child.on("exit", (code, signal) => {
      exited = true;
      status = { code, signal };
      // The run is over. The end of its stdin (Node closes it on exit anyway) makes the supervisor's watcher
      // end whatever the run left in its group; the watcher closes the run's stderr last, so the slot's next
      // run cannot start before that cleanup (with a slot user, a kill -1). Without a slot user a leftover
      // that escaped the group may hold the pipes open: stop waiting for it after 2 s. With one, the kill -1
      // ends every holder; the 30 s only guard against a wedged node.
      child.stdin!.end();
      drainTimer = setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish();
      }, user ? 30_000 : 2000);
      drainTimer.unref();
    });
    child.on("close", () => {
      if (status) finish();
    });
  });
  return {
    signal: (sig) => {
      if (!exited) send(sig === "SIGKILL" ? "KILL\n" : "TERM\n");
    },
    done,
  };
}
