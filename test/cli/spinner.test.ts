// @needs script
/**
 * Long steps show zx's spinner on a terminal and nowhere else: `fleet status` run on a pseudo-terminal
 * (util-linux `script`) draws it on stderr; through a pipe, or with `--json`, the output has no trace of it.
 * The fleet's nodes sit on loopback on a port that accepts connections and never answers, so each probe
 * takes its whole `--timeout 1` (long enough for the spinner to draw).
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FLEET_BIN, ROOT, tempDir } from "../runtime/harness.js";

const dir = tempDir("fleet-spinner-");
const fleetFile = join(dir, "fleet.yaml");
const held: Socket[] = [];
const silent = createServer((s) => held.push(s));
beforeAll(async () => {
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const port = (silent.address() as { port: number }).port;
  writeFileSync(
    fleetFile,
    ["fleet: spin", `defaults: { sshPort: ${port}, perDialTimeoutSeconds: 2 }`, "nodes:", "  a: { host: 127.0.0.1, os: debian, arch: x86_64, roles: [iceccd, icecc-scheduler] }", "  b: { host: localhost, os: debian, arch: x86_64, roles: [iceccd] }", ""].join("\n"),
  );
});
afterAll(() => {
  for (const s of held) s.destroy();
  silent.close();
});
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "CI"));
const FRAME = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] probing 2 node\(s\)/;

/** Runs `fleet status …` on a pseudo-terminal; returns everything the terminal showed. */
function onTerminal(...args: string[]): string {
  const cmd = [process.execPath, FLEET_BIN, "status", "--timeout", "1", ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const r = spawnSync("script", ["-qec", cmd, "/dev/null"], { cwd: ROOT, env, encoding: "utf8", timeout: 60_000 });
  return r.stdout;
}

describe("spinner", () => {
  it("fleet status on a terminal draws the spinner while it probes", () => {
    expect(onTerminal("--fleet", fleetFile)).toMatch(FRAME);
  });

  it("--json on a terminal: no spinner, the JSON parses", () => {
    const out = onTerminal("--fleet", fleetFile, "--json");
    expect(out).not.toMatch(/probing/);
    expect(JSON.parse(out.replace(/\r\n/g, "\n")).nodes).toHaveLength(2);
  });

  it("through a pipe: no spinner on stderr", () => {
    const r = spawnSync(process.execPath, [FLEET_BIN, "status", "--timeout", "1", "--fleet", fleetFile], { cwd: ROOT, env, encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).not.toMatch(/probing/);
    expect(r.stdout).toMatch(/^node  ssh /);
  });
});
