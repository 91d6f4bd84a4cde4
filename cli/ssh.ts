/**
 * The one SSH transport every `fleet` verb uses: the system `ssh` binary run through zx's `$`, never
 * interactive (`BatchMode=yes`: no password or host-key prompts), with a dial timeout (`ConnectTimeout`,
 * from the node's `perDialTimeoutSeconds`) and an overall per-call timeout after which ssh is killed. An
 * unreachable node therefore comes back as `offline` within the timeout; no call ever hangs.
 *
 * Environment knobs (for CI and tests; both optional):
 * - `FLEET_SSH_CONFIG`: an ssh_config file passed as `ssh -F FILE`.
 * - `FLEET_KNOWN_HOSTS`: the known_hosts file (`UserKnownHostsFile`). New hosts are accepted on first
 *   contact (`StrictHostKeyChecking=accept-new`, what a tailnet fleet wants); a changed key is refused.
 */
import { homedir } from "node:os";
import { $ } from "zx";
import type { FleetNode } from "../model/fleet.js";
import { sshClientArgs } from "../roles/ssh.js";

/** How to reach one machine: what `ssh` needs. A {@link FleetNode} is one (see {@link sshTargetOf}). */
export interface SshTarget {
  /** Name used in output (the node name, or the host for a machine not yet in the fleet). */
  name: string;
  host: string;
  user: string;
  /** TCP port of sshd. */
  sshPort: number;
  /** Private key path; a leading `~/` is expanded to the operator's home. */
  sshKeyPath: string;
  /** Seconds one TCP/SSH dial may take (`ssh -o ConnectTimeout`). */
  perDialTimeoutSeconds: number;
}

/** The SSH target of a fleet node. */
export function sshTargetOf(node: FleetNode): SshTarget {
  const { name, host, user, sshPort, sshKeyPath, perDialTimeoutSeconds } = node;
  return { name, host, user, sshPort, sshKeyPath, perDialTimeoutSeconds };
}

/** Options of one SSH call. */
export interface SshCallOptions {
  /** Overall seconds before ssh is killed (dial + remote command); omit for no limit (`logs -f`). */
  timeoutSeconds?: number;
  /** Text for the remote command's stdin; omitted = no stdin (`ssh -n`). */
  input?: string;
  /** Called with each chunk of remote stdout / stderr as it arrives (for streaming output). */
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

/** What one SSH call came back with. */
export interface SshResult {
  /**
   * `ok`: the remote command ran (whatever its exit code); `offline`: ssh could not connect or
   * authenticate; `timeout`: the overall timeout killed ssh.
   */
  reach: "ok" | "offline" | "timeout";
  /** Remote exit code when `reach` is `ok`; 255 otherwise (ssh's own convention for a failed connection). */
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds of the whole call: connect, authenticate, run, close. */
  ms: number;
  /** One line explaining an offline/timeout result (ssh's last stderr line), else undefined. */
  reason?: string;
}

function expandHome(path: string): string {
  return path === "~" ? homedir() : path.startsWith("~/") ? `${homedir()}/${path.slice(2)}` : path;
}

/**
 * The argument list for `ssh` (everything but the remote command): roles/ssh.ts `sshClientArgs` with the
 * target's key only (`IdentitiesOnly`), keep-alives, errors only on stderr and the FLEET_* files, then the
 * login, no pseudo-terminal (`-T`), no stdin unless `opts.stdin` (`-n`) and the host. Pure but for the
 * environment it reads; exported for tests.
 */
export function sshArgs(target: SshTarget, opts: { stdin: boolean } = { stdin: false }): string[] {
  return [
    ...sshClientArgs(target, {
      configFile: process.env.FLEET_SSH_CONFIG,
      keyFile: expandHome(target.sshKeyPath),
      identitiesOnly: true,
      keepalive: true,
      quiet: true,
      knownHostsFile: process.env.FLEET_KNOWN_HOSTS,
    }),
    "-l", target.user, "-T",
    ...(opts.stdin ? [] : ["-n"]),
    "--", target.host,
  ];
}

/**
 * Runs `command` (one remote shell line) on `target` over SSH. Never throws for network trouble or a
 * non-zero remote exit: the result says what happened.
 */
export async function sshRun(target: SshTarget, command: string, opts: SshCallOptions = {}): Promise<SshResult> {
  const started = performance.now();
  const args = sshArgs(target, { stdin: opts.input !== undefined });
  const p = $({
    nothrow: true,
    quiet: true,
    input: opts.input,
    timeout: opts.timeoutSeconds === undefined ? undefined : opts.timeoutSeconds * 1000,
    timeoutSignal: "SIGKILL",
  })`ssh ${args} ${command}`;
  if (opts.onStdout) p.stdout.on("data", (c: Buffer) => opts.onStdout!(c.toString()));
  if (opts.onStderr) p.stderr.on("data", (c: Buffer) => opts.onStderr!(c.toString()));
  const out = await p;
  const ms = Math.round(performance.now() - started);
  const stdout = out.stdout;
  const stderr = out.stderr;
  if (out.signal === "SIGKILL" || out.exitCode === null) {
    return { reach: "timeout", exitCode: 255, stdout, stderr, ms, reason: `no answer within ${opts.timeoutSeconds} s` };
  }
  // ssh exits 255 for its own errors; a remote command that exits 255 itself is told apart by ssh's
  // stderr, which then does not carry one of ssh's connection messages.
  if (out.exitCode === 255 && isSshFailure(stderr)) {
    return { reach: "offline", exitCode: 255, stdout, stderr, ms, reason: lastLine(stderr) };
  }
  return { reach: "ok", exitCode: out.exitCode, stdout, stderr, ms };
}

const SSH_FAILURES = [
  /^ssh: /m,
  /Permission denied/,
  /Connection (refused|timed out|closed|reset)/i,
  /Host key verification failed/,
  /Could not resolve hostname/,
  /No route to host/,
  /Network is unreachable/,
  /kex_exchange_identification/,
  /Timeout, server .* not responding/,
  /banner exchange/,
];

/** True when ssh's stderr says the connection itself failed (ssh(1): exit 255 "if an error occurred"). */
export function isSshFailure(stderr: string): boolean {
  return SSH_FAILURES.some((re) => re.test(stderr));
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n").filter((l) => l.trim() !== "");
  return lines.at(-1)?.trim() ?? "ssh failed without a message";
}
