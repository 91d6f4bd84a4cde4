/**
 * `fleet queue serve --db FILE --listen HOST:PORT --tokens FILE [...]`: runs the queue server in the foreground
 * (the `queue` role's service runs exactly this). Prints one line `fleet queue: listening on http://…` when
 * ready; SIGTERM or SIGINT closes it cleanly (exit 0).
 */
import { UserError } from "../model/errors.js";
import { parseRepoRef } from "../runtime/api.js";
import { loadTokensFile } from "../runtime/config.js";
import { appAuth, checkAppPrivateKey, tokenAuth, type GitHubAuth } from "../runtime/github-app.js";
import { readSecretFile } from "../runtime/secret-file.js";
import { createQueueServer } from "../runtime/server.js";
import { secondsFlag } from "./args.js";
import { parseVerb } from "./verb.js";

const USAGE = `usage: fleet queue serve --db FILE --listen HOST:PORT --tokens FILE
       [--lease-seconds S] [--claim-wait-seconds S] [--presence-seconds S] [--synchronous normal|full] [--public-url URL]
       [--github-token-file FILE | --github-app-id N --github-app-key-file FILE [--github-app-installation-id N]]
       [--github-api-url URL] [--github-webhook-secret-file FILE]
       [--github-poll-repo OWNER/REPO]... [--github-poll-seconds S] [--github-dispatch-label L]

  --db                  SQLite database file (created if missing; WAL mode)
  --listen              address to bind, e.g. arch-orchestrator:8787 or 127.0.0.1:0 (0 = any free port)
  --tokens              tokens file (JSON, mode 0600): { "nodes": { "<node>": { "token", "os", "arch", "tags",
                        "budgetUsdPerSession" } }, "ntfy": { "url", "topic", "token" } | null }
  --lease-seconds       lease length; workers heartbeat every third of it (default 30)
  --claim-wait-seconds  longest long-poll of a claim (default 30)
  --presence-seconds    a node not heard from for this long (and not long-polling) is offline (default 60)
  --synchronous         SQLite durability: normal (default) keeps acknowledged tasks through a crash of the
                        queue process; full also through power loss, at several times the cost per write
  --public-url          base URL of links to tasks in notifications (default: the tokens file's publicUrl)
  --logins-per-minute   dashboard sign-in attempts allowed per client address per minute (default 10)
  --github-token-file   file (mode 0600) holding the GitHub token for github-issue tasks (one line); the queue
                        hands it to the worker holding such a task's lease, for that run only
  --github-app-id       instead of a token file, a GitHub App: its App ID (digits); each github-issue task then gets
                        a fresh installation token restricted to the task's repository (contents, issues and pull
                        requests write, metadata read), minted when the lease holder asks for it
  --github-app-key-file file (mode 0600) holding the App's private key (the .pem GitHub generated)
  --github-app-installation-id  the App's installation to mint tokens from (default: looked up per repository,
                        GET /repos/{owner}/{repo}/installation)
  --github-api-url      GitHub REST base URL (default https://api.github.com; GitHub Enterprise: https://HOST/api/v3)
  --github-webhook-secret-file  file (mode 0600) holding the GitHub webhook's secret: POST /v1/github/webhook
                        then turns an issue labelled --github-dispatch-label (default fleet:dispatch) into a task
  --github-poll-repo    a repository (repeat the flag for more) whose open issues labelled --github-dispatch-label
                        the queue polls for (conditional requests; for a queue GitHub's webhooks cannot reach):
                        each becomes one task, and the label is removed once it has it
  --github-poll-seconds seconds between polls (default 60; without --github-poll-repo the queue still lists the
                        fleet's pull requests for fleet task status, every 300 s by default)`;

/** Parses `HOST:PORT` (IPv6 as `[::1]:8787`). Throws UserError on a bad value. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UserError(`--listen must be HOST:PORT (e.g. 127.0.0.1:8787 or arch-orchestrator:8787), got "${value}".`);
  return { host: m[1] ?? m[2]!, port };
}

/** A whole number from 1 to 2^53-1 as GitHub writes ids (no sign, no leading zero), or null. */
const githubId = (v: string): number | null => (/^[1-9][0-9]{0,15}$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : null);

