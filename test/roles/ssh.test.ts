// @needs ssh
/**
 * roles/ssh.ts `sshClientArgs`: the exact words for each option, in the one order, and what the real
 * OpenSSH client makes of them (`ssh -G` prints the configuration it would use, without connecting).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sshClientArgs, type SshClientOptions } from "../../roles/ssh.js";

const node = { sshPort: 2222, perDialTimeoutSeconds: 7 };
const FIXED = ["-o", "ConnectTimeout=7", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"];

describe("sshClientArgs", () => {
  it.each<[string, SshClientOptions | undefined, string[]]>([
    ["no options: the port, then dial timeout, batch mode, host key policy", undefined, ["-p", "2222", ...FIXED]],
    ["port: false (the destination carries it)", { port: false }, FIXED],
    ["a key file", { keyFile: "/k/id" }, ["-i", "/k/id", "-p", "2222", ...FIXED]],
    ["a key file, offered alone", { keyFile: "/k/id", identitiesOnly: true }, ["-i", "/k/id", "-o", "IdentitiesOnly=yes", "-p", "2222", ...FIXED]],
    ["a config file", { configFile: "/c/ssh config" }, ["-F", "/c/ssh config", "-p", "2222", ...FIXED]],
    ["keep-alives", { keepalive: true }, ["-p", "2222", ...FIXED, "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]],
    ["quiet", { quiet: true }, ["-p", "2222", ...FIXED, "-o", "LogLevel=ERROR"]],
    ["a known_hosts file", { knownHostsFile: "/k/known_hosts" }, ["-p", "2222", ...FIXED, "-o", "UserKnownHostsFile=/k/known_hosts"]],
    ["extra options, after fleetkit's", { options: ["Compression=yes", "BatchMode=no"] }, ["-p", "2222", ...FIXED, "-o", "Compression=yes", "-o", "BatchMode=no"]],
    ["empty strings count as absent (an unset FLEET_* variable)", { configFile: "", keyFile: "", knownHostsFile: "" }, ["-p", "2222", ...FIXED]],
    ["explicit false is the default", { identitiesOnly: false, keepalive: false, quiet: false, port: true }, ["-p", "2222", ...FIXED]],
    [
      "everything, in the one order",
      { configFile: "/c", keyFile: "/k", identitiesOnly: true, keepalive: true, quiet: true, knownHostsFile: "/h", options: ["Compression=yes"] },
      ["-F", "/c", "-i", "/k", "-o", "IdentitiesOnly=yes", "-p", "2222", ...FIXED, "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2", "-o", "LogLevel=ERROR", "-o", "UserKnownHostsFile=/h", "-o", "Compression=yes"],
    ],
  ])("%s", (_what, opts, expected) => expect(sshClientArgs(node, opts)).toEqual(expected));

  it("takes the node's own port and dial timeout", () => {
    expect(sshClientArgs({ sshPort: 22, perDialTimeoutSeconds: 10 })).toEqual(["-p", "22", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]);
  });
});

describe("what OpenSSH reads from them (ssh -G)", () => {
  const dir = mkdtempSync(join(tmpdir(), "fleetkit-ssh-args-"));
  const key = join(dir, "id_ed25519");
  const config = join(dir, "ssh_config");
  writeFileSync(key, "not a key: ssh -G only checks that the file is there\n", { mode: 0o600 });
  writeFileSync(config, "Host *\n  Compression yes\n");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** `ssh -G` for these options towards ops@node.example, as a map of its (lower-case) keywords to values. */
  function effective(opts: SshClientOptions): Map<string, string[]> {
    const argv = sshClientArgs(node, opts);
    const out = execFileSync("ssh", ["-G", ...(opts.configFile ? [] : ["-F", "/dev/null"]), ...argv, "-l", "ops", "--", "node.example"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const map = new Map<string, string[]>();
    for (const line of out.trim().split("\n")) {
      const [k, ...v] = line.split(" ");
      map.set(k!, [...(map.get(k!) ?? []), v.join(" ")]);
    }
    return map;
  }

  it("the always-on options: port, dial timeout, batch mode, accept-new", () => {
    const c = effective({});
    expect([c.get("port"), c.get("connecttimeout"), c.get("batchmode"), c.get("stricthostkeychecking")]).toEqual([["2222"], ["7"], ["yes"], ["accept-new"]]);
  });

  it("every optional one", () => {
    const c = effective({ configFile: config, keyFile: key, identitiesOnly: true, keepalive: true, quiet: true, knownHostsFile: join(dir, "known_hosts") });
    expect(c.get("compression")).toEqual(["yes"]);
    expect(c.get("identityfile")).toEqual([key]);
    expect(c.get("identitiesonly")).toEqual(["yes"]);
    expect([c.get("serveraliveinterval"), c.get("serveralivecountmax")]).toEqual([["5"], ["2"]]);
    expect(c.get("loglevel")).toEqual(["ERROR"]);
    expect(c.get("userknownhostsfile")).toEqual([join(dir, "known_hosts")]);
  });

  it("port: false leaves the port to the destination (ssh's default 22 here)", () => {
    expect(effective({ port: false }).get("port")).toEqual(["22"]);
  });

  it("an extra option adds, but cannot override fleetkit's own (the first value wins)", () => {
    const c = effective({ options: ["BatchMode=no", "ConnectTimeout=99", "StrictHostKeyChecking=no", "Compression=yes"] });
    expect([c.get("batchmode"), c.get("connecttimeout"), c.get("stricthostkeychecking"), c.get("compression")]).toEqual([["yes"], ["7"], ["accept-new"], ["yes"]]);
  });
});
