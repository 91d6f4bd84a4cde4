/**
 * The queue's GitHub credentials: one fine-grained token from a file (`--github-token-file`), or a GitHub App
 * (`--github-app-id`, `--github-app-key-file`, `--github-app-installation-id`) whose installation access tokens
 * are minted through `@octokit/auth-app` (`createAppAuth`).
 *
 * **App mode, a task's token.** `POST /v1/tasks/:id/github-token` (runtime/server.ts) mints a fresh installation
 * access token for the task (`POST /app/installations/{installation_id}/access_tokens`, docs.github.com "REST
 * API endpoints for GitHub Apps", with `repositories: [<the task's repository>]` and {@link TASK_PERMISSIONS}),
 * so the worker holds a token that works on that one repository only, for at most an hour (GitHub's lifetime
 * of an installation token). Nothing of it is cached in the queue: each call mints again (auth-app's cache is
 * replaced by one that keeps nothing), so a token lives only in the worker's memory for that run. A worker
 * asks once per run; a run may outlive the token (an hour), and asks again (github.ts, before the push).
 *
 * **App mode, the queue's own requests** (the poller: issue lists, removing the dispatch label) use
 * installation tokens too, also restricted to the one repository asked about with {@link POLLER_PERMISSIONS};
 * auth-app's own cache keeps them until shortly before they expire (its default: 15,000 tokens, LRU).
 *
 * **The installation.** Given (`--github-app-installation-id`: one installation holds every repository), or
 * looked up per repository (`GET /repos/{owner}/{repo}/installation`, authenticated as the App by its JWT) and
 * remembered per repository for the queue's life (an installation id does not change while the App stays
 * installed; a failed mint forgets it, so a reinstall is found again).
 *
 * Errors are one line: what failed, for which repository, the HTTP status and GitHub's message.
 */
import { createPrivateKey } from "node:crypto";
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/rest";
import { UserError } from "../model/errors.js";
import type { GitHubCredentials } from "./api.js";
import { QUIET_LOG } from "./github.js";
import { repoKey, type RepoRef } from "./github-poller.js";

/**
 * Permissions of a task's token: what runtime/github.ts does (read the repository, push a branch, label and
 * comment on the issue, open or update the pull request). Names and levels as in GitHub's "Permissions
 * required for GitHub Apps"; the App must have been granted at least these.
 */
export const TASK_PERMISSIONS = { contents: "write", issues: "write", pull_requests: "write", metadata: "read" } as const;

/** Permissions of the poller's tokens: list issues and pull requests, remove the dispatch label. */
export const POLLER_PERMISSIONS = { issues: "write", pull_requests: "read", metadata: "read" } as const;

/** The App as the queue is started with it. */
export interface GitHubAppOptions {
  /** The App's id (its settings page, "App ID"). */
  appId: number;
  /** The App's private key, PEM (PKCS#1 `BEGIN RSA PRIVATE KEY` as GitHub hands it out, or PKCS#8). */
  privateKey: string;
  /** The installation to mint tokens from; unset: looked up per repository. */
  installationId?: number;
  /** REST base URL, e.g. `https://api.github.com`. */
  apiUrl: string;
}

/** Where the queue's GitHub tokens come from (see the file's docstring). */
export interface GitHubAuth {
  /** `"token"` (one token from a file) or `"app"`. */
  readonly mode: "token" | "app";
  /** REST base URL, without a trailing slash. */
  readonly apiUrl: string;
  /**
   * Credentials for one `github-issue` task on `r`: the file's token, or a fresh installation token restricted
   * to `r` with {@link TASK_PERMISSIONS} and its expiry. Rejects with a one-line Error.
   */
  taskCredentials(r: RepoRef): Promise<GitHubCredentials>;
  /** A token for the queue's own requests on `r` (the poller). Rejects with a one-line Error. */
  queueToken(r: RepoRef): Promise<string>;
}

/** Credentials of the token-file mode: the same token for everything, no expiry known. */
export function tokenAuth(token: string, apiUrl: string): GitHubAuth {
  return {
    mode: "token",
    apiUrl,
    taskCredentials: async () => ({ token, apiUrl, expiresAt: null }),
    queueToken: async () => token,
  };
}

/**
 * Checks an App private key's text: a PEM RSA private key (GitHub Apps sign RS256). Throws {@link UserError}
 * naming `file` otherwise (the key's text is never quoted).
 */
export function checkAppPrivateKey(pem: string, file: string): void {
  let type: string | undefined;
  try {
    type = createPrivateKey(pem).asymmetricKeyType;
  } catch {
    throw new UserError(`GitHub App key file ${file} does not hold a PEM private key: download one from the App's settings ("Private keys", Generate a private key) and write it there whole, BEGIN and END lines included.`);
  }
  if (type !== "rsa") throw new UserError(`GitHub App key file ${file} holds an ${type} key; GitHub Apps sign with RSA (RS256): use the .pem GitHub generated for the App.`);
}

/** One line out of an Octokit or auth-app error: status and GitHub's message. */
function oneLine(err: unknown): string {
  const e = err as { status?: number; message?: string };
  return `${e.status ? `HTTP ${e.status} ` : ""}${(e.message ?? String(err)).split("\n")[0]}`;
}

/** A cache that keeps nothing (auth-app's `cache` option; an empty answer is a miss): every task token is minted fresh. */
const NO_CACHE = { get: async () => "", set: async () => {} };

/** Credentials of the App mode (see the file's docstring). The key is checked by {@link checkAppPrivateKey} first. */
export function appAuth(o: GitHubAppOptions): GitHubAuth {
  const request = new Octokit({ baseUrl: o.apiUrl, userAgent: "fleetkit", log: QUIET_LOG }).request;
  const base = { appId: o.appId, privateKey: o.privateKey, request, log: QUIET_LOG };
  const minting = createAppAuth({ ...base, cache: NO_CACHE });
  const polling = createAppAuth(base);
  const installations = new Map<string, number>();

  const installationOf = async (r: RepoRef): Promise<number> => {
    if (o.installationId !== undefined) return o.installationId;
    const known = installations.get(repoKey(r));
    if (known !== undefined) return known;
    const { token } = await minting({ type: "app" });
    const res = await request("GET /repos/{owner}/{repo}/installation", { owner: r.owner, repo: r.repo, headers: { authorization: `bearer ${token}` } }).catch((err) => {
      throw new Error(`GitHub App ${o.appId}: cannot find its installation on ${r.owner}/${r.repo}: ${oneLine(err)}${(err as { status?: number }).status === 404 ? " (install the App on that repository)" : ""}`);
    });
    installations.set(repoKey(r), res.data.id);
    return res.data.id;
  };

  const mint = async (r: RepoRef, permissions: Record<string, string>, auth: typeof minting, refresh: boolean) => {
    const installationId = await installationOf(r);
    try {
      return await auth({ type: "installation", installationId, repositoryNames: [r.repo], permissions, refresh });
    } catch (err) {
      installations.delete(repoKey(r));
      throw new Error(`GitHub App ${o.appId}: cannot mint an installation token for ${r.owner}/${r.repo} (installation ${installationId}): ${oneLine(err)}`);
    }
  };

  return {
    mode: "app",
    apiUrl: o.apiUrl,
    async taskCredentials(r) {
      const a = await mint(r, TASK_PERMISSIONS, minting, true);
      return { token: a.token, apiUrl: o.apiUrl, expiresAt: a.expiresAt };
    },
    async queueToken(r) {
      return (await mint(r, POLLER_PERMISSIONS, polling, false)).token;
    },
  };
}
