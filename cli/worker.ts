/**
 * `fleet worker --queue URL --token-file FILE --node NAME [...]`: runs the worker daemon in the foreground (the
 * `worker` role's systemd/launchd service runs exactly this). The node's budget cap and ntfy settings come
 * from the queue (`GET /v1/nodes/me`); Claude's credentials from `--env-file`. SIGTERM/SIGINT drain gracefully.
 */
import { UserError } from "../model/errors.js";
import { parseEnvFile } from "../runtime/config.js";
import { readSecretFile } from "../runtime/secret-file.js";
import { EXECUTORS, Worker } from "../runtime/worker.js";
import { intFlag, readToken, secondsFlag } from "./args.js";
import { parseVerb } from "./verb.js";

/** A user name `--run-as` accepts: what useradd and dscl take without quoting (POSIX portable names). */
const USER_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,31}$/;

const USAGE = `usage: fleet worker --queue URL --token-file FILE --node NAME [--claude PATH] [--once] [--concurrency N]
       [--executor claude-print|agentapi|noop] [--agentapi-url URL] [--env-file FILE] [--home-root DIR]
       [--run-as USER[,USER...]] [--claim-wait-seconds S] [--poll-seconds S] [--grace-seconds S]

  --queue               queue server URL, e.g. http://arch-orchestrator:8787
  --token-file          file holding this node's queue token (mode 0600; never pass a token on the command line)
  --node                this node's name in fleet.yaml (must match the token)
  --claude              claude executable for the claude-print executor (default: claude on PATH)
  --once                run one task, then exit (exit 1 if it did not complete)
  --concurrency         parallel task slots, each with its own HOME (default 1)
  --executor            claude-print (default): claude -p …; agentapi: the node's AgentAPI; noop: benchmarks
  --agentapi-url        AgentAPI base URL (default http://127.0.0.1:3284)
  --env-file            KEY=VALUE file with ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (mode 0600)
  --home-root           parent of the per-slot isolated homes <node>-<slot> (default ~/.fleetkit/workers)
  --run-as              one user per slot: slot N runs its tasks as the Nth user, through sudo -n -u USER
                        (the worker role creates fleetkit-w1 and the sudoers rule); without it tasks run as you
  --claim-wait-seconds  long-poll length per claim (default 25)
  --poll-seconds        baseline mode: no long-poll, one check every S seconds (for comparison only)
  --grace-seconds       on SIGTERM, how long running tasks may finish before release (default 30)`;

/** Entry point of `fleet worker`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseVerb(argv, {
    verb: "worker",
    usage: USAGE,
    positionals: false,
    options: {
      queue: { type: "string" },
      "token-file": { type: "string" },
      node: { type: "string" },
      claude: { type: "string" },
      once: { type: "boolean" },
      concurrency: { type: "string" },
      executor: { type: "string" },
      "agentapi-url": { type: "string" },
      "env-file": { type: "string" },
      "home-root": { type: "string" },
      "run-as": { type: "string" },
      "claim-wait-seconds": { type: "string" },
      "poll-seconds": { type: "string" },
      "grace-seconds": { type: "string" },
    },
  });
  if (!parsed) return 0;
  const f = parsed.values;
  for (const k of ["queue", "token-file", "node"] as const) if (!f[k]) throw new UserError(`fleet worker: --${k} is required.\n\n${USAGE}`);
  if (!/^https?:\/\/[^/]+/.test(f.queue!)) throw new UserError(`--queue must be an http:// or https:// URL (e.g. http://arch-orchestrator:8787), got "${f.queue}".`);
  const executor = (f.executor ?? "claude-print") as (typeof EXECUTORS)[number];
  if (!EXECUTORS.includes(executor)) throw new UserError(`--executor must be one of ${EXECUTORS.join(", ")}, got "${f.executor}".`);
  const runAs = f["run-as"]?.split(",");
  const badUser = runAs?.find((u) => !USER_NAME.test(u));
  if (badUser !== undefined) throw new UserError(`--run-as must be user names separated by commas (letters, digits, _ and -, e.g. fleetkit-w1,fleetkit-w2), got "${f["run-as"]}".`);
  const concurrency = intFlag(f.concurrency, "concurrency", 1, 256);
  if (runAs && runAs.length < (f.once ? 1 : (concurrency ?? 1))) {
    throw new UserError(`--run-as names ${runAs.length} user(s) but --concurrency is ${concurrency}: give one user per slot (e.g. --run-as ${Array.from({ length: concurrency! }, (_, i) => `fleetkit-w${i + 1}`).join(",")}).`);
  }
  const worker = new Worker({
    queueUrl: f.queue!,
    token: readToken(f["token-file"]!),
    node: f.node!,
    executor,
    claudePath: f.claude,
    agentApiUrl: f["agentapi-url"],
    env: f["env-file"] ? parseEnvFile(readSecretFile(f["env-file"], "env file"), f["env-file"]) : undefined,
    homeRoot: f["home-root"],
    runAs,
    concurrency,
    once: f.once,
    claimWaitSeconds: secondsFlag(f["claim-wait-seconds"], "claim-wait-seconds"),
    pollSeconds: secondsFlag(f["poll-seconds"], "poll-seconds"),
    graceSeconds: secondsFlag(f["grace-seconds"], "grace-seconds"),
  });
  const stop = () => void worker.stop();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  try {
    const code = await worker.run();
    if (code === 2 && worker.setupError) throw new UserError(`fleet worker: cannot run tasks as configured (see the line above): check --run-as, --home-root and the worker role's install.`);
    if (code === 2) throw new UserError(`fleet worker: the queue refused node ${f.node} (see the line above); check --node and --token-file.`);
    return code;
  } finally {
    process.off("SIGTERM", stop);
    process.off("SIGINT", stop);
  }
}
