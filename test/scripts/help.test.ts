/**
 * `--help` answers the same way for every verb and subcommand, before anything else is checked: the usage on
 * stdout, nothing on stderr, exit 0, with no queue URL, token, fleet file or arguments around (`fleet task
 * list --help` used to fail with "no queue URL" and `fleet task show --help` with "expected 1 argument").
 * An unknown subcommand stays an error (exit 2) with or without `--help`.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const BIN = join(process.cwd(), "bin/fleet.mjs");
/** An empty directory (no fleet.yaml) and an environment without the queue's URL and token. */
const cwd = mkdtempSync(join(tmpdir(), "fleet-help-"));
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !["FLEET_QUEUE_URL", "FLEET_TOKEN"].includes(k)));
const fleet = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

const VERBS = ["plan", "schema", "status", "exec", "logs", "restart", "add-machine", "pin-artifacts", "drift", "queue", "worker", "task"];
const TASK = ["delegate", "list", "show", "wait", "cancel", "priority", "status"];

describe("--help", () => {
  it.each([...VERBS, ...TASK.map((c) => `task ${c}`), "queue serve"])("fleet %s --help: usage on stdout, exit 0", (words) => {
    const r = fleet(...words.split(" "), "--help");
    expect({ code: r.code, stderr: r.stderr, first: r.stdout.split("\n")[0]!.replace(/ .*/, "") }).toEqual({ code: 0, stderr: "", first: "usage:" });
  });

  it("an unknown task subcommand is an error even with --help", () => {
    const r = fleet("task", "lsit", "--help");
    expect([r.code, r.stdout, r.stderr.split("\n")[0]]).toEqual([2, "", 'fleet task: unknown command "lsit".']);
  });
});
