/**
 * A client of the Icecream scheduler's monitor protocol: what icemon and icecream-sundae speak to draw the
 * cluster. It connects to the scheduler's TCP port (8765, roles/reach.ts `ICECC_SCHEDULER_PORT`), does the
 * protocol-version exchange, logs in as a monitor, collects the messages the scheduler sends for a bounded
 * time and returns a typed {@link IceccSnapshot}: the daemons the scheduler knows (name, IP, platform, max
 * jobs, load, no-remote) and the jobs it announced while we listened.
 *
 * Wire format, from icecream's own source (github.com/icecc/icecream, services/comm.{h,cpp}, 1.4):
 * - Handshake (`MsgChannel::MsgChannel`, `MsgChannel::update_state` case NEED_PROTO): each side first sends
 *   its PROTOCOL_VERSION as 4 bytes little-endian (44 in 1.4); on reading the peer's, each answers with the
 *   smaller of the two (again 4 bytes LE); on reading the peer's answer, each checks it equals its own. A
 *   peer version below MIN_PROTOCOL_VERSION (21) or above 1<<20 is an error.
 * - Messages (`MsgChannel::send_msg`, `get_msg`): a 4-byte big-endian length (at most MAX_MSG_SIZE, 1 MiB),
 *   then the body: the message type as a big-endian uint32 (`enum Msg::Value`, 'A' = 65 upwards), then the
 *   fields. uint32s are big-endian (`operator<<(uint32_t)`: htonl); a string is a uint32 length that counts
 *   a trailing NUL, then the bytes and the NUL (`operator<<(const std::string &)`). A body must be read
 *   exactly to its end (`get_msg`: "message not read correctly"). The monitor path is not compressed:
 *   compression (`writecompressed`, LZO or zstd) is only for file chunks and environments.
 * - Login (icecream-sundae src/scheduler.cpp `discover_scheduler`: `send_msg(MonLoginMsg())`): one
 *   MON_LOGIN message with no fields. The scheduler (scheduler/scheduler.cpp `handle_mon_login`) answers
 *   with one MON_STATS per connected daemon at once, then sends MON_GET_CS, MON_JOB_BEGIN, MON_JOB_DONE,
 *   MON_LOCAL_JOB_BEGIN, JOB_LOCAL_DONE and MON_STATS as things happen (`notify_monitors`). It never
 *   replays jobs that began before the login: a snapshot's jobs are those announced while it listened.
 *
 * The scheduler accepts new connections at most once a second, when its poll loop wakes (scheduler.cpp
 * `main`, `next_listen`), so the handshake alone can take a few seconds on an idle cluster.
 *
 * Bounded: an overall timeout covers connect, handshake and login; collection stops after `windowMs` or as
 * soon as every daemon named in `expect` has reported; a frame over 1 MiB, a malformed body or an
 * unexpected end of the stream rejects with one line ({@link IceccMonitorError}). Never hangs.
 */
import { spawn } from "node:child_process";
import { connect as netConnect, isIP } from "node:net";
import { Duplex } from "node:stream";
import { sshArgs, type SshTarget } from "./ssh.js";

/** The protocol version this client announces (icecream 1.4's PROTOCOL_VERSION, services/comm.h). */
export const MONITOR_PROTOCOL_VERSION = 44;
/**
 * The oldest negotiated version this client reads: from 29 on MON_GET_CS carries only the file name and
 * language (services/comm.cpp `MonGetCSMsg::fill_from_channel`), which is all it parses.
 */
export const MIN_MONITOR_PROTOCOL_VERSION = 29;
/** icecream's MIN_PROTOCOL_VERSION and its upper sanity bound (services/comm.cpp `update_state`). */
const MIN_PEER_VERSION = 21;
const MAX_PEER_VERSION = 1 << 20;
/** The largest message body icecream sends or accepts (MAX_MSG_SIZE, services/comm.cpp): 1 MiB. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Message types (`enum Msg::Value`, services/comm.h): consecutive from UNKNOWN = 'A'. */
export const MSG = {
  UNKNOWN: 65,
  END: 67,
  JOB_LOCAL_DONE: 79,
  MON_LOGIN: 82,
  MON_GET_CS: 83,
  MON_JOB_BEGIN: 84,
  MON_JOB_DONE: 85,
  MON_LOCAL_JOB_BEGIN: 86,
  MON_STATS: 87,
  /** The last value of the enum (1.4); a type above it is not icecream's. */
  NO_CS: 96,
} as const;

