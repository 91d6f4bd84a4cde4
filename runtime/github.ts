/**
 * Kind `github-issue`: a worker turns one GitHub issue into a pull request. The steps, each through the REST
 * API (@octokit/rest with the retry and throttling plugins) or the `git` binary as the slot's identity:
 *
 * 1. `GET /repos/{owner}/{repo}` (default branch, clone URL) and `GET …/issues/{n}`: an unknown repository or
 *    issue, a pull request number or a closed issue fails the task here, before anything is written.
 * 2. Label the issue `fleet:<node>` (the claim is the fact) and read its comments.
 * 3. Clone (or fetch, reusing the slot's checkout) and check out `fleet/<node>/issue-<n>`: from the branch as
 *    an earlier attempt pushed it, else from the base (default: the repository's default branch).
 * 4. Run Claude (the worker's executor) with the issue, its comments, the task's prompt and the repository's
 *    AGENTS.md (Claude Code reads CLAUDE.md itself).
 * 5. Commit what Claude left uncommitted, push the branch (never forced, never the base), open the pull
 *    request ("Closes #n", task id, model, cost) or update the open one from that branch, label it
 *    `fleet:pull-request`, and remove the claim label.
 *
 * On failure, timeout, budget stop or cancel after the claim label: a comment on the issue with the task id,
 * what failed and the run's last lines; the label stays. A shutdown or a lost lease comments nothing (the task
 * goes back to the queue and another attempt follows).
 *
 * **The token.** The queue hands it to the lease holder (`POST /v1/tasks/:id/github-token`: its token file's, or
 * an App installation token for this repository alone, with its expiry, asked for again before the push when it
 * expires within {@link TOKEN_MARGIN_SECONDS}); it lives in this run's memory, goes to Octokit, and reaches git only as the variable `FLEET_GIT_TOKEN` of the clone, fetch
 * and push steps, read by a credential helper given on git's command line ({@link GIT_CREDENTIAL_HELPER}:
 * the helper's text names the variable, never the value). Claude's environment never holds it, no URL holds
 * it, and no log line, report or pull request text does.
 */
import { Octokit } from "@octokit/rest";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { clipUtf8, defaultIssuePrompt, isRepoUrl, UNCLAIMED_PREFIX, type GitHubCredentials, type GitHubIssue, type Task } from "./api.js";
import type { ExecResult, StopReason } from "./executors.js";
import type { Model } from "./model-choice.js";
import type { Runner } from "./slot.js";

/** Seconds a git step may take before it is stopped. */
const GIT_TIMEOUT_SECONDS = 300;
/** Largest prompt handed to Claude, in bytes (one argv string may be at most 128 KiB on Linux, MAX_ARG_STRLEN). */
const MAX_CLAUDE_PROMPT_BYTES = 100 * 1024;
/** Credentials expiring sooner than this are asked for again before the push (seconds). */
export const TOKEN_MARGIN_SECONDS = 300;
/** Label of a pull request a fleet worker opened. */
export const PULL_REQUEST_LABEL = "fleet:pull-request";

/** The label a claim puts on the issue: `fleet:<node>`. */
export const claimLabel = (node: string): string => `fleet:${node}`;
/** The branch a node works an issue on: `fleet/<node>/issue-<n>`. */
export const issueBranch = (node: string, issue: number): string => `fleet/${node}/issue-${issue}`;

/**
 * The credential helper git runs for the token (gitcredentials(7): a `!` helper is a shell snippet, called with
 * `get` and the request as `key=value` lines on stdin, answering `key=value` lines). It prints the value of
 * `FLEET_GIT_TOKEN` from its environment, so the token is never in an argv, a URL or a config file, and only
 * when the request's protocol and host are the clone URL's (`FLEET_GIT_PROTOCOL`, `FLEET_GIT_HOST`): a
 * rewritten remote (`url.*.insteadOf` planted in the checkout's config) gets nothing. `x-access-token` is the
 * user name GitHub documents for installation and fine-grained tokens over HTTPS.
 */
