// @needs icecc-scheduler iceccd icecc gcc
/**
 * The icecc monitor client (cli/icecc-monitor.ts) against Debian's real `icecc-scheduler` and `iceccd` on
 * loopback (test/cli/icecc.ts): it sees the daemons with their names, platform, max jobs and no-remote, and
 * a job of a real `icecc gcc -c` while it compiles. Against peers that are not a scheduler (nothing
 * listening, an HTTP server, a silent port, a peer sending oversized or garbage frames) it rejects with
 * one line within its own timeout.
 */
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frame, monitorSchedulerTcp, MSG, type IceccSnapshot } from "../../cli/icecc-monitor.js";
import { freePort, startIcecc, type TestIcecc } from "./icecc.js";

/** The platform iceccd reports on this machine (daemon/main.cpp `determine_platform`: uname's machine on Linux). */
const PLATFORM = execFileSync("uname", ["-m"], { encoding: "utf8" }).trim();

let icecc: TestIcecc;
beforeAll(async () => {
  icecc = await startIcecc([
    { name: "alpha", maxJobs: 2 },
    { name: "beta", maxJobs: 1, noRemote: true },
  ]);
}, 60_000);
afterAll(async () => {
  await icecc?.stop();
});

describe("against a real scheduler", () => {
  it("lists every daemon with its name, IP, platform, max jobs and no-remote, and the negotiated protocol", async () => {
    const snap = await monitorSchedulerTcp({ host: "127.0.0.1", port: icecc.port, expect: ["alpha", "beta"] });
    expect(snap.scheduler).toEqual({ host: "127.0.0.1", port: icecc.port, protocol: expect.any(Number) });
    // Debian's icecc 1.4 speaks 43, icecream's master 44; this client announces 44 and takes the smaller.
    expect(snap.scheduler.protocol).toBeGreaterThanOrEqual(43);
    expect(snap.daemons.map(({ name, ip, platform, maxJobs, noRemote, jobs }) => ({ name, ip, platform, maxJobs, noRemote, jobs }))).toEqual([
      { name: "alpha", ip: "127.0.0.1", platform: PLATFORM, maxJobs: 2, noRemote: false, jobs: 0 },
      { name: "beta", ip: "127.0.0.1", platform: PLATFORM, maxJobs: 1, noRemote: true, jobs: 0 },
    ]);
    for (const d of snap.daemons) {
      expect(d.load).toBeGreaterThanOrEqual(0);
      expect(d.load).toBeLessThanOrEqual(1000);
      expect(d.protocol).toBe(snap.scheduler.protocol);
      expect(d.features).toMatch(/^(env_\w+ ?)*$/);
    }
    expect(snap.jobs).toEqual([]);
    // It stopped as soon as both daemons had reported, well inside the 1.5 s window.
    expect(snap.listenedMs).toBeLessThan(1500);
  });

  it("sees the job of a running `icecc gcc -c`, with its file, client and compiling daemon", async () => {
    // A C file gcc -O2 spends seconds on (a few functions with large expanded expressions).
    const src = join(icecc.dir, "slow.c");
    const fns = Array.from({ length: 20 }, (_, i) => `int f${i}(int y) { return B(y + ${i}); }`);
    writeFileSync(src, ["#define A(x) x*x+x*x+x*x+x*x", "#define B(x) A(A(A(x)))", ...fns, ""].join("\n"));
    const compile = (out: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const p = spawn("icecc", ["gcc", "-O2", "-c", src, "-o", join(icecc.dir, out)], { cwd: icecc.dir, env: icecc.clientEnv("alpha"), stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        p.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
        p.on("close", (code) => resolve({ code, stderr }));
      });
    // The first compile makes alpha pack its native compiler environment (icecc-create-env); after that a
    // compile asks the scheduler for a host at once.
    expect(await compile("warm.o")).toEqual({ code: 0, stderr: "" });

    let compiled: Promise<{ code: number | null; stderr: string }> | undefined;
    const seen = (s: IceccSnapshot) => s.jobs.some((j) => j.state === "compiling");
    const snap = await monitorSchedulerTcp({
      host: "127.0.0.1",
      port: icecc.port,
      windowMs: 20_000,
      timeoutMs: 30_000,
      until: seen,
      // Started once the scheduler has answered the login (its daemons' stats), so it reports the job to us.
      onAnswer: () => (compiled = compile("slow.o")),
    });
    expect((await compiled)!).toEqual({ code: 0, stderr: "" });
    // The scheduler gives the job to alpha itself (beta takes no remote jobs); the file name is as the
    // client sent it (icecream's shorten_filename drops the leading "/"). On a machine so busy that alpha
    // reports load 1000 the whole window, the scheduler holds the job unassigned (scheduler/compileserver.cpp
    // `is_eligible_now`: load < 1000) and it stays pending: then the job is still seen, without a server.
    const job = snap.jobs[0];
    const server = job?.state === "pending" ? null : "alpha";
    expect(snap.jobs).toEqual([{ id: expect.any(Number), file: src.slice(1), language: "C", client: "alpha", server, state: server ? "compiling" : "pending" }]);
    expect(snap.daemons.map((d) => [d.name, d.jobs])).toEqual([["alpha", server ? 1 : 0], ["beta", 0]]);
  }, 120_000);
});

/** A fake peer: answers the handshake with version 43, waits for the login frame, then sends `after`. */
async function fakeScheduler(after: (sock: Socket) => void): Promise<{ port: number; server: Server }> {
  const server = createServer((sock) => {
    let got = 0;
    sock.on("error", () => {});
    sock.write(Buffer.from([43, 0, 0, 0, 43, 0, 0, 0]));
    sock.on("data", (c) => {
      const before = got;
      got += c.length;
      // version (4) + answer (4) + the MON_LOGIN frame (8)
      if (before < 16 && got >= 16) after(sock);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as { port: number }).port, server };
}

const u32 = (...ns: number[]) => Buffer.concat(ns.map((n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}));
const str = (s: string) => Buffer.concat([u32(Buffer.byteLength(s) + 1), Buffer.from(s + "\0")]);

describe("against peers that are not a working scheduler: one line, within the client's timeout", () => {
  it("nothing listening", async () => {
    const port = await freePort();
    await expect(monitorSchedulerTcp({ host: "127.0.0.1", port, timeoutMs: 2000 })).rejects.toThrow(`icecc scheduler 127.0.0.1:${port}: connection refused (no scheduler listening there)`);
  });

  it("an HTTP server", async () => {
    const http = createHttpServer((_req, res) => res.end("hello"));
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    const port = (http.address() as { port: number }).port;
    try {
      await expect(monitorSchedulerTcp({ host: "127.0.0.1", port, timeoutMs: 2000 })).rejects.toThrow(
        `icecc scheduler 127.0.0.1:${port}: not an icecream scheduler: it opened with 1347703880 ("HTTP…"), not a protocol version (21–1048576)`,
      );
    } finally {
      http.close();
    }
  });

  it("a port that says nothing", async () => {
    const held: Socket[] = [];
    const server = createServer((sock) => held.push(sock));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      await expect(monitorSchedulerTcp({ host: "127.0.0.1", port, timeoutMs: 1000 })).rejects.toThrow(`icecc scheduler 127.0.0.1:${port}: no icecream protocol handshake within 1 s (is it an icecc scheduler?)`);
    } finally {
      for (const sock of held) sock.destroy();
      server.close();
    }
  });

  it.each([
    ["an oversized frame", u32(2 * 1024 * 1024, MSG.MON_STATS), "refused a message of 2097152 bytes: icecream's limit is 1048576 (MAX_MSG_SIZE)"],
    ["a frame too short for a type", u32(2), "malformed message: 2 bytes, too short for a message type"],
    ["a type that is not icecream's", frame(u32(0x12345678, 1)), "malformed message: type 305419896 is not an icecream message"],
    ["a string running past its message", frame(Buffer.concat([u32(MSG.MON_STATS, 1, 100), Buffer.from("Name:x\n")])), "malformed MON_STATS message: a string of 100 bytes runs past its end"],
    ["bytes left over", frame(Buffer.concat([u32(MSG.MON_STATS, 1), str("Name:x\n"), u32(7)])), "malformed MON_STATS message: 4 bytes left over"],
    ["a connection closed after the login", null, "the connection ended after the monitor login"],
  ])("%s", async (_what, bytes, message) => {
    const { port, server } = await fakeScheduler((sock) => (bytes ? sock.write(bytes) : sock.end()));
    try {
      await expect(monitorSchedulerTcp({ host: "127.0.0.1", port, timeoutMs: 2000, windowMs: 1500 })).rejects.toThrow(`icecc scheduler 127.0.0.1:${port}: ${message}`);
    } finally {
      server.close();
    }
  });

  it("a bad handshake answer", async () => {
    const server = createServer((sock) => sock.end(Buffer.from([43, 0, 0, 0, 40, 0, 0, 0])));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      await expect(monitorSchedulerTcp({ host: "127.0.0.1", port, timeoutMs: 2000 })).rejects.toThrow(`icecc scheduler 127.0.0.1:${port}: protocol handshake failed: it confirmed version 40, expected 43`);
    } finally {
      server.close();
    }
  });
});

describe("the messages a scheduler sends a monitor (services/comm.cpp encodings)", () => {
  it("tracks daemons and jobs: a daemon going offline, a remote job done, a local job still running", async () => {
    const stats = (id: number, text: string) => frame(Buffer.concat([u32(MSG.MON_STATS, id), str(text)]));
    const bytes = Buffer.concat([
      stats(1, "Name:rpi1\nIP:100.64.0.1\nMaxJobs:4\nNoRemote:false\nPlatform:aarch64\nVersion:43\nFeatures:env_xz env_zstd\nSpeed:0.000000\nLoad:120\n"),
      stats(2, "Name:mac1\nIP:100.64.0.2\nMaxJobs:8\nNoRemote:true\nPlatform:Darwin_arm64\nVersion:44\nFeatures:env_xz\nSpeed:0.000000\nLoad:1000\n"),
      stats(3, "Name:gone\nIP:100.64.0.3\nMaxJobs:1\nNoRemote:false\nPlatform:x86_64\nVersion:43\nFeatures:\nSpeed:0.000000\nLoad:0\n"),
      stats(3, "State:Offline\n"),
      // job 7: rpi1 asks (MON_GET_CS: file, lang, job id, client host id), rpi1 compiles it (MON_JOB_BEGIN: id, stime, host id)
      frame(Buffer.concat([u32(MSG.MON_GET_CS), str("src/a.cpp"), u32(1, 7, 1)])),
      frame(u32(MSG.MON_JOB_BEGIN, 7, 1700000000, 1)),
      // job 8: asked by mac1, begun on rpi1, done (MON_JOB_DONE: JobDoneMsg's 11 numbers + client count)
      frame(Buffer.concat([u32(MSG.MON_GET_CS), str("b.c"), u32(0, 8, 2)])),
      frame(u32(MSG.MON_JOB_BEGIN, 8, 1700000000, 1)),
      frame(u32(MSG.MON_JOB_DONE, 8, 0, 10, 9, 1, 0, 100, 200, 50, 90, 0, 1)),
      // job 9: a local job on mac1 (MON_LOCAL_JOB_BEGIN: host id, job id, stime, file); job 10 local and done
      frame(Buffer.concat([u32(MSG.MON_LOCAL_JOB_BEGIN, 2, 9, 1700000000), str("c.m")])),
      frame(Buffer.concat([u32(MSG.MON_LOCAL_JOB_BEGIN, 2, 10, 1700000000), str("d.c")])),
      frame(u32(MSG.JOB_LOCAL_DONE, 10)),
      // job 11: still waiting for a host
      frame(Buffer.concat([u32(MSG.MON_GET_CS), str("e.c"), u32(0, 11, 1)])),
    ]);
    const { port, server } = await fakeScheduler((sock) => sock.write(bytes));
    try {
      const snap = await monitorSchedulerTcp({ host: "127.0.0.1", port, windowMs: 5000, until: (s) => s.jobs.some((j) => j.id === 11) });
      expect(snap.scheduler).toEqual({ host: "127.0.0.1", port, protocol: 43 });
      expect(snap.daemons).toEqual([
        { hostId: 2, name: "mac1", ip: "100.64.0.2", platform: "Darwin_arm64", maxJobs: 8, noRemote: true, load: 1000, protocol: 44, features: "env_xz", jobs: 1 },
        { hostId: 1, name: "rpi1", ip: "100.64.0.1", platform: "aarch64", maxJobs: 4, noRemote: false, load: 120, protocol: 43, features: "env_xz env_zstd", jobs: 1 },
      ]);
      expect(snap.jobs).toEqual([
        { id: 7, file: "src/a.cpp", language: "C++", client: "rpi1", server: "rpi1", state: "compiling" },
        { id: 9, file: "c.m", language: null, client: "mac1", server: "mac1", state: "local" },
        { id: 11, file: "e.c", language: "C", client: "rpi1", server: null, state: "pending" },
      ]);
    } finally {
      server.close();
    }
  });
});
