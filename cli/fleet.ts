/**
 * `fleet` — the command-line entry point (package bin). Each verb lives in its own module that exports
 * `run(argv: string[]): Promise<number>` (the exit code: 0 ok, 1 failure found, 2 bad input).
 * Errors of kind {@link UserError} print their message only; anything else is a bug and prints a stack.
 */
import { pathToFileURL } from "node:url";
import { UserError } from "../model/errors.js";

type VerbModule = { run(argv: string[]): Promise<number> };

/** Verbs by name: a one-line summary for the usage, and the module that runs it (loaded on use). */
export type VerbTable = Record<string, { summary: string; load: () => Promise<VerbModule> }>;

/** Every verb of the operator's CLI (`npx fleet …`). */
export const VERBS: VerbTable = {
  plan: { summary: "validate a fleet file, render every node's bundles and print the plan", load: () => import("./plan.js") },
  schema: { summary: "print, write or check fleet.schema.json (the JSON Schema of fleet.yaml)", load: () => import("./schema.js") },
  task: {
    summary: "delegate a task to a node; list, show, wait for, cancel or re-prioritize tasks; fleet status",
    load: async () => {
      // The operator's CLI reads --fleet with the user roles its roleSources bring (the node-side runtime has no roles).
      // Loaded only when a fleet file is read: the roles are most of the CLI's start time.
      const task = await import("./task.js");
      return { run: (argv: string[]) => task.run(argv, { loadFleet: async (file) => (await import("../roles/sources.js")).loadFleetWithRoles(file) }) };
    },
  },
  queue: { summary: "run the task queue server (fleet queue serve --db FILE --listen HOST:PORT --tokens FILE)", load: () => import("./queue.js") },
  worker: { summary: "run a worker daemon that claims and runs tasks for one node", load: () => import("./worker.js") },
  status: { summary: "health of every node in parallel: SSH, services per role, Tailscale, AgentAPI, icecc, disk", load: () => import("./status.js") },
  exec: { summary: "run a shell command on nodes in parallel, output prefixed by node name", load: () => import("./exec.js") },
  logs: { summary: "show (or follow) a role's service logs on a node", load: () => import("./logs.js") },
  restart: { summary: "restart a role's services on a node", load: () => import("./restart.js") },
  "add-machine": { summary: "add a node to fleet.yaml (flags, prompts or --probe over SSH), keeping its comments", load: () => import("./add-machine.js") },
  "pin-artifacts": { summary: "download the artifacts the fleet needs and pin their sha256 in fleet.yaml (--check for CI)", load: () => import("./pin-artifacts.js") },
  drift: { summary: "compare live nodes (markers, files, services) and the Pulumi stack with the current render", load: () => import("./drift.js") },
};

/**
 * The verbs a node's runtime entry runs (templates/queue/fleet.mjs, shipped by the queue and worker roles):
 * `queue` and `worker`, each only where its role put its code (each role has its own directory), and `task`
 * (delegate, wait, status, next, claim, note, complete…), shipped with the worker so the node's `fleet`
 * command (roles/worker) works from its shell and its Claude sessions.
 */
export const NODE_VERBS: VerbTable = Object.fromEntries(
  (["queue", "worker", "task"] as const).map((v) => [
    v,
    {
      summary: VERBS[v]!.summary,
      load: () =>
        VERBS[v]!.load().catch((err: Error & { code?: string }) => {
          throw new UserError(`fleet: the ${v} runtime is not installed here (${err.code ?? err.message}); it comes with the ${v} role: re-run its install`);
        }),
    },
  ]),
);

function usage(verbs: VerbTable): string {
  const width = Math.max(...Object.keys(verbs).map((v) => v.length));
  return [
    "usage: fleet <verb> [options]",
    "",
    ...Object.entries(verbs).map(([v, { summary }]) => `  ${v.padEnd(width)}  ${summary}`),
    "",
    "Run `fleet <verb> --help` for a verb's options.",
  ].join("\n");
}

/** Runs one CLI invocation with the verbs of `verbs` (default: every verb); returns the process exit code. */
export async function main(argv: string[], verbs: VerbTable = VERBS): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === "--help" || verb === "-h" || verb === "help") {
    process.stdout.write(usage(verbs) + "\n");
    return verb ? 0 : 2;
  }
  const entry = Object.hasOwn(verbs, verb) ? verbs[verb] : undefined;
  if (!entry) {
    process.stderr.write(`fleet: unknown verb "${verb}".\n\n${usage(verbs)}\n`);
    return 2;
  }
  try {
    const mod = await entry.load();
    return await mod.run(rest);
  } catch (err) {
    if (err instanceof UserError) {
      process.stderr.write(err.message.endsWith("\n") ? err.message : err.message + "\n");
      return err.exitCode;
    }
    throw err;
  }
}

/**
 * Ends the process with `code` once stdout and stderr have drained. Writes to a pipe are asynchronous, so
 * `process.exit` straight after a large write cut piped output at the pipe buffer (64 KiB: `fleet plan
 * --json | jq` saw 65,536 of 381,653 bytes); the exit waits for the empty writes queued behind the output,
 * and does not wait for handles that may stay open (an HTTP client's keep-alive sockets).
 */
export function exitAfterDrain(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write("", done);
  process.stderr.write("", done);
}

/**
 * Runs the CLI with this process's arguments and ends with its code once output has drained: the package
 * bin with every verb, a node's runtime entry with {@link NODE_VERBS}.
 */
export function runCli(verbs: VerbTable = VERBS): void {
  main(process.argv.slice(2), verbs).then(exitAfterDrain, (err) => {
    process.stderr.write(`fleet: internal error (please report): ${(err as Error).stack ?? err}\n`);
    exitAfterDrain(1);
  });
}

// `tsx cli/fleet.ts …` runs it directly too.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) runCli();