export const GIT_CREDENTIAL_HELPER =
  `!f() { test "$1" = get || return 0; p=; h=; while IFS= read -r l && test -n "$l"; do case $l in protocol=*) p=\${l#protocol=};; host=*) h=\${l#host=};; esac; done; ` +
  `test "$p" = "$FLEET_GIT_PROTOCOL" && test "$h" = "$FLEET_GIT_HOST" && printf 'username=x-access-token\\npassword=%s\\n' "$FLEET_GIT_TOKEN"; }; f`;

/** Octokit with GitHub's recommended retry and throttling behaviour (secondary rate limits, Retry-After). */
const FleetOctokit = Octokit.plugin(retry, throttling);

/** Octokit's and auth-app's `log` option that logs nothing: a request log could carry an issue's text or a token. */
export const QUIET_LOG = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * An Octokit client for `creds` (REST base URL and token). Rate limits: a primary or secondary limit is
 * waited out and retried twice (the throttling plugin reads `Retry-After` / `x-ratelimit-reset`); 5xx and
 * network errors are retried by the retry plugin. Logs nothing (a request log could carry the issue's text).
 */
export function githubClient(creds: GitHubCredentials, signal?: AbortSignal): InstanceType<typeof FleetOctokit> {
  return new FleetOctokit({
    auth: creds.token,
    baseUrl: creds.apiUrl,
    userAgent: "fleetkit",
    log: QUIET_LOG,
    request: { signal },
    throttle: {
      onRateLimit: (_after: number, _opts: unknown, _o: unknown, retryCount: number) => retryCount < 2,
      onSecondaryRateLimit: (_after: number, _opts: unknown, _o: unknown, retryCount: number) => retryCount < 2,
    },
  });
}

/** The issue, comments and repository facts a prompt is built from. */
export interface IssuePromptInput {
  owner: string;
  repo: string;
  number: number;
  title: string;
  body: string | null;
  comments: Array<{ user: string; body: string }>;
  /** The task's own prompt (extra instructions), if any beyond the default. */
  extra: string | null;
  /** The repository's AGENTS.md at the starting commit, if it has one. */
  agentsMd: string | null;
  branch: string;
  base: string;
}

/**
 * The prompt Claude gets for an issue: what to do and where, the repository's AGENTS.md, the issue and its
 * comments (quoted as the issue's authors' words, not as instructions to follow blindly), the task's extra
 * instructions, and the rules of the run (commit on the branch; the worker pushes). Cut to
 * {@link MAX_CLAUDE_PROMPT_BYTES} with a note.
 */
export function issuePrompt(i: IssuePromptInput): string {
  const parts = [
    `You are working on GitHub issue ${i.owner}/${i.repo}#${i.number} in a checkout of that repository, on the branch ${i.branch} (started from ${i.base}).`,
    `Make the change the issue asks for, with tests where the project has them. Commit your work on this branch (or leave it uncommitted: it is committed for you). Do not push and do not switch branches: fleetkit pushes the branch and opens the pull request for review.`,
  ];
  if (i.agentsMd) parts.push(`The repository's AGENTS.md says:\n\n${i.agentsMd.trim()}`);
  parts.push(`Issue #${i.number}: ${i.title}\n\n${(i.body ?? "").trim() || "(no description)"}`);
  i.comments.forEach((c, k) => parts.push(`Comment ${k + 1} by @${c.user}:\n\n${c.body.trim()}`));
  if (i.extra) parts.push(`Instructions from the person who dispatched this task:\n\n${i.extra.trim()}`);
  return clipUtf8(parts.join("\n\n---\n\n"), MAX_CLAUDE_PROMPT_BYTES);
}

/** The last `n` non-empty lines of `text`. */
export function lastLines(text: string, n = 20): string {
  return text.split("\n").filter((l) => l.trim()).slice(-n).join("\n");
}

/** True for a clone URL the worker uses: an `https://` git URL, or any URL on the API's own origin (GitHub Enterprise, tests). */
export function usableCloneUrl(cloneUrl: string, apiUrl: string): boolean {
  try {
    if (isRepoUrl(cloneUrl)) return true;
    const u = new URL(cloneUrl);
    return (u.protocol === "http:" || u.protocol === "https:") && u.origin === new URL(apiUrl).origin && !u.username && !u.password;
  } catch {
    return false;
  }
}

/** What {@link runGitHubIssue} needs from the worker for one run. */
export interface GitHubRunContext {
  task: Task & { github: GitHubIssue };
  node: string;
  model: Model;
  creds: GitHubCredentials;
  /**
   * Asks the queue for the task's credentials again (under the same lease). Called before the push (and a
   * failure comment) when `creds.expiresAt` is less than {@link TOKEN_MARGIN_SECONDS} away: an App's
   * installation token lasts an hour, a run may last longer.
   */
  refreshCreds?: () => Promise<GitHubCredentials>;
  runner: Runner;
  /** The slot's home (checkouts go to `<home>/repos/`). */
  home: string;
  /** The run environment (no token in it). */
  env: Record<string, string>;
  signal: AbortSignal;
  log: (line: string) => void;
  /** Runs Claude (the worker's executor) with `prompt` in `cwd`. */
  runClaude: (prompt: string, cwd: string) => Promise<ExecResult>;
}

/** A step that failed, with what the issue comment should say. */
class StepError extends Error {
  constructor(
    message: string,
    /** The run's last output lines, if any. */
    readonly output: string | null = null,
    readonly run: ExecResult | null = null,
  ) {
    super(message);
  }
}

/**
 * Runs a `github-issue` task (see the file's docstring). Never throws: every failure is a failed
 * {@link ExecResult} whose error says which step failed and why in one line, then the run's last lines.
 * Result on success: `pull request <html_url> (created|updated)`, a blank line, Claude's answer.
 */
export async function runGitHubIssue(ctx: GitHubRunContext): Promise<ExecResult> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const { owner, repo, issue: number } = ctx.task.github;
  const ref = `${owner}/${repo}#${number}`;
  let creds = ctx.creds;
  let gh = githubClient(creds, ctx.signal);
  /** Swaps in fresh credentials when the current ones expire within TOKEN_MARGIN_SECONDS. */
  const fresh = async () => {
    if (!ctx.refreshCreds || creds.expiresAt === null || Date.parse(creds.expiresAt) - Date.now() > TOKEN_MARGIN_SECONDS * 1000) return;
    creds = await ctx.refreshCreds().catch((err: Error) => {
      throw new StepError(`cannot get a fresh GitHub token from the queue: ${err.message.split("\n")[0]}`);
    });
    gh = githubClient(creds, ctx.signal);
  };
  const o = { owner, repo };
  const label = claimLabel(ctx.node);
  const branch = issueBranch(ctx.node, number);
  let labelled = false;
  let run: ExecResult | null = null;
  const apiError = (what: string) => (err: unknown): never => {
    const e = err as { status?: number; message?: string };
    throw new StepError(`${what}: ${e.status ? `HTTP ${e.status} ` : ""}${(e.message ?? String(err)).split("\n")[0]}`);
  };
  try {
    const repoData = (await gh.rest.repos.get(o).catch(apiError(`cannot read repository ${owner}/${repo}`))).data;
    const issue = (await gh.rest.issues.get({ ...o, issue_number: number }).catch(apiError(`cannot read issue ${ref}`))).data;
    if (issue.pull_request) throw new StepError(`${ref} is a pull request, not an issue`);
    if (issue.state !== "open") throw new StepError(`issue ${ref} is ${issue.state}; only open issues are worked on`);
    if (!usableCloneUrl(repoData.clone_url, ctx.creds.apiUrl)) throw new StepError(`repository ${owner}/${repo} has a clone URL fleetkit does not use: ${JSON.stringify(repoData.clone_url.slice(0, 200))}`);
    const base = ctx.task.github.base ?? repoData.default_branch;

    await gh.rest.issues.addLabels({ ...o, issue_number: number, labels: [label] }).catch(apiError(`cannot label issue ${ref} ${label}`));
    labelled = true;
    const comments = await gh.paginate(gh.rest.issues.listComments, { ...o, issue_number: number, per_page: 100 }).catch(apiError(`cannot read the comments of ${ref}`));

    const git = gitSteps(ctx, repoData.clone_url, () => creds.token);
    const dir = await git.checkout(base, branch);
    const startSha = (await git.run(dir, ["rev-parse", "HEAD"], "read HEAD")).trim();
    const agents = await git.run(dir, ["show", "HEAD:AGENTS.md"], "read AGENTS.md", true);

    const prompt = issuePrompt({
      owner,
      repo,
      number,
      title: issue.title,
      body: issue.body ?? null,
      comments: comments.map((c) => ({ user: c.user?.login ?? "ghost", body: c.body ?? "" })),
      extra: ctx.task.prompt === defaultIssuePrompt(ctx.task.github) ? null : ctx.task.prompt,
      agentsMd: agents,
      branch,
      base,
    });
    run = await ctx.runClaude(prompt, dir);
    if (run.outcome !== "completed" || ctx.signal.aborted) {
      const why = ctx.signal.aborted ? stopText(ctx.signal.reason as StopReason, ctx.task.timeoutSeconds) : (run.error ?? "Claude failed");
      throw new StepError(`Claude's run failed: ${why.split("\n")[0]}`, lastLines([run.error ?? "", run.result ?? ""].join("\n")), run);
    }
    if ((await git.run(dir, ["status", "--porcelain"], "read the work tree")).trim()) {
      await git.run(dir, ["add", "-A"], "stage the changes");
      await git.run(dir, ["commit", "-q", "-m", `${issue.title} (#${number})\n\nfleet task ${ctx.task.id} on ${ctx.node}, model ${ctx.model}.`], "commit the changes");
    }
    if ((await git.run(dir, ["rev-list", "--count", `${startSha}..HEAD`], "count the new commits")).trim() === "0") {
      throw new StepError("Claude's run changed nothing in the repository; no pull request was opened", lastLines(run.result ?? ""), run);
    }
    await fresh();
    await git.ownConfig();
    await git.run(dir, ["push", "-q", "origin", `HEAD:refs/heads/${branch}`], `push ${branch}`, false, true);

    const cost = run.costUsd === null ? "unknown" : `$${run.costUsd.toFixed(4)}`;
    const title = `${issue.title} (#${number})`;
    const body = clipUtf8(
      `Closes #${number}\n\nOpened by fleetkit: task ${ctx.task.id} on node ${ctx.node}, model ${ctx.model}, cost ${cost}.\n\n${(run.result ?? "").trim()}`,
      60_000,
    );
    const open = (await gh.rest.pulls.list({ ...o, head: `${owner}:${branch}`, state: "open" }).catch(apiError(`cannot list the pull requests of ${owner}/${repo}`))).data[0];
    const pr = open
      ? (await gh.rest.pulls.update({ ...o, pull_number: open.number, title, body }).catch(apiError(`cannot update pull request #${open.number}`))).data
      : (await gh.rest.pulls.create({ ...o, head: branch, base, title, body, draft: ctx.task.github.draft }).catch(apiError(`cannot open a pull request from ${branch}`))).data;
    await gh.rest.issues.addLabels({ ...o, issue_number: pr.number, labels: [PULL_REQUEST_LABEL] }).catch(apiError(`cannot label pull request #${pr.number}`));
    await gh.rest.issues.removeLabel({ ...o, issue_number: number, name: label }).catch((err: { status?: number }) => {
      if (err.status !== 404) return apiError(`cannot remove the label ${label} from ${ref}`)(err);
    });
    ctx.log(`${ref}: pull request #${pr.number} ${open ? "updated" : "opened"} from ${branch}`);
    return { ...run, outcome: "completed", error: null, durationSeconds: seconds(), result: `pull request ${pr.html_url} (${open ? "updated" : "created"})\n\n${run.result ?? ""}` };
  } catch (err) {
    const e = err instanceof StepError ? err : new StepError((err as Error).message);
    const reason = ctx.signal.aborted ? (ctx.signal.reason as StopReason) : null;
    if (labelled && reason !== "shutdown" && reason !== "lease-lost") {
      await fresh().catch((f: Error) => ctx.log(`${ref}: ${f.message}`));
      const text = `fleetkit task ${ctx.task.id} on node ${ctx.node} failed: ${e.message}${e.output ? `\n\nLast lines of output:\n\n\`\`\`\n${e.output.replaceAll("```", "`\u200b``")}\n\`\`\`` : ""}\n\nThe label ${label} stays until someone looks; resubmit with \`fleet task github ${ref}\`.`;
      await gh.rest.issues.createComment({ ...o, issue_number: number, body: clipUtf8(text, 60_000) }).catch((c: Error) => ctx.log(`${ref}: cannot comment on the failure: ${c.message.split("\n")[0]}`));
    }
    const r = e.run ?? run;
    const message = labelled ? e.message : UNCLAIMED_PREFIX + e.message;
    return { outcome: "failed", result: r?.result ?? null, error: e.output ? `${message}\n${e.output}` : message, exitCode: r?.exitCode ?? null, durationSeconds: seconds(), costUsd: r?.costUsd ?? null };
  }
}

