// @needs sshd ssh ssh-keygen sudo
/**
 * The toolchain distribution the program's `<node>-iceccd-toolchains-<arch>` local.Command runs, run for
 * real: a real sshd on loopback stands for the builder (127.0.0.1) and the receiver (127.0.0.2), the local
 * `ssh` client streams a real tar.gz, and the receiver's receive program (rendered as its iceccd bundle
 * installs it) verifies it. Tarball folders and the program are in temp folders (the real ones are
 * /opt/icecc-envs and /usr/local/lib/fleetkit).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFleet } from "../../model/load.js";
import type { Fleet } from "../../model/fleet.js";
import { distributionScript } from "../../roles/toolchains/component.js";
import { toolchainReceiveProgram } from "../../roles/toolchains/render.js";
import { sha256Hex } from "../../roles/bundle.js";
import { startSshd, type TestSshd } from "../cli/sshd.js";

describe("toolchain distribution over real SSH", () => {
  let sshd: TestSshd;
  let fleet: Fleet;
  let dir: string;
  let builderDir: string;
  let receiverDir: string;
  let program: string;
  let manifest: string;
  let tarball: string;

  const node = (name: string) => fleet.nodes.find((n) => n.name === name)!;
  const distribute = (text: string) => {
    const client = { keyFile: sshd.keyPath, options: [`UserKnownHostsFile=${sshd.knownHosts}`] };
    const script = distributionScript(node("builder"), node("receiver"), text, { builder: client, receiver: client }, { builderEnvDir: builderDir, receiveProgram: program });
    // What local.Command does with interpreter ["/bin/sh", "-c"].
    return spawnSync("/bin/sh", ["-c", script], { encoding: "utf8", timeout: 60_000 });
  };

  beforeAll(async () => {
    sshd = await startSshd();
    dir = mkdtempSync(join(tmpdir(), "fleetkit-toolchains-"));
    builderDir = join(dir, "builder");
    receiverDir = join(dir, "receiver");
    program = join(dir, "receiver-bin", "fleetkit-toolchain-receive");
    mkdirSync(builderDir);
    mkdirSync(join(dir, "src", "usr", "bin"), { recursive: true });
    writeFileSync(join(dir, "src", "usr", "bin", "gcc"), "#!/bin/sh\necho not really gcc\n");
    tarball = `x86_64-gcc-${"a".repeat(32)}.tar.gz`;
    execFileSync("tar", ["-czf", join(builderDir, tarball), "-C", join(dir, "src"), "usr"]);
    manifest = `x86_64 gcc x86_64 ${tarball} ${sha256Hex(readFileSync(join(builderDir, tarball)))}\n`;
    fleet = parseFleet(
      [
        "fleet: toolchain-test",
        "defaults:",
        `  user: ${sshd.user}`,
        `  sshPort: ${sshd.port}`,
        "  claude: { version: 2.1.331 }",
        "nodes:",
        "  builder: { host: 127.0.0.1, os: debian, arch: x86_64, roles: [icecc-scheduler, iceccd, toolchains] }",
        "  receiver: { host: 127.0.0.2, os: debian, arch: x86_64, roles: [iceccd] }",
        "",
      ].join("\n"),
      "toolchain-test.yaml",
    );
    // The receive program as the receiver's iceccd bundle installs it (root-owned, 0755), pointed at the temp folder.
    mkdirSync(join(dir, "receiver-bin"));
    writeFileSync(program, toolchainReceiveProgram(node("receiver"), { envDir: receiverDir, program }).content, { mode: 0o755 });
  });

  afterAll(async () => {
    await sshd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("each tarball is one short line of the manifest's fields; the receive program is named once, by path, run as root without a script", () => {
    const script = distributionScript(node("builder"), node("receiver"), manifest);
    expect(Buffer.byteLength(script)).toBeLessThan(1024);
    expect(script).not.toContain("fk_put");
    expect(script.match(/fleetkit-toolchain-receive/g)).toHaveLength(1);
    expect(script).toContain('r="sudo -n /usr/local/lib/fleetkit/fleetkit-toolchain-receive $*"');
    expect(script).toContain('fk_on_builder "sudo -n cat /opt/icecc-envs/$4"');
    expect(script.split("\n").filter((l) => l.startsWith("fk_tarball "))).toEqual([`fk_tarball x86_64 gcc x86_64 ${tarball} ${manifest.trim().split(" ").at(-1)}`]);
  });

  it("copies a missing tarball, verified, and links it as current", () => {
    const run = distribute(manifest);
    expect(run.stderr).not.toMatch(/fk_die|error/i);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("fleetkit: toolchains changed");
    expect(readFileSync(join(receiverDir, tarball))).toEqual(readFileSync(join(builderDir, tarball)));
    expect(statSync(join(receiverDir, tarball)).mode & 0o777).toBe(0o644);
    expect(readlinkSync(join(receiverDir, "current-x86_64-gcc.tar.gz"))).toBe(tarball);
  });

  it("sends nothing when the receiver already has it: the second run is unchanged", () => {
    const before = statSync(join(receiverDir, tarball)).mtimeMs;
    const run = distribute(manifest);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("fleetkit: toolchains unchanged");
    expect(statSync(join(receiverDir, tarball)).mtimeMs).toBe(before);
  });

  it("refuses a tarball whose bytes do not match the manifest, replacing nothing", () => {
    const other = `x86_64-gcc-${"b".repeat(32)}.tar.gz`;
    writeFileSync(join(builderDir, other), "corrupted in transit\n");
    // An older four-field manifest line (target = arch) still distributes.
    const run = distribute(`x86_64 gcc ${other} ${"0".repeat(64)}\n`);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`toolchain ${other} arrived with sha256 ${sha256Hex("corrupted in transit\n")}, expected ${"0".repeat(64)}; nothing was replaced`);
    expect(existsSync(join(receiverDir, other))).toBe(false);
    expect(readlinkSync(join(receiverDir, "current-x86_64-gcc.tar.gz"))).toBe(tarball);
  });
});
