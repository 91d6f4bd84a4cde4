// @needs sudo
/**
 * A Linux/macOS install too long for one command line (roles/bundle.ts `remoteInvocation`, past
 * POSIX_COMMAND_LINE_LIMIT) run for real by sh as the SSH server would: the script arrives as the first bytes
 * of stdin, the secrets after it still reach it, its temp file is gone after, a short stdin runs nothing, and
 * the command line stays short.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import { POSIX_COMMAND_LINE_LIMIT, remoteCommand, remoteInvocation } from "../../roles/bundle.js";

const fleet = loadFleet("fleet.yaml");
const rpi1 = fleet.nodes.find((n) => n.name === "rpi1")!;
/** A script past the limit: reads its secret line from stdin, says who it runs as, then a long comment. */
const big = `read -r fk_line; echo "secret line: $fk_line"; id -un; echo "args: $#"\n# ${"x".repeat(POSIX_COMMAND_LINE_LIMIT)}\n`;
const leftovers = () => readdirSync("/tmp").filter((f) => f.startsWith("fleetkit-install."));

describe("an install too long for the command line travels on stdin", () => {
  const inv = remoteInvocation(rpi1, "node", big);
  const run = (input: string) => spawnSync("sh", ["-c", inv.command], { input, encoding: "utf8" });

  it("runs the script as root with the secrets that follow it, and leaves no temp file", () => {
    const before = leftovers();
    expect(Buffer.byteLength(inv.command)).toBeLessThan(400);
    const r = run(`${inv.stdinPrefix}queueToken=secret-value\n`);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, "secret line: queueToken=secret-value\nroot\nargs: 0\n", ""]);
    expect(leftovers()).toEqual(before);
  });

  it.each([
    ["cut short", (p: string) => p.slice(0, 5000)],
    ["empty", () => ""],
  ])("stdin %s: nothing runs, one line says why, no temp file stays", (_what, cut) => {
    const before = leftovers();
    const r = run(cut(inv.stdinPrefix));
    expect([r.status, r.stdout, r.stderr]).toEqual([1, "", `fleetkit: the install script (${Buffer.byteLength(inv.stdinPrefix)} bytes) did not arrive whole on stdin\n`]);
    expect(leftovers()).toEqual(before);
  });

  it("a short script stays on the command line; an uninstall that long is refused, naming the node", () => {
    expect(remoteInvocation(rpi1, "node", "echo hi\n")).toEqual({ command: "sudo -n sh -c 'echo hi\n'", stdinPrefix: "" });
    expect(() => remoteCommand(rpi1, "node", big)).toThrow(
      `the script for node rpi1 is ${Buffer.byteLength(inv.stdinPrefix)} bytes, too long for one command line (${POSIX_COMMAND_LINE_LIMIT}); only a role install can carry it (on stdin)`,
    );
  });
});
