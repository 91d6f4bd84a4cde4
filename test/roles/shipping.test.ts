// @needs sudo
/**
 * File-shipped bundles (roles/shipping.ts) run for real by sh as the SSH server would, as root through
 * `sudo -n`, in a stand-in for the node user's home holding what CopyToRemote copied: the install runs from
 * root's checked copy with the secrets on stdin, a retry needs no new copy, a changed or missing copy runs
 * nothing and says so in one line, a new version removes the old (and every copy of the role the node's copy
 * left in the user's home, but no other role's), and the uninstall runs from root's copy. Plus the local
 * directory a node's copy sends (`writeNodeBundles`): content-addressed, hard links to the role directories.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import type { RoleName } from "../../model/fleet.js";
import { renderBundles } from "../../stacks/plan.js";
import { POSIX_COMMAND_LINE_LIMIT, remoteInvocation, sha256Hex } from "../../roles/bundle.js";
import { bundleShipping, NODE_BUNDLE_DIR, shipHelper, writeBundleFiles, writeNodeBundles } from "../../roles/shipping.js";
import { platformFor } from "../../roles/platform.js";
import type { Bundle } from "../../roles/types.js";

const fleet = loadFleet("fleet.yaml");
const rpi1 = fleet.nodes.find((n) => n.name === "rpi1")!;
const ROLE = `fkshiptest${process.pid}` as RoleName;
const ROOT = "/var/lib/fleetkit/bundles";
const home = mkdtempSync(join(tmpdir(), "fleetkit-ship-home-"));
/** The role marker an install leaves (roles/bundle.ts fk_finish). */
const MARKER = `/var/lib/fleetkit/roles/${ROLE}.hash`;

/** A bundle of role {@link ROLE} whose install echoes its secret line, its user and directory, and `version`. */
function bundle(version: string): Bundle {
  const real = renderBundles(fleet).get("rpi1")!.find((b) => b.role === "claude")!;
  return {
    ...real,
    role: ROLE,
    hash: sha256Hex(`test bundle ${version}`),
    install: `read -r fk_line; echo "secret: $fk_line"; id -un; pwd; echo "fleetkit: ${ROLE} ${version}"\n`,
    uninstall: `echo "fleetkit: ${ROLE} removed (${version})"\n`,
  };
}

/** Runs a command line as sshd would, in the node user's home, with `input` on stdin. */
const run = (line: string, input = "") => spawnSync("sh", ["-c", line], { cwd: home, input, encoding: "utf8" });
/** The shipping helper of rpi1's platform, and root's copy of it (made by the first install line). */
const HELPER = shipHelper(platformFor(rpi1));
const ROOT_HELPER = `/var/lib/fleetkit/${HELPER.name}`;
const hadHelper = existsSync(ROOT_HELPER);
/** What the node's CopyToRemote leaves in the user's home: the role directory and the helper. */
const copy = (b: Bundle) => {
  const dir = writeBundleFiles(join(home, NODE_BUNDLE_DIR), bundleShipping(rpi1, b));
  writeFileSync(join(home, NODE_BUNDLE_DIR, HELPER.name), HELPER.content);
  return dir;
};
const rootCopies = () => (existsSync(ROOT) ? readdirSync(ROOT).filter((d) => d.startsWith(`${ROLE}.`)).sort() : []);