function stopText(reason: StopReason, timeoutSeconds: number): string {
  return reason === "timeout" ? `timed out after ${timeoutSeconds} s` : reason === "cancelled" ? "cancelled while running" : `stopped (${reason})`;
}

/** Git steps on the slot's checkout of `cloneUrl`, as the slot's identity, with the checkout.ts safety options. */
function gitSteps(ctx: GitHubRunContext, cloneUrl: string, token: () => string) {
  const repos = join(ctx.home, "repos");
  const dir = join(repos, `github-${ctx.task.github.owner}-${ctx.task.github.repo}-${createHash("sha256").update(cloneUrl).digest("hex").slice(0, 12)}`);
  const baseEnv = { ...ctx.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_TERMINAL_PROMPT: "0", GIT_CEILING_DIRECTORIES: repos, GIT_AUTHOR_NAME: `fleetkit ${ctx.node}`, GIT_AUTHOR_EMAIL: `fleetkit@${ctx.node}.invalid`, GIT_COMMITTER_NAME: `fleetkit ${ctx.node}`, GIT_COMMITTER_EMAIL: `fleetkit@${ctx.node}.invalid` };
  const safe = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "protocol.ext.allow=never", "-c", "credential.helper=", "-c", `credential.helper=${GIT_CREDENTIAL_HELPER}`];
  const url = new URL(cloneUrl);
  const remoteEnv = { FLEET_GIT_PROTOCOL: url.protocol.replace(/:$/, ""), FLEET_GIT_HOST: url.host };
  /** Runs git; returns stdout, or null when `mayFail` and it failed; throws StepError naming `what` otherwise. */
  async function run(cwd: string, args: string[], what: string, mayFail?: false, withToken?: boolean): Promise<string>;
  async function run(cwd: string, args: string[], what: string, mayFail: true, withToken?: boolean): Promise<string | null>;
  async function run(cwd: string, args: string[], what: string, mayFail = false, withToken = false): Promise<string | null> {
    const env = withToken ? { ...baseEnv, ...remoteEnv, FLEET_GIT_TOKEN: token() } : baseEnv;
    const r = await ctx.runner.run({ command: "git", args: [...safe, ...args], cwd, env }, GIT_TIMEOUT_SECONDS, ctx.signal);
    if (r.exitCode === 0) return r.stdout;
    if (mayFail) return null;
    const said = r.startError ?? (r.timedOut ? `git timed out after ${GIT_TIMEOUT_SECONDS} s` : lastLines(r.stderrTail, 8) || `git exited ${r.exitCode ?? r.signal}`);
    throw new StepError(`cannot ${what}: ${said.split("\n").at(-1)}`, said);
  }
  /**
   * Replaces the checkout's `.git/config` with fleetkit's own (format, origin and its refspec) before a step that
   * holds the token: Claude ran as the same user in that checkout (this task's or an earlier one's) and may have
   * written anything there — `url.*.insteadOf`, `http.proxy` with `http.sslVerify=false`, `include` files,
   * filter drivers — which git would honour on the fetch or push.
   */
  async function ownConfig(): Promise<void> {
    const config = join(dir, ".git", "config");
    const rm = await ctx.runner.run({ command: "rm", args: ["-f", "--", config, `${config}.worktree`], cwd: ctx.home, env: baseEnv }, GIT_TIMEOUT_SECONDS, ctx.signal);
    if (rm.exitCode !== 0) throw new StepError(`cannot reset ${config}: ${rm.startError ?? rm.stderrTail.trim()}`);
    for (const [key, value] of [
      ["core.repositoryformatversion", "0"],
      ["core.bare", "false"],
      ["core.logallrefupdates", "true"],
      ["remote.origin.url", cloneUrl],
      ["remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"],
    ]) {
      await run(ctx.home, ["config", "--file", config, key!, value!], `write ${config}`);
    }
  }
  return {
    run,
    ownConfig,
    /** Clones or fetches, then checks out `branch` from its pushed state or from `base`. Returns the checkout. */
    async checkout(base: string, branch: string): Promise<string> {
      const origin = await run(ctx.home, ["--git-dir", join(dir, ".git"), "remote", "get-url", "origin"], "read origin", true);
      if (origin?.trim() === cloneUrl) {
        await ownConfig();
        await run(dir, ["fetch", "-q", "--prune", "origin"], `fetch ${cloneUrl}`, false, true);
      } else {
        const rm = await ctx.runner.run({ command: "rm", args: ["-rf", "--", dir], cwd: ctx.home, env: baseEnv }, GIT_TIMEOUT_SECONDS, ctx.signal);
        if (rm.exitCode !== 0) throw new StepError(`cannot remove the old checkout ${dir}: ${rm.startError ?? rm.stderrTail.trim()}`);
        const mk = await ctx.runner.run({ command: "mkdir", args: ["-p", "--", repos], cwd: ctx.home, env: baseEnv }, GIT_TIMEOUT_SECONDS, ctx.signal);
        if (mk.exitCode !== 0) throw new StepError(`cannot create ${repos}: ${mk.startError ?? mk.stderrTail.trim()}`);
        await run(repos, ["clone", "-q", "--no-recurse-submodules", "--", cloneUrl, dir], `clone ${cloneUrl}`, false, true);
      }
      const pushed = await run(dir, ["rev-parse", "--verify", "-q", `refs/remotes/origin/${branch}`], "look for the branch", true);
      if (pushed === null && (await run(dir, ["rev-parse", "--verify", "-q", `refs/remotes/origin/${base}`], "look for the base", true)) === null) {
        throw new StepError(`the base branch ${base} does not exist in ${ctx.task.github.owner}/${ctx.task.github.repo}`);
      }
      await run(dir, ["checkout", "-q", "-f", "--no-track", "-B", branch, pushed === null ? `origin/${base}` : `origin/${branch}`], `check out ${branch}`);
      await run(dir, ["clean", "-q", "-f", "-d"], "clean the work tree");
      return dir;
    },
  };
}
