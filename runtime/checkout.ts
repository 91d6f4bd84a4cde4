/**
 * A task's repository checkout in its slot: `<home>/repos/<name>-<hash>`, keyed by the full URL, so two
 * repositories with the same basename never share a checkout (a task for repo B once ran inside repo A,
 * under A's CLAUDE.md), and no URL can name a directory outside `<home>/repos/`.
 *
 * Every git step runs as the slot's identity through the run supervisor (slot.ts), with:
 * - its arguments after `--` (a URL cannot become an option);
 * - `core.hooksPath=/dev/null` and `core.fsmonitor=false` on the command line, which outrank any config file:
 *   no hook and no fsmonitor command runs, whatever an earlier task wrote into the checkout's `.git/`;
 * - `protocol.ext.allow=never` (the `ext::` transport runs a command), `GIT_CONFIG_GLOBAL=/dev/null` (the
 *   slot's `~/.gitconfig` is writable by every task of the slot, so it is not read here; the root-owned
 *   system config is), `GIT_TERMINAL_PROMPT=0` (no prompt waits for a password that never comes).
 * A checkout is reused only when `git remote get-url origin` is the task's URL and its `.git/config` holds
 * nothing but the keys a clone writes (a key such as `remote.origin.uploadpack` or `filter.*.smudge` would
 * run a command on the next pull); otherwise it is removed and cloned afresh. A plain clone runs nothing from
 * the repository: submodules are not cloned, and hooks are never cloned by git.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Runner } from "./slot.js";

/** Seconds a git step may take before it is stopped. */
const GIT_TIMEOUT_SECONDS = 300;

/** Config keys `git clone` and `git pull` write themselves: a checkout holding only these may be reused. */
const CLONE_KEYS = [
  /^core\.(repositoryformatversion|filemode|bare|logallrefupdates|ignorecase|precomposeunicode|symlinks)$/,
  /^remote\.origin\.(url|fetch)$/,
  /^branch\..+\.(remote|merge)$/,
  /^extensions\.objectformat$/,
];

/**
 * The checkout directory name for `url`: the URL's last path segment (without `.git`), reduced to
 * `[A-Za-z0-9._-]`, at most 40 characters, never starting with a dot (`repo` when nothing is left), then `-`
 * and the first 12 hex digits of the URL's SHA-256. Never `.`, `..` or a path.
 */
export function checkoutName(url: string): string {
  const last = url.replace(/[/\\]+$/, "").split(/[/\\:]/).at(-1) ?? "";
  let base = last.replace(/\.git$/, "").replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 40).replace(/^\.+/, "");
  if (!base) base = "repo";
  return `${base}-${createHash("sha256").update(url).digest("hex").slice(0, 12)}`;
}

/** The git argv prefix every step uses (options that outrank the checkout's own config). */
const GIT_SAFE = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "protocol.ext.allow=never"];

/**
 * Clones `url` into `<home>/repos/<checkoutName(url)>`, or updates the checkout there (`pull --ff-only`)
 * when it is a clone of exactly this URL with nothing but clone-written config.
 * @param env the run environment of the slot (PATH, HOME); git's own variables are added here
 * @param log receives one line when an existing checkout is replaced, and why
 * @returns the checkout directory
 * @throws Error `cannot clone <url>: <git's message>` or `cannot update …` (the task fails with it)
 */
export async function checkout(runner: Runner, url: string, home: string, env: Record<string, string>, signal: AbortSignal, log: (line: string) => void): Promise<string> {
  const repos = join(home, "repos");
  const dir = join(repos, checkoutName(url));
  const gitEnv = { ...env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_TERMINAL_PROMPT: "0", GIT_CEILING_DIRECTORIES: repos };
  const git = async (cwd: string, args: string[]) => {
    const r = await runner.run({ command: "git", args: [...GIT_SAFE, ...args], cwd, env: gitEnv }, GIT_TIMEOUT_SECONDS, signal);
    const message = r.startError ?? (r.timedOut ? `git timed out after ${GIT_TIMEOUT_SECONDS} s` : r.stderrTail.trim() || `git exited ${r.exitCode ?? r.signal}`);
    return { ok: r.exitCode === 0, stdout: r.stdout, message };
  };
  // --git-dir keeps git from walking up into the slot home when the checkout is missing.
  const origin = await git(home, ["--git-dir", join(dir, ".git"), "remote", "get-url", "origin"]);
  let reuse = origin.ok && origin.stdout.trim() === url;
  if (origin.ok && !reuse) log(`checkout ${dir} is a clone of ${origin.stdout.trim()}, not ${url}; cloning afresh`);
  if (reuse) {
    const keys = await git(home, ["--git-dir", join(dir, ".git"), "config", "--local", "--name-only", "--list"]);
    const foreign = keys.ok ? keys.stdout.split("\n").filter((k) => k && !CLONE_KEYS.some((re) => re.test(k))) : ["(unreadable)"];
    if (foreign.length) {
      log(`checkout ${dir} has config a clone does not write (${foreign.join(", ")}); cloning afresh`);
      reuse = false;
    }
  }
  if (reuse) {
    const pull = await git(dir, ["pull", "--ff-only", "-q"]);
    if (!pull.ok) throw new Error(`cannot update ${url} in ${dir}: ${pull.message}`);
    return dir;
  }
  const rm = await runner.run({ command: "rm", args: ["-rf", "--", dir], cwd: home, env: gitEnv }, GIT_TIMEOUT_SECONDS, signal);
  if (rm.exitCode !== 0) throw new Error(`cannot clone ${url}: removing the old checkout ${dir} failed: ${rm.startError ?? rm.stderrTail.trim()}`);
  const mk = await runner.run({ command: "mkdir", args: ["-p", "--", repos], cwd: home, env: gitEnv }, GIT_TIMEOUT_SECONDS, signal);
  if (mk.exitCode !== 0) throw new Error(`cannot clone ${url}: cannot create ${repos}: ${mk.startError ?? mk.stderrTail.trim()}`);
  const clone = await git(repos, ["clone", "-q", "--no-recurse-submodules", "--", url, dir]);
  if (!clone.ok) throw new Error(`cannot clone ${url}: ${clone.message}`);
  return dir;
}
