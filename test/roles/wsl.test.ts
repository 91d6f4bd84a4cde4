// @needs shellcheck
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import { renderBundle } from "../../roles/index.js";
import { readTemplate, remoteCommand, remoteInvocation, WINDOWS_COMMAND_LINE_LIMIT } from "../../roles/bundle.js";
import { withoutCommentLines, wslDistroSetupScript } from "../../roles/wsl.js";
import { WINDOWS_COMMANDS, wslLauncher } from "./windows-commands.js";

const mesh = loadFleet("fleet.yaml");
const desktop = mesh.nodes.find((n) => n.name === "windows-desktop")!;

/**
 * templates/wsl/wsl-conf.sh run for real by sh (the same text the Windows host sends into the distro),
 * on a temp file instead of /etc/wsl.conf: exact resulting file, the change marker only when it changed,
 * and a second run that changes nothing.
 */
describe("/etc/wsl.conf gets [boot] systemd=true, other settings kept (wsl/wsl-conf.sh run by sh)", () => {
  function run(conf: string) {
    const r = spawnSync("sh", ["-c", `set -eu\n${readTemplate("wsl/wsl-conf.sh")}`], { env: { PATH: process.env.PATH, FK_WSL_CONF: conf }, encoding: "utf8" });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it.each([
    ["no file", null, "[boot]\nsystemd=true\n"],
    ["an empty file", "", "[boot]\nsystemd=true\n"],
    ["another section only", "[network]\nhostname=win\n", "[network]\nhostname=win\n\n[boot]\nsystemd=true\n"],
    ["systemd=false in [boot]", "[boot]\nsystemd=false\ncommand=echo hi\n[user]\ndefault=bob\n", "[boot]\nsystemd=true\ncommand=echo hi\n[user]\ndefault=bob\n"],
    ["[boot] without systemd, then [user]", "[boot]\ncommand=mount -a\n[user]\ndefault=bob\n", "[boot]\ncommand=mount -a\nsystemd=true\n[user]\ndefault=bob\n"],
    ["[boot] last, spaced key", "[user]\ndefault=bob\n[boot]\n  systemd = no\n", "[user]\ndefault=bob\n[boot]\nsystemd=true\n"],
    ["a systemd key in another section is left alone", "[other]\nsystemd=false\n", "[other]\nsystemd=false\n\n[boot]\nsystemd=true\n"],
  ])("%s", (_, before, after) => {
    const dir = mkdtempSync(join(tmpdir(), "fk-wslconf-"));
    const conf = join(dir, "wsl.conf");
    try {
      if (before !== null) writeFileSync(conf, before);
      const first = run(conf);
      expect([first.status, first.stdout, first.stderr]).toEqual([0, "FLEETKIT_WSL_CONF_CHANGED\n", ""]);
      expect(readFileSync(conf, "utf8")).toBe(after);
      expect((statSync(conf).mode & 0o777).toString(8)).toBe("644");
      const second = run(conf);
      expect([second.status, second.stdout]).toEqual([0, ""]);
      expect(readFileSync(conf, "utf8")).toBe(after);
      expect(existsSync(`${conf}.fleetkit-new.${process.pid}`)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an already correct file is not rewritten and WSL is not restarted", () => {
    const dir = mkdtempSync(join(tmpdir(), "fk-wslconf-"));
    const conf = join(dir, "wsl.conf");
    writeFileSync(conf, "[boot]\nsystemd=true\n[user]\ndefault=fleet\n");
    const r = run(conf);
    rmSync(dir, { recursive: true, force: true });
    expect([r.status, r.stdout]).toEqual([0, ""]);
  });
});

describe("Windows host setup inside the tailscale role (target windows-host)", () => {
  const b = renderBundle(mesh, desktop, "tailscale");
  const ps = b.install;

  it("sends the distro setup (node user + wsl.conf) base64-encoded to the node's distro as root", () => {
    const script = wslDistroSetupScript(desktop);
    const sent = withoutCommentLines(script);
    expect(sent.split("\n").filter((l) => l.trim().startsWith("#"))).toEqual(["#!/bin/sh"]);
    expect(sent.split("\n").length).toBe(script.split("\n").filter((l) => !/^\s*#/.test(l)).length + 1);
    const b64 = Buffer.from(sent, "utf8").toString("base64");
    expect(ps).toContain(`$FkOut = @(Fk-Capture wsl.exe @('--distribution', $FkDistro, '--user', 'root', '--', 'sh', '-c', 'echo ${b64} | base64 -d | sh'))`);
    expect(script).toContain("if ! id 'fleet' >/dev/null 2>&1; then\n  useradd --create-home --shell /bin/bash 'fleet'\n");
    for (const text of [script, sent]) {
      const sc = spawnSync("shellcheck", ["-S", "warning", "-s", "sh", "-"], { input: text, encoding: "utf8" });
      expect(sc.error ? "shellcheck missing (apt-get install shellcheck)" : sc.stdout).toBe("");
    }
  });

  it("restarts WSL only when wsl.conf or .wslconfig changed, then insists on systemd as PID 1", () => {
    const lines = ps.split("\n");
    const cond = lines.indexOf("if ($FkMirrored -or ($FkOut -contains 'FLEETKIT_WSL_CONF_CHANGED')) {");
    expect(cond).toBeGreaterThan(0);
    expect(lines[cond + 2]).toBe("  Fk-Run wsl.exe @('--shutdown')");
    expect(lines.filter((l) => l.includes("--shutdown") && !l.includes("Fk-Log"))).toEqual(["  Fk-Run wsl.exe @('--shutdown')"]);
    expect(ps).toContain(`$FkInit = "$(Fk-Capture wsl.exe @('--distribution', $FkDistro, '--user', 'root', '--', 'cat', '/proc/1/comm'))".Trim()\nif ($FkInit -ne 'systemd') {`);
  });

  it("sets mirrored networking in the SSH user's .wslconfig so the distro's services are on the tailnet", () => {
    expect(ps).toContain("$FkMirrored = Fk-IniSet (Join-Path $env:USERPROFILE '.wslconfig') 'wsl2' 'networkingMode' 'mirrored'\n");
    expect(ps.indexOf("$FkMirrored = Fk-IniSet")).toBeLessThan(ps.indexOf("if ($FkMirrored -or"));
  });

  it("enables WSL2 and installs the distro when missing, asking for a reboot rather than looping", () => {
    expect(ps).toContain("  Fk-Capture wsl.exe @('--install', '--no-distribution') | Out-Null\n  Fk-Die 'WSL2 was just enabled");
    expect(ps).toContain("  Fk-Run wsl.exe @('--install', '--distribution', $FkDistro, '--no-launch')\n");
  });

  it("the WSL-side roles of the node run in the distro and depend on this bundle by role order", () => {
    expect(desktop.roles[0]).toBe("tailscale");
    expect(renderBundle(mesh, desktop, "claude").target).toBe("wsl");
  });

  it("reads the auth key from stdin with the PowerShell prelude and never names a value", () => {
    expect(ps).toContain("Fk-ReadSecrets @('tailscaleAuthKey')\n");
    expect(ps).toContain("[IO.File]::WriteAllText($FkKey.FullName, $script:FkSecrets['tailscaleAuthKey'])");
    expect(ps).toContain("Remove-Item -Force -ErrorAction SilentlyContinue -Path $FkKey.FullName");
  });
});

/**
 * The command lines fleetkit sends to Windows nodes (roles/bundle.ts remoteCommand), for every Windows
 * command of the three real fleets: they fit cmd.exe's 8,191 characters, mean the same to cmd.exe and
 * PowerShell (no `$`, `%`, `^`, `!`, no inner double quote), and carry the script exactly. The WSL
 * launcher (the `sh -c` argument wsl.exe receives) is run for real by sh.
 */
describe("Windows command lines (remoteCommand)", () => {
  const lines = WINDOWS_COMMANDS;
  const unpack = (b64: string) => gunzipSync(Buffer.from(b64, "base64")).toString("utf8");

  it("covers both Windows nodes of the mesh, Windows host and WSL", () => {
    expect(lines.length).toBe(12);
    expect(new Set(lines.map((l) => l.target))).toEqual(new Set(["wsl", "windows-host"]));
  });

  it.each(lines.map((l) => [l.what, l] as const))("%s: fits cmd.exe, shell-neutral, carries the script exactly", (_, l) => {
    expect(l.line.length).toBeLessThanOrEqual(WINDOWS_COMMAND_LINE_LIMIT);
    expect(l.line).not.toMatch(/[$%^!]/);
    expect(l.line.split('"').length).toBe(3);
    if (l.target === "wsl" && l.stdin) {
      // Too long for the line (the claude role, whose CLAUDE.md and skill travel with it): the packed script
      // is the first bytes of stdin, taken with head -c.
      const m = /^wsl\.exe -d Debian -u root -e sh -c "umask 077 && head -c (\d+) \| base64 -d \| gzip -dc > (\/tmp\/fleetkit-[0-9a-f]{16}\.sh) && sh \2"$/.exec(l.line);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBe(l.stdin.length);
      expect(unpack(l.stdin.trimEnd())).toBe(`rm -f "$0"\n${l.script}`);
    } else if (l.target === "wsl") {
      const m = /^wsl\.exe -d Debian -u root -e sh -c "umask 077 && echo ([A-Za-z0-9+/=]+) \| base64 -d \| gzip -dc > (\/tmp\/fleetkit-[0-9a-f]{16}\.sh) && sh \2"$/.exec(l.line);
      expect(m).not.toBeNull();
      expect(unpack(m![1]!)).toBe(`rm -f "$0"\n${l.script}`);
    } else {
      const m = /^powershell\.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "iex \(\(New-Object IO\.StreamReader\(New-Object IO\.Compression\.GZipStream\(\(New-Object IO\.MemoryStream\(,\[Convert\]::FromBase64String\('([A-Za-z0-9+/=]+)'\)\)\),\[IO\.Compression\.CompressionMode\]::Decompress\)\)\)\.ReadToEnd\(\)\)"$/.exec(l.line);
      expect(m).not.toBeNull();
      expect(unpack(m![1]!)).toBe(l.script);
    }
  });

  it("the WSL launcher, run by sh: passes stdin to the script, keeps its exit code, leaves no file behind", () => {
    const script = '#!/bin/sh\nIFS= read -r line\nprintf "got %s from %s\\n" "$line" "$(basename "$0")"\nexit 3\n';
    const line = remoteCommand(desktop, "wsl", script);
    const { inner, file } = wslLauncher(line);
    const r = spawnSync("sh", ["-c", inner], { input: "TS_AUTHKEY=secret-value\n", encoding: "utf8" });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 3, stdout: `got TS_AUTHKEY=secret-value from ${file.slice(5)}\n`, stderr: "" });
    expect(existsSync(file)).toBe(false);
    expect(remoteCommand(desktop, "wsl", script)).toBe(line);
  });

  // A script whose packed text cannot fit the line (random bytes do not compress): the launcher takes exactly
  // the packed script from stdin with `head -c`, and the secret line written right behind it in the same pipe
  // write still reaches the script.
  const big = `#!/bin/sh\n# ${randomBytes(9000).toString("base64")}\nIFS= read -r line\nprintf "got %s\\n" "$line"\nexit 4\n`;
  const bigRun = (stdin: string) => {
    const inv = remoteInvocation(desktop, "wsl", big);
    const { inner, file } = wslLauncher(inv.command);
    const r = spawnSync("sh", ["-c", inner], { input: stdin, encoding: "utf8" });
    return { inv, file, result: { status: r.status, stdout: r.stdout } };
  };

  it("the WSL launcher, script on stdin, run by sh: reads exactly the packed script, the secrets behind it reach the script", () => {
    const { inv, file, result } = bigRun(`${remoteInvocation(desktop, "wsl", big).stdinPrefix}queueToken=secret-value\n`);
    expect(inv.command).toMatch(/^wsl\.exe -d Debian -u root -e sh -c "umask 077 && head -c \d+ \| base64 -d \| gzip -dc > \/tmp\/fleetkit-[0-9a-f]{16}\.sh && sh \/tmp\/fleetkit-[0-9a-f]{16}\.sh"$/);
    expect(inv.stdinPrefix.length).toBeGreaterThan(WINDOWS_COMMAND_LINE_LIMIT);
    expect(result).toEqual({ status: 4, stdout: "got queueToken=secret-value\n" });
    expect(existsSync(file)).toBe(false);
    expect(() => remoteCommand(desktop, "wsl", big)).toThrow(/^the wsl script for node windows-desktop is \d+ characters packed, too long for a Windows command line \(8191\); only a role install can carry it \(on stdin\)$/);
  });

  it("the WSL launcher, script on stdin cut short: fails and runs nothing", () => {
    const { inv, file, result } = bigRun(remoteInvocation(desktop, "wsl", big).stdinPrefix.slice(0, 5000));
    expect(inv.stdinPrefix.length).toBeGreaterThan(5000);
    expect(result.status).not.toBe(0);
    expect(result.stdout).toBe("");
    rmSync(file, { force: true });
  });
});
