/**
 * A real Icecream cluster on this machine's loopback for the monitor tests: Debian's `icecc-scheduler` on a
 * free port and one `iceccd` per daemon given, each with its own daemon port (`-p`), unix socket
 * (ICECC_TEST_SOCKET, icecream daemon/main.cpp and client/main.cpp read it), environment dir and node name,
 * all under one temp dir, logging `-vvv` to files there. Runs as root (the daemons drop to the `icecc` user
 * the package creates, so the dir belongs to it). `stop()` ends only the processes it started, by pid.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, chownSync, chmodSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { monitorSchedulerTcp, type IceccSnapshot } from "../../cli/icecc-monitor.js";

/** One daemon to start: node name (`-N`), max jobs (`-m`), `--no-remote`. */
export interface DaemonSpec {
  name: string;
  maxJobs: number;
  noRemote?: boolean;
}

export interface TestIcecc {
  /** The scheduler's TCP port on 127.0.0.1 (its text interface is port + 1). */
  port: number;
  dir: string;
  /** The environment an `icecc` client needs to use daemon `name` (its unix socket). */
  clientEnv(name: string): NodeJS.ProcessEnv;
  /** The logs so far, for a failing test's message. */
  logs(): string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (closed again; the caller binds it next). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** Two free ports p, p + 1 (the scheduler also binds its text interface on port + 1). */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await freePort();
    if (p < 65535 && (await canBind(p + 1))) return p;
  }
  throw new Error("no two adjacent free ports on 127.0.0.1");
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "0.0.0.0", () => srv.close(() => resolve(true)));
  });
}

/**
 * Starts the scheduler and the daemons; resolves once a monitor sees every daemon connected (iceccd retries
 * its scheduler every few seconds, so this takes up to ~10 s).
 */
export async function startIcecc(daemons: DaemonSpec[], deadlineMs = 40_000): Promise<TestIcecc> {
  const dir = mkdtempSync(join(tmpdir(), "fleet-icecc-"));
  const uid = Number(execFileSync("id", ["-u", "icecc"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "icecc"], { encoding: "utf8" }).trim());
  chmodSync(dir, 0o755);
  chownSync(dir, uid, gid);
  const port = await freePortPair();
  const procs: ChildProcess[] = [];
  const start = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    const p = spawn(cmd, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "ignore"] });
    procs.push(p);
    return p;
  };
  const socket = (name: string) => join(dir, `${name}.socket`);
  start("/usr/sbin/icecc-scheduler", ["-p", String(port), "-l", join(dir, "scheduler.log"), "-vvv"]);
  for (const d of daemons) {
    const envs = join(dir, `envs-${d.name}`);
    mkdirSync(envs);
    chownSync(envs, uid, gid);
    const daemonPort = await freePort();
    start(
      "/usr/sbin/iceccd",
      ["-s", `127.0.0.1:${port}`, "-N", d.name, "-m", String(d.maxJobs), "-p", String(daemonPort), "-b", envs, "-l", join(dir, `${d.name}.log`), "-vvv", ...(d.noRemote ? ["--no-remote"] : [])],
      { ICECC_TEST_SOCKET: socket(d.name) },
    );
  }
  const cluster: TestIcecc = {
    port,
    dir,
    clientEnv: (name) => ({ ...process.env, ICECC_TEST_SOCKET: socket(name) }),
    logs: () =>
      ["scheduler", ...daemons.map((d) => d.name)]
        .map((n) => {
          try {
            return `--- ${n}.log\n${readFileSync(join(dir, `${n}.log`), "utf8").split("\n").slice(-15).join("\n")}`;
          } catch {
            return `--- ${n}.log: none`;
          }
        })
        .join("\n"),
    stop: async () => {
      await Promise.all(
        procs.map(async (p) => {
          if (p.exitCode !== null || p.signalCode !== null) return;
          const exited = new Promise((r) => p.once("exit", r));
          p.kill("SIGTERM");
          const t = setTimeout(() => p.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(t);
        }),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const names = daemons.map((d) => d.name);
  const end = Date.now() + deadlineMs;
  let last: IceccSnapshot | Error | undefined;
  while (Date.now() < end) {
    try {
      last = await monitorSchedulerTcp({ host: "127.0.0.1", port, windowMs: 1000, timeoutMs: 3000, expect: names });
      if (names.every((n) => (last as IceccSnapshot).daemons.some((d) => d.name === n))) return cluster;
    } catch (err) {
      last = err as Error;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const logs = cluster.logs();
  await cluster.stop();
  throw new Error(`the icecc daemons did not all connect within ${deadlineMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})\n${logs}`);
}