/** Source languages of a MON_GET_CS (`CompileJob::Language`, services/job.h). */
const LANGUAGES = ["C", "C++", "ObjC", "Custom"] as const;

/** One daemon as the scheduler describes it in MON_STATS (scheduler/scheduler.cpp `handle_monitor_stats`). */
export interface IceccDaemon {
  /** The scheduler's id for the daemon's connection (MON_* messages name hosts by it). */
  hostId: number;
  /** The daemon's node name (`iceccd -N`; fleetkit gives the fleet node name). */
  name: string;
  /** The address the daemon's scheduler connection came from (`IP:`), which clients are sent to. */
  ip: string;
  /** The daemon's platform (`Platform:`, e.g. `x86_64`, `aarch64`, `Darwin_arm64`). */
  platform: string;
  /** Jobs the daemon runs at once (`MaxJobs:`; `iceccd -m`, default the CPU count). */
  maxJobs: number;
  /** `NoRemote:true`: the daemon takes no jobs from other hosts (`iceccd --no-remote`). */
  noRemote: boolean;
  /**
   * The daemon's load as it last reported it (`Load:`), 0–1000 per mille: max(1000 − idle CPU, memory
   * fill grade), 1000 also when its env dir is short of disk (daemon/main.cpp `maybe_stats`); the scheduler
   * says 1000 until the daemon's first stats.
   */
  load: number;
  /** The daemon's newest protocol version (`Version:`). */
  protocol: number;
  /** Its environment features (`Features:`, e.g. `env_xz env_zstd`). */
  features: string;
  /** Jobs in flight with this daemon as the compiling host, among the jobs of the snapshot. */
  jobs: number;
}

/** One compile job the scheduler announced while the monitor listened. */
export interface IceccJob {
  /** The scheduler's job id. */
  id: number;
  /** The source file (shortened by the sender, services/comm.cpp `shorten_filename`); "" when unknown. */
  file: string;
  /** `C`, `C++`, `ObjC`, `Custom` from MON_GET_CS; null for a local job. */
  language: string | null;
  /** The daemon that asked for a compile host (its node name), null when not among the daemons. */
  client: string | null;
  /** The daemon compiling it; null while the scheduler is still choosing (`pending`). */
  server: string | null;
  /**
   * `pending`: asked for a host (MON_GET_CS); `compiling`: the chosen daemon began it (MON_JOB_BEGIN; the
   * client's own daemon when the scheduler chose it); `local`: compiled by the client without asking for a
   * host (MON_LOCAL_JOB_BEGIN).
   */
  state: "pending" | "compiling" | "local";
}

/** What the scheduler told one monitor login. */
export interface IceccSnapshot {
  /** Where the monitor connected (for a forwarded connection: the address the forward dialed). */
  scheduler: { host: string; port: number; protocol: number };
  /** Daemons connected to the scheduler, by name. */
  daemons: IceccDaemon[];
  /** Jobs announced during the window and not finished within it, by id. */
  jobs: IceccJob[];
  /** Milliseconds the monitor listened after logging in. */
  listenedMs: number;
}

/** The one-line error of a failed monitor session: unreachable, not icecream, malformed, too slow. */
export class IceccMonitorError extends Error {}

/** A byte stream to the scheduler and how to end it; `failure()` may explain an early end (ssh's stderr). */
export interface MonitorTransport {
  stream: Duplex;
  failure(): string | undefined;
  /** Resolves once whatever carries the stream has finished (ssh exited), so `failure()` is complete. */
  done: Promise<void>;
  close(): void;
}

/** A plain TCP connection to `host:port` (node:net). */
export function tcpTransport(host: string, port: number): MonitorTransport {
  const socket = netConnect({ host, port });
  return { stream: socket, failure: () => undefined, done: Promise.resolve(), close: () => socket.destroy() };
}

/**
 * A connection to `host:port` as seen from `target`, through ssh's stdio forwarding (`ssh -W host:port`,
 * ssh(1)): the node's sshd dials the address, so a scheduler bound to the node's tailnet interface and
 * fenced off by its firewall is reached as from the node itself. Needs the node's sshd to allow TCP
 * forwarding (OpenSSH's default `AllowTcpForwarding yes`). `failure()` is ssh's last stderr line; ssh's
 * bare `stdio forwarding failed` (sshd did not open the connection: nothing listens there, or forwarding is
 * off; at LogLevel=ERROR ssh does not say which) is spelled out.
 */
