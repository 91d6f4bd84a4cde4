/**
 * `fleet exec <node|profile|all …> [--fleet FILE] [--timeout SECONDS] -- <command …>`: runs one shell
 * command on the chosen nodes in parallel over SSH, as each node's fleet user (like `ssh node command`:
 * the words after `--` are joined with spaces and run by the node's login shell). Output is streamed
 * line by line, each line prefixed with the node's name (stderr lines go to stderr); then one summary
 * line per node with its exit code. Replaces the reference's per-machine `pi-exec.sh` / `mbp-exec.sh`.
 * On a Windows node the command reaches the host's OpenSSH default shell (cmd.exe unless changed); prefix
 * it with `wsl.exe -d <distro> --` to run inside the distro.
 *
 * Exit code: the highest per-node exit code (0 only when every node exited 0; an unreachable or timed
 * out node counts as 255, ssh's own code); 2 for bad input.
 */
import { parseVerb } from "./verb.js";
import { chalk } from "zx";
import { loadFleetWithRoles } from "../roles/sources.js";
import type { FleetNode } from "../model/fleet.js";
import { UserError } from "../model/errors.js";
import { sshRun, sshTargetOf, type SshResult } from "./ssh.js";
import { resolveTargets } from "./targets.js";
import { parseTimeout } from "./status.js";

/** One node's outcome of `fleet exec`. */
export interface ExecResult {
  node: string;
  reach: SshResult["reach"];
  /** Remote exit code; 255 when the node was offline or timed out. */
  exitCode: number;
  /** Wall-clock milliseconds of the SSH call. */
  ms: number;
  reason?: string;
}

/** Splits streamed chunks into whole lines and hands each to `emit` (the last partial line on `flush`). */
export function lineSplitter(emit: (line: string) => void): { push(chunk: string): void; flush(): void } {
  let buf = "";
  return {
    push(chunk) {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        emit(buf.slice(0, i).replace(/\r$/, ""));
        buf = buf.slice(i + 1);
      }
    },
    flush() {
      if (buf !== "") emit(buf);
      buf = "";
    },
  };
}

/** The overall exit code of an exec over several nodes: the highest per-node code (0 for none). */
export function overallExitCode(results: readonly ExecResult[]): number {
  return results.reduce((max, r) => Math.max(max, r.exitCode), 0);
}

/**
 * Runs `command` on every node in parallel. `out`/`err` receive whole, already prefixed lines.
 * Never rejects for network trouble; resolves when every node has finished or timed out.
 */
export async function execOnNodes(
  nodes: FleetNode[],
  command: string,
  opts: { timeoutSeconds?: number; out: (line: string) => void; err: (line: string) => void },
): Promise<ExecResult[]> {
  const width = Math.max(...nodes.map((n) => n.name.length));
  return Promise.all(
    nodes.map(async (node) => {
      const prefix = chalk.cyan(node.name.padEnd(width)) + " | ";
      const stdout = lineSplitter((l) => opts.out(prefix + l));
      const stderr = lineSplitter((l) => opts.err(prefix + l));
      const r = await sshRun(sshTargetOf(node), command, { timeoutSeconds: opts.timeoutSeconds, onStdout: stdout.push, onStderr: stderr.push });
      stdout.flush();
      stderr.flush();
      const result: ExecResult = { node: node.name, reach: r.reach, exitCode: r.exitCode, ms: r.ms };
      if (r.reason) result.reason = r.reason;
      return result;
    }),
  );
}

const USAGE = `usage: fleet exec <node|profile|all …> [--fleet FILE] [--timeout SECONDS] [--json] -- <command …>
  --fleet FILE       fleet file (default fleet.yaml)
  --json             after the output, print [{ node, reach, exitCode, ms, reason? }] on stdout instead of the summary
  --timeout SECONDS  kill the command on a node after this long (default: no limit beyond the SSH dial timeout)
Runs the command on every named node in parallel; output lines are prefixed with the node name.
Exit code: the highest per-node exit code (offline or timed-out nodes count as 255); 2 for bad input.
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseVerb(argv, { verb: "exec", usage: USAGE, options: { fleet: { type: "string", default: "fleet.yaml" }, timeout: { type: "string" }, json: { type: "boolean" } }, unknownHint: " (put the command after --)" });
  if (!parsed) return 0;
  const { values: args, positionals: targets, rest: words } = parsed;
  if (words.length === 0) throw new UserError(`fleet exec: no command given; put it after --, e.g. fleet exec all -- uptime\n${USAGE}`);
  if (targets.length === 0) throw new UserError(`fleet exec: name the nodes to run on (a node, a profile or all), e.g. fleet exec all -- uptime\n${USAGE}`);
  const fleet = await loadFleetWithRoles(args.fleet);
  const nodes = resolveTargets(fleet, targets);
  const timeoutSeconds = args.timeout === undefined ? undefined : parseTimeout(args.timeout, 0, "exec");
  const results = await execOnNodes(nodes, words.join(" "), {
    timeoutSeconds,
    out: (l) => process.stdout.write(l + "\n"),
    err: (l) => process.stderr.write(l + "\n"),
  });
  if (args.json) {
    process.stdout.write(JSON.stringify(results, null, 2) + "\n");
    return overallExitCode(results);
  }
  for (const r of results) {
    const what = r.reach === "ok" ? `exit ${r.exitCode}` : `${r.reach} (${r.reason})`;
    const mark = r.exitCode === 0 ? chalk.green("✓") : chalk.red("✗");
    process.stderr.write(`${mark} ${r.node}: ${what}, ${r.ms} ms\n`);
  }
  return overallExitCode(results);
}