/**
 * The queue's GitHub credentials from its flags: `--github-token-file`, or `--github-app-id` with
 * `--github-app-key-file` (and `--github-app-installation-id`), or neither (undefined). The App's key is
 * checked here (a PEM RSA private key), so a bad key file is one line at start; a wrong App id or a key of
 * another App can only be told by GitHub, at the first task (runtime/server.ts: a 502 with GitHub's answer,
 * on the worker's task and the queue's stderr). Throws UserError on bad or conflicting flags.
 */
export function githubAuthFlags(f: Record<string, string | string[] | boolean | undefined>, apiUrl: string): GitHubAuth | undefined {
  const s = (k: string) => f[k] as string | undefined;
  const app = s("github-app-id") !== undefined || s("github-app-key-file") !== undefined || s("github-app-installation-id") !== undefined;
  if (s("github-token-file") && app) throw new UserError("--github-token-file and --github-app-id/--github-app-key-file are two ways to the same thing: give one (a fine-grained token, or a GitHub App).");
  if (s("github-token-file")) {
    const token = readSecretFile(s("github-token-file")!, "GitHub token file").trim();
    if (!/^[\x21-\x7e]{1,1024}$/.test(token)) throw new UserError(`GitHub token file ${s("github-token-file")} must hold one token: one line of printable characters without spaces.`);
    return tokenAuth(token, apiUrl);
  }
  if (!app) {
    if (s("github-api-url")) throw new UserError("--github-api-url needs --github-token-file or --github-app-id (the credentials github-issue tasks use).");
    return undefined;
  }
  if (!s("github-app-id") || !s("github-app-key-file")) throw new UserError("a GitHub App needs both --github-app-id (its App ID) and --github-app-key-file (its private key, mode 0600).");
  const appId = githubId(s("github-app-id")!);
  if (appId === null) throw new UserError(`--github-app-id must be the App's numeric ID (its settings page, "App ID"), got ${JSON.stringify(s("github-app-id")!.slice(0, 40))}.`);
  const inst = s("github-app-installation-id");
  const installationId = inst === undefined ? undefined : githubId(inst);
  if (installationId === null) throw new UserError(`--github-app-installation-id must be a numeric installation ID (the number at the end of the installation's settings URL), got ${JSON.stringify(inst!.slice(0, 40))}.`);
  const file = s("github-app-key-file")!;
  const privateKey = readSecretFile(file, "GitHub App key file");
  checkAppPrivateKey(privateKey, file);
  return appAuth({ appId, privateKey, installationId, apiUrl });
}

