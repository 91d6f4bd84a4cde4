/**
 * `fleet queue serve --db FILE --listen HOST:PORT --tokens FILE [...]`: runs the queue server in the foreground
 * (the `queue` role's service runs exactly this). Prints one line `fleet queue: listening on http://…` when
 * ready; SIGTERM or SIGINT closes it cleanly (exit 0).
 */
import { UserError } from "../model/errors.js";
import { parseRepoRef } from "../runtime/api.js";
import { loadTokensFile } from "../runtime/config.js";
import { readSecretFile } from "../runtime/secret-file.js";
import { createQueueServer } from "../runtime/server.js";
import { secondsFlag } from "./args.js";
import { parseVerb } from "./verb.js";

const USAGE = `usage: fleet queue serve --db FILE --listen HOST:PORT --tokens FILE
       [--lease-seconds S] [--claim-wait-seconds S] [--presence-seconds S] [--synchronous normal|full] [--public-url URL]
       [--github-token-file FILE [--github-api-url URL] [--github-webhook-secret-file FILE]
        [--github-poll-repo OWNER/REPO]... [--github-poll-seconds S] [--github-dispatch-label L]]

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
  if (f["github-api-url"] && !f["github-token-file"]) throw new UserError("--github-api-url needs --github-token-file (the token github-issue tasks use).");
  const githubToken = f["github-token-file"] ? readSecretFile(f["github-token-file"], "GitHub token file").trim() : undefined;
  if (githubToken !== undefined && !/^[\x21-\x7e]{1,1024}$/.test(githubToken)) throw new UserError(`GitHub token file ${f["github-token-file"]} must hold one token: one line of printable characters without spaces.`);
  const pollRepos = f["github-poll-repo"] ?? [];
  if ((f["github-webhook-secret-file"] || f["github-dispatch-label"] || pollRepos.length || f["github-poll-seconds"]) && !f["github-token-file"]) {
    throw new UserError("--github-webhook-secret-file, --github-poll-repo, --github-poll-seconds and --github-dispatch-label need --github-token-file (the token the dispatched tasks use).");
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
    github: githubToken === undefined ? undefined : { token: githubToken, apiUrl: githubApiUrl.replace(/\/+$/, "") },
    githubWebhook: webhookSecret === undefined ? undefined : { secret: webhookSecret, dispatchLabel: label },
    githubPoll: githubToken === undefined ? undefined : { repos, intervalSeconds: pollSeconds, dispatchLabel: label },
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