afterAll(() => {
  for (const d of rootCopies()) rmSync(join(ROOT, d), { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
  rmSync(MARKER, { force: true });
  if (!hadHelper) rmSync(ROOT_HELPER, { force: true });
});

describe("a bundle shipped as files", () => {
  const v1 = bundle("v1");
  const ship = bundleShipping(rpi1, v1);
  const dir = `${ROLE}.${v1.hash}`;

  it("has short command lines naming the bundle and its scripts' sha256, with none of the scripts", () => {
    expect(ship.files).toEqual({ dir, "install.sh": v1.install, "uninstall.sh": v1.uninstall, helper: { name: HELPER.name, content: HELPER.content } });
    expect(ship.stdinPrefix).toBe("");
    for (const line of [ship.create, ship.delete]) {
      expect(Buffer.byteLength(line)).toBeLessThan(2048);
      expect(line).toContain(dir);
      expect(line).not.toContain("read -r fk_line");
    }
    expect(ship.create).toContain(sha256Hex(v1.install));
    expect(ship.create).toContain(` i ${dir} ${sha256Hex(v1.install)} ${sha256Hex(v1.uninstall)} rpi1-bundles'`);
    // The uninstall runs root's copy, checked when it was placed: the line names the bundle only.
    expect(ship.delete).toContain(` u ${dir};`);
  });

  it("runs nothing while the shipping helper is missing or changed in the user's copy, naming the copy to replace; uninstalls need root's", () => {
    const saved = existsSync(ROOT_HELPER) ? readFileSync(ROOT_HELPER) : undefined;
    rmSync(ROOT_HELPER, { force: true });
    try {
      writeBundleFiles(join(home, NODE_BUNDLE_DIR), ship);
      const refused = `fleetkit: no whole ~/${NODE_BUNDLE_DIR}/${HELPER.name} on this node; nothing was run (pulumi up --replace the URN of rpi1-bundles)\n`;
      const missing = run(ship.create, "queueToken=x\n");
      expect([missing.status, missing.stdout, missing.stderr]).toEqual([1, "", refused]);
      writeFileSync(join(home, NODE_BUNDLE_DIR, HELPER.name), HELPER.content.replace("set -e\n", "set -e\necho pwned > /tmp/fleetkit-ship-pwned\n"));
      const changed = run(ship.create, "queueToken=x\n");
      expect([changed.status, changed.stdout, changed.stderr]).toEqual([1, "", refused]);
      expect([existsSync("/tmp/fleetkit-ship-pwned"), existsSync(ROOT_HELPER), rootCopies()]).toEqual([false, false, []]);
      // Without root's helper an uninstall removes nothing: "removed" when the role was never installed, else why not.
      const gone = run(ship.delete);
      expect([gone.status, gone.stdout, gone.stderr]).toEqual([0, `fleetkit: ${ROLE} removed\n`, ""]);
      mkdirSync(dirname(MARKER), { recursive: true });
      writeFileSync(MARKER, "x\n");
      const kept = run(ship.delete);
      expect([kept.status, kept.stdout, kept.stderr]).toEqual([1, "", `fleetkit: no ${ROOT_HELPER} on this node; nothing was removed (README: forgetting a node)\n`]);
    } finally {
      rmSync(MARKER, { force: true });
      if (saved) writeFileSync(ROOT_HELPER, saved, { mode: 0o600 });
    }
  });

  it("several roles installing at once on a node without root's helper (Pulumi runs independent installs in parallel) all get it", async () => {
    const saved = existsSync(ROOT_HELPER) ? readFileSync(ROOT_HELPER) : undefined;
    rmSync(ROOT_HELPER, { force: true });
    const roles = [1, 2, 3, 4, 5, 6].map((i) => ({ ...bundle(`par${i}`), role: `${ROLE}p${i}` as RoleName }));
    try {
      for (const b of roles) copy(b);
      const runAsync = (line: string) =>
        new Promise<number | null>((resolve) => spawn("sh", ["-c", line], { cwd: home, stdio: ["pipe", "ignore", "ignore"] }).on("close", resolve).stdin!.end("queueToken=p\n"));
      expect(await Promise.all(roles.map((b) => runAsync(bundleShipping(rpi1, b).create)))).toEqual(roles.map(() => 0));
      expect(readFileSync(ROOT_HELPER, "utf8")).toBe(HELPER.content);
      expect(readdirSync(dirname(ROOT_HELPER)).filter((f) => f.startsWith(`${HELPER.name}.`))).toEqual([]);
    } finally {
      for (const b of roles) rmSync(join(ROOT, `${b.role}.${b.hash}`), { recursive: true, force: true });
      if (saved) writeFileSync(ROOT_HELPER, saved, { mode: 0o600 });
    }
  });

  it("runs the install as root from root's checked copy, with the secrets on stdin, and removes the user's copy", () => {
    copy(v1);
    const r = run(ship.create, "queueToken=secret-value\n");
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `secret: queueToken=secret-value\nroot\n${home}\nfleetkit: ${ROLE} v1\n`, ""]);
    expect(rootCopies()).toEqual([dir]);
    expect((statSync(join(ROOT, dir)).mode & 0o777).toString(8)).toBe("700");
    expect(readdirSync(join(ROOT, dir)).sort()).toEqual(["install.sh", "uninstall.sh"]);
    expect(existsSync(join(home, NODE_BUNDLE_DIR, dir))).toBe(false);
  });

  it("runs again (a retried install) from root's copy, without a new copy", () => {
    const r = run(ship.create, "queueToken=again\n");
    expect([r.status, r.stdout]).toEqual([0, `secret: queueToken=again\nroot\n${home}\nfleetkit: ${ROLE} v1\n`]);
  });

  it("runs nothing when the copied install script differs from its sha256, and says so in one line", () => {
    const v2 = bundle("v2");
    const local = copy(v2);
    writeFileSync(join(local, "install.sh"), "echo pwned > /tmp/fleetkit-ship-pwned\n");
    const r = run(bundleShipping(rpi1, v2).create, "queueToken=x\n");
    expect([r.status, r.stdout, r.stderr]).toEqual([1, "", `fleetkit: bundle ${ROLE}.${v2.hash} in ~/${NODE_BUNDLE_DIR}/${ROLE}.${v2.hash} does not match its sha256; nothing was run\n`]);
    expect(existsSync("/tmp/fleetkit-ship-pwned")).toBe(false);
    expect(rootCopies()).toEqual([dir]);
    rmSync(local, { recursive: true });
  });

  it("runs nothing when the copy never arrived, and names what to replace", () => {
    const v3 = bundle("v3");
    const r = run(bundleShipping(rpi1, v3).create, "queueToken=x\n");
    expect([r.status, r.stdout, r.stderr]).toEqual([
      1,
      "",
      `fleetkit: bundle ${ROLE}.${v3.hash} is not in ~/${NODE_BUNDLE_DIR}/${ROLE}.${v3.hash} on this node; the copy before this command did not happen (pulumi up --replace the URN of rpi1-bundles)\n`,
    ]);
  });

  it("a new version installs and removes the old version's copy, and the user's copies of the role (not another role's)", () => {
    const v4 = bundle("v4");
    copy(v4);
    // The node's copy sends every role's directory when one changes: an older one of this role, and another role's, are there too.
    const other = `${ROLE}x.${"c".repeat(64)}`;
    copy(v1);
    mkdirSync(join(home, NODE_BUNDLE_DIR, other));
    const r = run(bundleShipping(rpi1, v4).create, "queueToken=4\n");
    expect([r.status, r.stdout.split("\n").at(-2)]).toEqual([0, `fleetkit: ${ROLE} v4`]);
    expect(rootCopies()).toEqual([`${ROLE}.${v4.hash}`]);
    expect(readdirSync(join(home, NODE_BUNDLE_DIR)).sort()).toEqual([HELPER.name, other].sort());
    rmSync(join(home, NODE_BUNDLE_DIR, other), { recursive: true });
  });

  it("uninstalls from root's copy and removes it; again, with the role gone, it says removed", () => {
    const v4 = bundleShipping(rpi1, bundle("v4"));
    const r = run(v4.delete);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `fleetkit: ${ROLE} removed (v4)\n`, ""]);
    expect(rootCopies()).toEqual([]);
    const again = run(v4.delete);
    expect([again.status, again.stdout, again.stderr]).toEqual([0, `fleetkit: ${ROLE} removed\n`, ""]);
  });

  it("an installed role (its marker there) whose uninstall script is gone: removes nothing and says why", () => {
    const v4 = bundleShipping(rpi1, bundle("v4"));
    mkdirSync(dirname(MARKER), { recursive: true });
    writeFileSync(MARKER, "x\n");
    const r = run(v4.delete);
    expect([r.status, r.stdout, r.stderr]).toEqual([
      1,
      "",
      `fleetkit: the uninstall script of bundle ${v4.files!.dir} is not in ${ROOT}/${v4.files!.dir} on this node; nothing was removed (README: forgetting a node)\n`,
    ]);
    expect(existsSync(MARKER)).toBe(true);
  });

  it("writes local bundle files once, whole, owner-only", () => {
    const local = mkdtempSync(join(tmpdir(), "fleetkit-ship-local-"));
    const path = writeBundleFiles(local, ship);
    expect(path).toBe(join(local, dir));
    expect((statSync(join(path, "install.sh")).mode & 0o777).toString(8)).toBe("600");
    const mtime = statSync(join(path, "install.sh")).mtimeMs;
    expect(writeBundleFiles(local, ship)).toBe(path);
    expect(statSync(join(path, "install.sh")).mtimeMs).toBe(mtime);
    expect(readdirSync(local)).toEqual([dir]);
    rmSync(local, { recursive: true });
  });
});

