/**
 * `--help` answers the same way for every verb and subcommand, before anything else is checked: the usage on
 * stdout, nothing on stderr, exit 0, with no queue URL, token, fleet file or arguments around (`fleet task
 * list --help` used to fail with "no queue URL" and `fleet task show --help` with "expected 1 argument").
 * An unknown subcommand stays an error (exit 2) with or without `--help`. The operator's verbs share one
 * flag parser (cli/verb.ts `parseVerb`): the same messages for an unknown option, a missing value
 * and a stray word, each followed by the verb's usage.
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

  it.each(["plan", "schema", "status", "exec", "logs", "restart", "add-machine", "pin-artifacts", "drift", "worker", "queue serve", ...TASK.map((c) => `task ${c}`)])("fleet %s --bogus: exit 2, the verb's one-line error, then its usage", (verb) => {
    const r = fleet(...verb.split(" "), "--bogus");
    const lines = r.stderr.split("\n");
    expect({ code: r.code, stdout: r.stdout, first: lines[0], usage: lines[1]!.startsWith(`usage: fleet ${verb.split(" ")[0]}`) }).toEqual({
      code: 2,
      stdout: "",
      first: `fleet ${verb}: unknown option --bogus${verb === "exec" ? " (put the command after --)" : ""}`,
      usage: true,
    });
  });

  it.each([
    [["status", "--fleet"], "fleet status: option --fleet needs a value"],
    [["plan", "--json=yes"], "fleet plan: option --json takes no value"],
    [["plan", "extra"], 'fleet plan: unexpected argument "extra"'],
    [["add-machine", "rpi9"], 'fleet add-machine: unexpected argument "rpi9" (answers are flags, e.g. --name rpi9)'],
    [["logs", "-x"], "fleet logs: unknown option -x"],
    // -h after `--` is a word of the command, not a request for help: the mistake before it is still reported.
    [["exec", "all", "--bogus", "--", "grep", "-h", "x"], "fleet exec: unknown option --bogus (put the command after --)"],
  ])("fleet %j: exit 2 with %s", (args, message) => {
    const r = fleet(...args);
    expect([r.code, r.stderr.split("\n")[0]]).toEqual([2, message]);
  });

  it("--help wins over a mistake on the same line", () => {
    const r = fleet("status", "--bogus", "--help");
    expect([r.code, r.stderr, r.stdout.startsWith("usage: fleet status")]).toEqual([0, "", true]);
  });

  it("an unknown task subcommand is an error even with --help", () => {
    const r = fleet("task", "lsit", "--help");
    expect([r.code, r.stdout, r.stderr.split("\n")[0]]).toEqual([2, "", 'fleet task: unknown command "lsit".']);
  });
});
