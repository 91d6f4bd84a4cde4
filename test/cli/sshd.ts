/**
 * A real OpenSSH server for the `fleet` verbs' tests: `/usr/sbin/sshd -D` on 127.0.0.1 at a free high
 * port, with a throwaway host key and a throwaway client key (ed25519), accepting only that key for the
 * user running the tests (root here). Stops with `stop()`; the temp directory is removed.
 *
 * Used where the tests need SSH itself (timeouts, exit codes, streaming); role installs run on the hosts
 * harness's systemd nodes instead.
 */
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";

/** Loopback addresses the server listens on (Linux routes all of 127.0.0.0/8 to lo). */
export const LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];

export interface TestSshd {
  port: number;
  /** Client private key accepted by the server. */
  keyPath: string;
  /** known_hosts file to use (empty; filled on first contact). */
  knownHosts: string;
  user: string;
  dir: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

async function waitForPort(port: number, deadlineMs: number): Promise<void> {
  const { connect } = await import("node:net");
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), r(true)));
      s.once("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within ${deadlineMs} ms`);
}

/** Starts sshd; resolves once it accepts TCP connections. */
export async function startSshd(): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), "fleet-sshd-"));
  chmodSync(dir, 0o755);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "client_key")]);
  execFileSync("cp", [join(dir, "client_key.pub"), join(dir, "authorized_keys")]);
  const port = await freePort();
  const user = userInfo().username;
  const config = [
    `Port ${port}`,
    // Several loopback addresses, so one server can stand in for several nodes (fleet hosts are unique).
    ...LOOPBACK_HOSTS.map((h) => `ListenAddress ${h}`),
    `HostKey ${join(dir, "host_key")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin prohibit-password",
    `AllowUsers ${user}`,
    "StrictModes no",
    "UsePAM no",
    "PidFile none",
    "LogLevel ERROR",
    "MaxStartups 100:30:200",
    "MaxSessions 100",
  ].join("\n");
  writeFileSync(join(dir, "sshd_config"), config + "\n");
  execFileSync("mkdir", ["-p", "/run/sshd"]);
  const proc: ChildProcess = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  try {
    await waitForPort(port, 10_000);
  } catch (err) {
    proc.kill("SIGKILL");
    throw new Error(`${(err as Error).message}: ${stderr}`);
  }
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, "");
  return {
    port,
    keyPath: join(dir, "client_key"),
    knownHosts,
    user,
    dir,
    stop: async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