describe("the directory a node's copy sends", () => {
  const local = mkdtempSync(join(tmpdir(), "fleetkit-ship-node-"));
  afterAll(() => rmSync(local, { recursive: true, force: true }));
  const a = bundleShipping(rpi1, bundle("node-a"));
  const b = bundleShipping(rpi1, { ...bundle("node-b"), role: `${ROLE}b` as RoleName });

  it("holds the shipping helper and each role directory as hard links under nodes/<sha256 of the names>/bundles, written once", () => {
    const dirs = [writeBundleFiles(local, b), writeBundleFiles(local, a)].map((d) => d.slice(local.length + 1));
    const sent = writeNodeBundles(local, dirs, HELPER);
    const id = sha256Hex([HELPER.name, ...[...dirs].sort()].join("\n"));
    expect(sent).toBe(join(local, "nodes", id, "bundles"));
    expect(readdirSync(sent).sort()).toEqual([HELPER.name, ...dirs].sort());
    expect(readFileSync(join(sent, HELPER.name), "utf8")).toBe(HELPER.content);
    for (const [ship, dir] of [[a, dirs[1]!], [b, dirs[0]!]] as const) {
      expect(readdirSync(join(sent, dir)).sort()).toEqual(["install.sh", "uninstall.sh"]);
      expect(readFileSync(join(sent, dir, "install.sh"), "utf8")).toBe(ship.files!["install.sh"]);
      expect(statSync(join(sent, dir, "install.sh")).ino).toBe(statSync(join(local, dir, "install.sh")).ino);
    }
    // The same set (in any order) is the same directory, left as it is; a temporary directory never stays.
    const mtime = statSync(sent).mtimeMs;
    expect(writeNodeBundles(local, [...dirs].reverse(), HELPER)).toBe(sent);
    expect(statSync(sent).mtimeMs).toBe(mtime);
    expect(readdirSync(join(local, "nodes"))).toEqual([id]);
  });

  it("refuses a role directory that was never written, leaving nothing behind", () => {
    const missing = `${ROLE}.${"d".repeat(64)}`;
    expect(() => writeNodeBundles(local, [missing], HELPER)).toThrow(/ENOENT/);
    expect(readdirSync(join(local, "nodes"))).toHaveLength(1);
  });
});

