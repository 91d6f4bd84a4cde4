// @needs sshd ssh ssh-keygen sudo
/**
 * The toolchain distribution the program's `<node>-iceccd-toolchains-<arch>` local.Command runs, run for
 * real: a real sshd on loopback stands for the builder (127.0.0.1) and the receiver (127.0.0.2), the local
 * `ssh` client streams a real tar.gz, and the receiver's script verifies it. Tarball folders are temp
 * folders (the real ones are /opt/icecc-envs).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFleet } from "../../model/load.js";
import type { Fleet } from "../../model/fleet.js";
import { distributionScript } from "../../roles/toolchains/component.js";
import { sha256Hex } from "../../roles/bundle.js";
import { startSshd, type TestSshd } from "../cli/sshd.js";

describe("toolchain distribution over real SSH", () => {
  let sshd: TestSshd;
  let fleet: Fleet;
  let dir: string;
  let builderDir: string;
  let receiverDir: string;
  let envFile: string;
  let manifest: string;
  let tarball: string;

  const node = (name: string) => fleet.nodes.find((n) => n.name === name)!;
  const distribute = (text: string) => {
    const client = { keyFile: sshd.keyPath, options: [`UserKnownHostsFile=${sshd.knownHosts}`] };
    const script = distributionScript(fleet, node("builder"), node("receiver"), text, { builder: client, receiver: client }, { builderEnvDir: builderDir, receiver: { envDir: receiverDir, envFile } });
    // What local.Command does with interpreter ["/bin/sh", "-c"].
    return spawnSync("/bin/sh", ["-c", script], { encoding: "utf8", timeout: 60_000 });
  };

  beforeAll(async () => {
    sshd = await startSshd();
    dir = mkdtempSync(join(tmpdir(), "fleetkit-toolchains-"));
    builderDir = join(dir, "builder");
    receiverDir = join(dir, "receiver");
    envFile = join(dir, "receiver-etc", "icecc-env.sh");
    mkdirSync(builderDir);
    mkdirSync(join(dir, "src", "usr", "bin"), { recursive: true });
    writeFileSync(join(dir, "src", "usr", "bin", "gcc"), "#!/bin/sh\necho not really gcc\n");
    tarball = `x86_64-gcc-${"a".repeat(32)}.tar.gz`;
    execFileSync("tar", ["-czf", join(builderDir, tarball), "-C", join(dir, "src"), "usr"]);
    manifest = `x86_64 gcc ${tarball} ${sha256Hex(readFileSync(join(builderDir, tarball)))}\n`;
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
  });

  afterAll(async () => {
    await sshd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("copies a missing tarball, verified, links it as current and writes the environment file", () => {
    const run = distribute(manifest);
    expect(run.stderr).not.toMatch(/fk_die|error/i);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("fleetkit: toolchains changed");
    expect(readFileSync(join(receiverDir, tarball))).toEqual(readFileSync(join(builderDir, tarball)));
    expect(statSync(join(receiverDir, tarball)).mode & 0o777).toBe(0o644);
    expect(readlinkSync(join(receiverDir, "current-x86_64-gcc.tar.gz"))).toBe(tarball);
    expect(readFileSync(envFile, "utf8")).toContain(receiverDir);
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
    const run = distribute(`x86_64 gcc ${other} ${"0".repeat(64)}\n`);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`toolchain ${other} arrived with sha256 ${sha256Hex("corrupted in transit\n")}, expected ${"0".repeat(64)}; nothing was replaced`);
    expect(existsSync(join(receiverDir, other))).toBe(false);
    expect(readlinkSync(join(receiverDir, "current-x86_64-gcc.tar.gz"))).toBe(tarball);
  });
});