export function sshForwardTransport(target: SshTarget, host: string, port: number): MonitorTransport {
  const args = sshArgs(target, { stdin: true });
  const dest = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  args.splice(args.indexOf("--"), 0, "-W", dest);
  const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4096)));
  child.on("error", (err) => (stderr += `\nssh: ${err.message}`));
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  const done = new Promise<void>((resolve) => child.once("close", () => resolve()));
  return {
    stream,
    done,
    failure: () => {
      const last = stderr.trim().split("\n").filter((l) => l.trim()).at(-1)?.trim();
      return last === "stdio forwarding failed" ? `sshd on ${target.name} did not connect to ${dest}: nothing listens there, or its AllowTcpForwarding is off (ssh: ${last})` : last;
    },
    close: () => {
      stream.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/** Options of one monitor session. */
export interface MonitorOptions {
  /** The scheduler's address as reported in the snapshot and in errors. */
  host: string;
  port: number;
  /** Overall limit in ms for connecting, the handshake and the whole session (default 5000). */
  timeoutMs?: number;
  /** How long to listen after logging in, ms (default 1500). */
  windowMs?: number;
  /** Daemon names to wait for: listening ends as soon as each has reported (default: listen the whole window). */
  expect?: string[];
  /** Ends listening as soon as it returns true for the snapshot so far (checked after each message). */
  until?: (snapshot: IceccSnapshot) => boolean;
  /**
   * Called once, at the scheduler's first message after the login: from then on it has the monitor in its
   * list, so what happens next reaches it (a login only sent may still be unread when a job begins).
   */
  onAnswer?: () => void;
}

/** Reads fields of one message body; each read past its end throws {@link IceccMonitorError}. */
class BodyReader {
  private at = 4;
  constructor(
    private readonly body: Buffer,
    private readonly what: string,
  ) {}
  u32(): number {
    if (this.at + 4 > this.body.length) throw new IceccMonitorError(`malformed ${this.what} message: it ends inside a number field`);
    const v = this.body.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  /** A string: uint32 length counting the NUL, the bytes, the NUL (services/comm.cpp `operator>>(string &)`). */
  str(): string {
    const len = this.u32();
    if (len === 0) return "";
    if (this.at + len > this.body.length) throw new IceccMonitorError(`malformed ${this.what} message: a string of ${len} bytes runs past its end`);
    const bytes = this.body.subarray(this.at, this.at + len);
    this.at += len;
    const nul = bytes.indexOf(0);
    return bytes.subarray(0, nul === -1 ? bytes.length : nul).toString("utf8");
  }
  end(): void {
    if (this.at !== this.body.length) throw new IceccMonitorError(`malformed ${this.what} message: ${this.body.length - this.at} bytes left over`);
  }
}

/** Parses a MON_STATS text (`Key:value` lines, scheduler/scheduler.cpp `handle_monitor_stats`). */
export function parseStatsText(text: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) attrs.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return attrs;
}

/** The state a session builds from the scheduler's messages. */
class ClusterView {
  readonly hosts = new Map<number, IceccDaemon>();
  readonly jobs = new Map<number, { id: number; file: string; language: string | null; clientId: number | null; serverId: number | null; state: IceccJob["state"] }>();

  apply(body: Buffer): void {
    const type = body.readUInt32BE(0);
    switch (type) {
      case MSG.MON_STATS: {
        const r = new BodyReader(body, "MON_STATS");
        const hostId = r.u32();
        const text = r.str();
        r.end();
        const a = parseStatsText(text);
        // "State:Offline" (no Name) when a daemon leaves (scheduler.cpp `handle_end`); icecream-sundae drops it too.
        if (!a.has("Name")) {
          this.hosts.delete(hostId);
          return;
        }
        const num = (k: string) => {
          const n = Number(a.get(k));
          return Number.isFinite(n) ? n : 0;
        };
        const old = this.hosts.get(hostId);
        this.hosts.set(hostId, {
          hostId,
          name: a.get("Name") ?? "",
          ip: a.get("IP") ?? old?.ip ?? "",
          platform: a.get("Platform") ?? old?.platform ?? "",
          maxJobs: a.has("MaxJobs") ? num("MaxJobs") : (old?.maxJobs ?? 0),
          noRemote: a.has("NoRemote") ? a.get("NoRemote") === "true" : (old?.noRemote ?? false),
          load: a.has("Load") ? num("Load") : (old?.load ?? 1000),
          protocol: a.has("Version") ? num("Version") : (old?.protocol ?? 0),
          features: a.get("Features") ?? old?.features ?? "",
          jobs: 0,
        });
        return;
      }
      case MSG.MON_GET_CS: {
        // Protocol >= 29 (services/comm.cpp `MonGetCSMsg::fill_from_channel`): filename, lang, job_id, clientid.
        const r = new BodyReader(body, "MON_GET_CS");
        const file = r.str();
        const lang = r.u32();
        const id = r.u32();
        const clientId = r.u32();
        r.end();
        this.jobs.set(id, { id, file, language: LANGUAGES[lang] ?? `language ${lang}`, clientId, serverId: null, state: "pending" });
        return;
      }
      case MSG.MON_JOB_BEGIN: {
        const r = new BodyReader(body, "MON_JOB_BEGIN");
        const id = r.u32();
        r.u32(); // stime: the client's start time, seconds since the epoch
        const serverId = r.u32();
        r.end();
        const job = this.jobs.get(id) ?? { id, file: "", language: null, clientId: null, serverId: null, state: "compiling" as const };
        this.jobs.set(id, { ...job, serverId, state: "compiling" });
        return;
      }
      case MSG.MON_LOCAL_JOB_BEGIN: {
        const r = new BodyReader(body, "MON_LOCAL_JOB_BEGIN");
        const hostId = r.u32();
        const id = r.u32();
        r.u32(); // stime
        const file = r.str();
        r.end();
        this.jobs.set(id, { id, file, language: null, clientId: hostId, serverId: hostId, state: "local" });
        return;
      }
      case MSG.MON_JOB_DONE:
      case MSG.JOB_LOCAL_DONE: {
        // JobDoneMsg starts with job_id (services/comm.cpp `JobDoneMsg::fill_from_channel`); its other fields
        // (exit code, times, sizes, flags, client count from 39) are not needed here.
        const r = new BodyReader(body, type === MSG.MON_JOB_DONE ? "MON_JOB_DONE" : "JOB_LOCAL_DONE");
        this.jobs.delete(r.u32());
        if (type === MSG.JOB_LOCAL_DONE) r.end();
        return;
      }
      default:
        // Other icecream messages are not sent to monitors; skipped by their length, like any future addition.
        return;
    }
  }

  snapshot(scheduler: IceccSnapshot["scheduler"], listenedMs: number): IceccSnapshot {
    const nameOf = (id: number | null) => (id === null ? null : (this.hosts.get(id)?.name ?? null));
    const jobs: IceccJob[] = [...this.jobs.values()]
      .sort((a, b) => a.id - b.id)
      .map((j) => ({ id: j.id, file: j.file, language: j.language, client: nameOf(j.clientId), server: nameOf(j.serverId), state: j.state }));
    const daemons = [...this.hosts.values()]
      .map((d) => ({ ...d, jobs: [...this.jobs.values()].filter((j) => j.serverId === d.hostId).length }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.hostId - b.hostId));
    return { scheduler, daemons, jobs, listenedMs };
  }
}

/** A big-endian uint32 frame: length then body (services/comm.cpp `send_msg`). */
export function frame(body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/**
 * Logs in to the scheduler over `transport` as a monitor and resolves with what it reports within the
 * window. The transport is always closed when this settles.
 * @throws IceccMonitorError (one line, naming `opts.host:opts.port`) when the connection fails or ends
 *   early, the peer does not speak icecream's protocol, a frame is oversized or malformed, or the handshake
 *   does not finish within `timeoutMs`.
 */
export function monitorScheduler(transport: MonitorTransport, opts: MonitorOptions): Promise<IceccSnapshot> {
  const where = `icecc scheduler ${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${opts.port}`;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const windowMs = opts.windowMs ?? 1500;
  const expect = new Set(opts.expect ?? []);
  const view = new ClusterView();
  const { stream } = transport;

  return new Promise<IceccSnapshot>((resolve, reject) => {
    let settled = false;
    let buf: Buffer = Buffer.alloc(0);
    let phase: "first" | "second" | "messages" = "first";
    let protocol = 0;
    let loggedInAt = 0;
    let answered = false;
    let windowTimer: NodeJS.Timeout | undefined;

    const finish = (err: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(overall);
      clearTimeout(windowTimer);
      transport.close();
      if (err !== null) reject(new IceccMonitorError(`${where}: ${err}`));
      else resolve(view.snapshot({ host: opts.host, port: opts.port, protocol }, Date.now() - loggedInAt));
    };
    const overall = setTimeout(() => {
      finish(phase === "messages" ? `no answer to the monitor login within ${timeoutMs / 1000} s` : `no icecream protocol handshake within ${timeoutMs / 1000} s (is it an icecc scheduler?)`);
    }, timeoutMs);
    const allExpectedSeen = () => expect.size > 0 && [...expect].every((name) => [...view.hosts.values()].some((d) => d.name === name));

    const onData = (chunk: Buffer) => {
      if (settled) return;
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      try {
        while (!settled) {
          if (phase !== "messages") {
            if (buf.length < 4) return;
            const v = buf.readUInt32LE(0);
            buf = buf.subarray(4);
            if (phase === "first") {
              if (v < MIN_PEER_VERSION || v > MAX_PEER_VERSION) {
                const ascii = /^[\x20-\x7e]{4}$/.test(u32le(v).toString("latin1")) ? ` ("${u32le(v).toString("latin1")}…")` : "";
                throw new IceccMonitorError(`not an icecream scheduler: it opened with ${v}${ascii}, not a protocol version (${MIN_PEER_VERSION}–${MAX_PEER_VERSION})`);
              }
              protocol = Math.min(v, MONITOR_PROTOCOL_VERSION);
              stream.write(u32le(protocol));
              phase = "second";
            } else {
              if (v !== protocol) throw new IceccMonitorError(`protocol handshake failed: it confirmed version ${v}, expected ${protocol}`);
              if (protocol < MIN_MONITOR_PROTOCOL_VERSION) {
                throw new IceccMonitorError(`it speaks icecream protocol ${protocol}; this monitor reads ${MIN_MONITOR_PROTOCOL_VERSION} or newer (icecream 1.0+)`);
              }
              const login = Buffer.alloc(4);
              login.writeUInt32BE(MSG.MON_LOGIN);
              stream.write(frame(login));
              phase = "messages";
              loggedInAt = Date.now();
              windowTimer = setTimeout(() => finish(null), windowMs);
            }
            continue;
          }
          if (buf.length < 4) return;
          const len = buf.readUInt32BE(0);
          if (len > MAX_MESSAGE_BYTES) throw new IceccMonitorError(`refused a message of ${len} bytes: icecream's limit is ${MAX_MESSAGE_BYTES} (MAX_MSG_SIZE)`);
          if (len < 4) throw new IceccMonitorError(`malformed message: ${len} bytes, too short for a message type`);
          if (buf.length < 4 + len) return;
          const body = buf.subarray(4, 4 + len);
          buf = buf.subarray(4 + len);
          const type = body.readUInt32BE(0);
          if (type <= MSG.UNKNOWN || type > MSG.NO_CS) throw new IceccMonitorError(`malformed message: type ${type} is not an icecream message`);
          view.apply(body);
          if (!answered) {
            answered = true;
            opts.onAnswer?.();
          }
          if (allExpectedSeen() || opts.until?.(view.snapshot({ host: opts.host, port: opts.port, protocol }, Date.now() - loggedInAt))) finish(null);
        }
      } catch (err) {
        finish(err instanceof IceccMonitorError ? err.message : `unreadable answer: ${(err as Error).message}`);
      }
    };
    const onEnd = (cause?: string) => {
      const when = phase === "messages" ? "after the monitor login" : "during the protocol handshake";
      // Wait for the carrier (ssh) to finish so its reason is complete; the overall timeout still bounds this.
      void transport.done.then(() => {
        const detail = transport.failure() ?? cause;
        finish(`the connection ended ${when}${detail ? `: ${detail}` : ""}`);
      });
    };

    stream.on("data", onData);
    stream.on("end", () => onEnd());
    stream.on("close", () => onEnd());
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNREFUSED") finish("connection refused (no scheduler listening there)");
      else if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN") finish(`cannot resolve ${opts.host}`);
      else onEnd(err.message);
    });
    // Our version first, as icecream's own MsgChannel constructor does (4 bytes LE).
    stream.write(u32le(MONITOR_PROTOCOL_VERSION), (err) => {
      if (err) onEnd(err.message);
    });
  });
}

/** Logs in to the scheduler at `host:port` over plain TCP (see {@link monitorScheduler}). */
export function monitorSchedulerTcp(opts: MonitorOptions): Promise<IceccSnapshot> {
  return monitorScheduler(tcpTransport(opts.host, opts.port), opts);
}