describe("a value that is not a plain sh word", () => {
  // The lines leave their values unquoted (each is a hostname label, hex or a fixed path): anything else is
  // refused before a line is made, whatever the model let through.
  it.each(["a b", "x;reboot", "it's", "$(id)", "new\nline", "glob*", "tab\there", "back`tick`"])("role %j: refused, naming the word", (role) => {
    const b = { ...bundle("hostile"), role: role as RoleName };
    expect(() => bundleShipping(rpi1, b)).toThrow(
      `bundleShipping: ${JSON.stringify(`${role}.${b.hash}`)} is not a plain sh word (a fleetkit bug: role names are hostname labels)`,
    );
  });
});

describe("a bundle shipped as files to a macOS node", () => {
  // The same lines with macOS's paths and `shasum -a 256` (Perl's shasum, as on macOS; Debian ships the same
  // script with perl), run here by sh as root: the check must accept the real scripts and refuse others.
  const mac = fleet.nodes.find((n) => n.name === "macbook1")!;
  const macRoot = "/usr/local/var/fleetkit";
  const hadRoot = existsSync(macRoot);
  const v1 = bundle("mac1");
  const ship = bundleShipping(mac, v1);
  afterAll(() => {
    if (!hadRoot) rmSync(macRoot, { recursive: true, force: true });
    else rmSync(join(macRoot, "bundles", ship.files!.dir), { recursive: true, force: true });
    if (hadRoot) rmSync(join(macRoot, ship.files!.helper.name), { force: true });
  });

  it("checks the scripts with shasum -a 256 and installs from root's copy under the macOS state directory", () => {
    const helper = shipHelper(platformFor(mac));
    expect(helper.content).toContain(`"$(shasum -a 256 <"$1/install.sh")" = "$i  -"`);
    expect(helper.content).not.toContain("sha256sum");
    expect(ship.create).toContain(`"$(shasum -a 256 <$t)" = "${helper.sha256}  -"`);
    expect(ship.create).toContain(` i ${ship.files!.dir} ${sha256Hex(v1.install)} ${sha256Hex(v1.uninstall)} macbook1-bundles'`);
    writeFileSync(join(home, NODE_BUNDLE_DIR, helper.name), helper.content);
    expect(ship.create).not.toContain("sha256sum");
    writeBundleFiles(join(home, NODE_BUNDLE_DIR), ship);
    const r = run(ship.create, "queueToken=mac\n");
    expect([r.status, r.stdout.split("\n").at(-2), r.stderr]).toEqual([0, `fleetkit: ${ROLE} mac1`, ""]);
    expect(readdirSync(join(macRoot, "bundles")).filter((d) => d.startsWith(`${ROLE}.`))).toEqual([ship.files!.dir]);
  });

  it("refuses a changed copy, and uninstalls from root's copy", () => {
    const v2 = bundle("mac2");
    const local = writeBundleFiles(join(home, NODE_BUNDLE_DIR), bundleShipping(mac, v2));
    writeFileSync(join(local, "uninstall.sh"), "echo changed\n");
    const bad = run(bundleShipping(mac, v2).create);
    expect([bad.status, bad.stdout]).toEqual([1, ""]);
    expect(bad.stderr).toContain("does not match its sha256; nothing was run");
    rmSync(local, { recursive: true });
    const r = run(ship.delete);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `fleetkit: ${ROLE} removed (mac1)\n`, ""]);
  });
});

describe("a Linux or macOS command line", () => {
  it("stays one argument within Linux's limit: a longer one is refused, naming the node and the size", () => {
    const big = `# ${"x".repeat(POSIX_COMMAND_LINE_LIMIT)}\n`;
    const bytes = Buffer.byteLength(`sudo -n sh -c '${big}'`);
    expect(() => remoteInvocation(rpi1, "node", big)).toThrow(
      `the command for node rpi1 is ${bytes} bytes, over the ${POSIX_COMMAND_LINE_LIMIT} one command line may have on Linux (a fleetkit bug: a script this long ships as files, roles/shipping.ts)`,
    );
    expect(remoteInvocation(rpi1, "node", "echo hi\n")).toEqual({ command: "sudo -n sh -c 'echo hi\n'", stdinPrefix: "" });
  });
});