/** Entry point of `fleet queue`. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "--help" || sub === "-h") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (sub !== "serve") throw new UserError(`fleet queue: expected the subcommand "serve", got ${sub ? `"${sub}"` : "nothing"}.\n\n${USAGE}`);
  const parsed = parseVerb(rest, {
    verb: "queue serve",
    usage: USAGE,
    positionals: false,
    options: {
      db: { type: "string" },
      listen: { type: "string" },
      tokens: { type: "string" },
      "lease-seconds": { type: "string" },
      "claim-wait-seconds": { type: "string" },
      "presence-seconds": { type: "string" },
      synchronous: { type: "string" },
      "public-url": { type: "string" },
      "logins-per-minute": { type: "string" },
      "github-token-file": { type: "string" },
      "github-api-url": { type: "string" },
      "github-app-id": { type: "string" },
      "github-app-key-file": { type: "string" },
      "github-app-installation-id": { type: "string" },
      "github-webhook-secret-file": { type: "string" },
      "github-dispatch-label": { type: "string" },
      "github-poll-repo": { type: "string", multiple: true },
      "github-poll-seconds": { type: "string" },
    },
  });
  if (!parsed) return 0;
  const f = parsed.values;
  for (const k of ["db", "listen", "tokens"] as const) if (!f[k]) throw new UserError(`fleet queue serve: --${k} is required.\n\n${USAGE}`);
  if (f.synchronous && f.synchronous !== "full" && f.synchronous !== "normal") throw new UserError(`--synchronous must be full or normal, got "${f.synchronous}".`);
  const { host, port } = parseListen(f.listen!);
  const tokens = loadTokensFile(f.tokens!);
  const logins = f["logins-per-minute"];
  if (logins !== undefined && !/^[1-9][0-9]{0,5}$/.test(logins)) throw new UserError(`--logins-per-minute must be a whole number from 1 to 999999, got "${logins}".`);
  const leaseSeconds = secondsFlag(f["lease-seconds"], "lease-seconds");
  if (leaseSeconds === 0) throw new UserError("--lease-seconds must be greater than 0.");
  const githubApiUrl = f["github-api-url"] ?? "https://api.github.com";
  if (!/^https?:\/\/[A-Za-z0-9.:[\]-]+(\/[A-Za-z0-9._~\/-]*)?$/.test(githubApiUrl)) throw new UserError(`--github-api-url must be an http(s) URL such as https://api.github.com, got "${githubApiUrl}".`);
  const github = githubAuthFlags(f, githubApiUrl.replace(/\/+$/, ""));
  const pollRepos = f["github-poll-repo"] ?? [];
  if ((f["github-webhook-secret-file"] || f["github-dispatch-label"] || pollRepos.length || f["github-poll-seconds"]) && !github) {
    throw new UserError("--github-webhook-secret-file, --github-poll-repo, --github-poll-seconds and --github-dispatch-label need --github-token-file or --github-app-id (the credentials the dispatched tasks use).");
  }
  if (f["github-dispatch-label"] && !f["github-webhook-secret-file"] && !pollRepos.length) throw new UserError("--github-dispatch-label needs --github-webhook-secret-file or --github-poll-repo (the label arrives by webhook or by polling).");
  const repos = pollRepos.map((r) => {
    const ref = parseRepoRef(r);
    if (typeof ref === "string") throw new UserError(`--github-poll-repo: ${ref}.`);
    return ref;
  });
  const twice = pollRepos.find((r, i) => pollRepos.findIndex((x) => x.toLowerCase() === r.toLowerCase()) !== i);
  if (twice) throw new UserError(`--github-poll-repo ${twice} is given twice (GitHub names ignore case).`);
  const pollSeconds = secondsFlag(f["github-poll-seconds"], "github-poll-seconds");
  if (pollSeconds !== undefined && (pollSeconds < 1 || pollSeconds > 86_400)) throw new UserError(`--github-poll-seconds must be from 1 to 86400, got "${f["github-poll-seconds"]}".`);
  const label = f["github-dispatch-label"];
  if (label !== undefined && !/^[^\x00-\x1f\x7f]{1,50}$/.test(label)) throw new UserError(`--github-dispatch-label must be a GitHub label name: 1-50 printable characters, got ${JSON.stringify(label.slice(0, 60))}.`);
  const webhookSecret = f["github-webhook-secret-file"] ? readSecretFile(f["github-webhook-secret-file"], "GitHub webhook secret file").trim() : undefined;
  const { app, close } = createQueueServer({
    db: f.db!,
    tokens,
    leaseSeconds,
    maxClaimWaitSeconds: secondsFlag(f["claim-wait-seconds"], "claim-wait-seconds"),
    presenceSeconds: secondsFlag(f["presence-seconds"], "presence-seconds"),
    synchronous: f.synchronous as "full" | "normal" | undefined,
    publicUrl: f["public-url"],
    loginsPerMinute: logins === undefined ? undefined : Number(logins),
    github,
    githubWebhook: webhookSecret === undefined ? undefined : { secret: webhookSecret, dispatchLabel: label },
    githubPoll: github === undefined ? undefined : { repos, intervalSeconds: pollSeconds, dispatchLabel: label },
  });
  let address: string;
  try {
    address = await app.listen({ host, port });
  } catch (err) {
    await close();
    throw new UserError(`fleet queue serve: cannot listen on ${f.listen}: ${(err as Error).message}`);
  }
  process.stdout.write(`fleet queue: listening on ${address} (${Object.keys(tokens.nodes).length} nodes, db ${f.db})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve();
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  await close();
  process.stdout.write("fleet queue: stopped\n");
  return 0;
}
