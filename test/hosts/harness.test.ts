// @needs debootstrap systemd-nspawn ip iptables ssh ssh-keygen sshd sudo
/**
 * The hosts-level harness itself, on real nodes: three Debian bookworm nodes booted with systemd-nspawn,
 * reached over real SSH; their network (each other, the apt proxy, nothing else), the artifact server, file
 * copies, and that teardown and crash recovery leave nothing behind. Skipped loudly when the machine cannot
 * run the level (not root, no debootstrap …).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { announceSkip, bootNodes, cleanupLeftovers, listHostsResources, RUN_BASE, type TestNetwork } from "./harness.js";
import { hostPlatform, startArtifactServer } from "./artifact-server.js";

const skipReason = announceSkip();
const NAMES = ["node-a", "node-b", "node-c"];
/** cgroup hierarchies the harness gives each node its own directory in, on this machine. */
const HIERARCHIES = [existsSync("/sys/fs/cgroup/unified/cgroup.procs") || existsSync("/sys/fs/cgroup/cgroup.controllers") ? "unified" : "", existsSync("/sys/fs/cgroup/systemd/cgroup.procs") ? "systemd" : ""].filter(Boolean);

describe.skipIf(skipReason !== undefined)("hosts harness: three real Debian nodes", () => {
  let net: TestNetwork;
  const node = (name: string) => net.nodes.find((n) => n.name === name)!;

  beforeAll(async () => {
    net = await bootNodes(3, { names: NAMES, log: (l) => console.log(l) });
    console.log(`hosts: warm boot of 3 nodes took ${net.bootSeconds.toFixed(1)} s; rootfs ${net.rootfs.built ? `built in ${net.rootfs.seconds.toFixed(1)} s` : "cached"}`);
  });
  afterAll(async () => {
    await net?.teardown();
  });

  it("creates exactly one namespace, veth and container per node plus one bridge, named for its slot", () => {
    const s = net.slot;
    expect(listHostsResources(s)).toEqual({
      netns: [`fkh${s}n1`, `fkh${s}n2`, `fkh${s}n3`],
      links: [`fkh${s}br`, `fkh${s}n1`, `fkh${s}n2`, `fkh${s}n3`],
      machines: [`fkh${s}n1`, `fkh${s}n2`, `fkh${s}n3`],
      cgroups: ["systemd", "unified"].flatMap((h) => [1, 2, 3].map((i) => `${h}/fkh${s}n${i}`)).filter((c) => HIERARCHIES.includes(c.split("/")[0]!)),
    });
    expect(net.nodes.map((n) => [n.name, n.address])).toEqual(NAMES.map((name, i) => [name, `10.213.${s}.${11 + i}`]));
  });

  it.each(NAMES)("%s: SSH as the node user and as root; systemd is PID 1 and the system is running", async (name) => {
    const n = node(name);
    expect(await n.run("hostname; id -un; sudo -n id -un")).toBe(`${name}\nadmin\nroot\n`);
    expect(await n.run("id -un", { user: "root" })).toBe("root\n");
    expect(await n.run("readlink /proc/1/exe; cat /proc/1/comm", { user: "root" })).toBe("/usr/lib/systemd/systemd\nsystemd\n");
    const state = (await n.ssh("systemctl is-system-running")).stdout.trim();
    expect(["running", "degraded"]).toContain(state);
    expect(await n.run("systemctl is-active ssh.service dbus.service")).toBe("active\nactive\n");
    expect(await n.run(". /etc/os-release; echo $VERSION_CODENAME")).toBe("bookworm\n");
  });

  it("gives each node's systemd its own cgroups: stopping a unit on one node leaves the same unit on another running", async () => {
    const [a, b] = [node("node-a"), node("node-b")];
    await Promise.all([a, b].map((n) => n.run("sudo -n systemd-run --quiet --unit=fk-probe sleep 600")));
    await a.run("sudo -n systemctl stop fk-probe");
    expect((await a.ssh("systemctl is-active fk-probe")).stdout).toBe("inactive\n");
    expect(await b.run("systemctl is-active fk-probe; pgrep -x sleep | wc -l")).toBe("active\n1\n");
    expect(await a.run("sudo -n journalctl --no-pager | grep -c 'Input/output error' || true")).toBe("0\n");
    await b.run("sudo -n systemctl stop fk-probe");
  });

  it("passes stdin to the remote command and returns its exit code and both streams", async () => {
    const input = "line one\nline two\n";
    const r = await node("node-a").ssh("cat | sha256sum; echo to-stderr >&2; exit 7", { input });
    expect(r).toEqual({ code: 7, stdout: `${createHash("sha256").update(input).digest("hex")}  -\n`, stderr: "to-stderr\n" });
  });

  it.each(NAMES)("%s reaches every other node by name over TCP (sshd) and ICMP", async (name) => {
    const others = NAMES.filter((x) => x !== name);
    const script = others
      .map((o) => `if timeout 5 bash -c 'exec 3<>/dev/tcp/${o}/22; head -c 7 <&3'; then echo " ${o} tcp"; fi; ping -c1 -W2 ${o} >/dev/null && echo "${o} ping"`)
      .join("; ");
    expect(await node(name).run(`bash -c ${JSON.stringify(script)}`)).toBe(others.map((o) => `SSH-2.0 ${o} tcp\n${o} ping\n`).join(""));
  });

  it("has the packages the roles need already installed, and no icecc daemon running before a role starts one", async () => {
    const pkgs = ["icecc", "gcc", "libc6-dev", "curl", "ca-certificates", "sudo", "python3", "openssh-server"];
    const out = await node("node-b").run(`dpkg-query -W -f='\${Package} \${Status}\\n' ${pkgs.join(" ")}`);
    expect(out.trim().split("\n").sort()).toEqual(pkgs.map((p) => `${p} install ok installed`).sort());
    expect((await node("node-b").ssh("pgrep -x iceccd; pgrep -x icecc-scheduler")).stdout).toBe("");
  });

  it("reaches the package registries only through the host's proxy; nothing else outside", async () => {
    const n = node("node-c");
    const noRoute = await n.ssh("curl -sS --max-time 5 --noproxy '*' http://deb.debian.org/debian/ -o /dev/null");
    expect(noRoute.code).not.toBe(0);
    expect(noRoute.stderr).toMatch(/Couldn't connect|Could not resolve|unreachable/i);
    const refusedBefore = net.registryProxy.refused.length;
    const other = await n.ssh(`curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -x ${net.registryProxy.url} http://example.org/`);
    expect(other.stdout).toBe("403");
    expect(net.registryProxy.refused.slice(refusedBefore)).toEqual(["GET http://example.org/"]);
    const passedBefore = net.registryProxy.passed();
    await n.run("sudo -n apt-get update -q", { timeoutSeconds: 300 });
    expect(net.registryProxy.passed()).toBeGreaterThan(passedBefore);
    expect(await n.run("apt-cache policy hello | sed -n 3p")).toMatch(/Candidate: \S+/);
    // npm reaches its registry through the same proxy (a pass-through mirror; TLS ends on the host).
    expect(await n.run("npm view semver@7.6.0 version", { timeoutSeconds: 120 })).toBe("7.6.0\n");
    expect(net.registryProxy.refused.slice(refusedBefore)).toEqual(["GET http://example.org/"]);
  });

  it("serves stand-in Tailscale and AgentAPI downloads whose sha256 matches what the node receives", async () => {
    const { goarch } = hostPlatform();
    const ts = await net.artifactServer.publish("tailscale", "1.80.3");
    const url = ts.url.replace("{version}", ts.version).replace("{goarch}", goarch);
    expect(url).toBe(ts.file.url);
    const n = node("node-a");
    expect(await n.run(`curl -fsS ${url} | sha256sum`)).toBe(`${ts.file.sha256}  -\n`);
    expect((await n.run(`curl -fsS ${url} | tar -tzf - | sort`)).split("\n").filter(Boolean)).toEqual([
      `tailscale_1.80.3_${goarch}/`, `tailscale_1.80.3_${goarch}/systemd/`, `tailscale_1.80.3_${goarch}/systemd/tailscaled.defaults`,
      `tailscale_1.80.3_${goarch}/systemd/tailscaled.service`, `tailscale_1.80.3_${goarch}/tailscale`, `tailscale_1.80.3_${goarch}/tailscaled`,
    ]);
    // Reproducible: another server publishing the same version serves the same bytes; another version differs.
    const other = await startArtifactServer("127.0.0.1");
    try {
      expect((await other.publish("tailscale", "1.80.3")).file.sha256).toBe(ts.file.sha256);
      expect((await other.publish("tailscale", "1.82.0")).file.sha256).not.toBe(ts.file.sha256);
    } finally {
      await other.close();
    }

    const aa = await net.artifactServer.publish("agentapi", "v0.10.0");
    const aaUrl = aa.url.replace("{version}", aa.version).replace("{os}", "linux").replace("{goarch}", goarch);
    await n.run(`curl -fsS -o /tmp/agentapi ${aaUrl} && echo '${aa.file.sha256}  /tmp/agentapi' | sha256sum -c --quiet && chmod 755 /tmp/agentapi`);
    expect(await n.run("/tmp/agentapi --version")).toBe("agentapi version v0.10.0\n");
    await n.run("sudo -n systemd-run --unit=agentapi-probe /tmp/agentapi server --port 3284 --allowed-hosts localhost,node-a -- claude");
    // From another node: proves the stand-in serves /status and that node-to-node TCP works for services.
    const status = await node("node-b").run("for i in $(seq 50); do curl -fsS http://node-a:3284/status && exit 0; sleep 0.1; done; exit 1");
    expect(JSON.parse(status)).toEqual({ status: "stable", agent: ["claude"], version: "v0.10.0" });
    // Like the real one, it refuses requests addressed to a name outside --allowed-hosts.
    expect(await node("node-b").run(`curl -sS -o /dev/null -w '%{http_code}' http://${n.address}:3284/status`)).toBe("403");
    await n.run("sudo -n systemctl stop agentapi-probe");
    expect(net.artifactServer.requests).toContain(`GET ${aa.file.path} 200`);
    expect(await n.run(`curl -sS -o /dev/null -w '%{http_code}' ${net.artifactServer.baseUrl}/nope`)).toBe("404");
  });

  it("copies a file as root with the mode given, atomically", async () => {
    const n = node("node-b");
    await n.copy({ content: "hello from the test process\n" }, "/etc/fleetkit-test/greeting", 0o640);
    expect(await n.run("stat -c '%a %U %G %s' /etc/fleetkit-test/greeting; sudo -n cat /etc/fleetkit-test/greeting; ls -a /etc/fleetkit-test")).toBe(
      "640 root root 28\nhello from the test process\n.\n..\ngreeting\n",
    );
    await n.copy({ path: fileURLToPath(import.meta.url) }, "/root/harness.test.ts", 0o600);
    const local = createHash("sha256").update((await import("node:fs")).readFileSync(fileURLToPath(import.meta.url))).digest("hex");
    expect(await n.run("sha256sum < /root/harness.test.ts", { user: "root" })).toBe(`${local}  -\n`);
  });

  it("keeps nodes' writes to themselves: a file written on one node is absent on the others and from the cached rootfs", async () => {
    await node("node-a").run("sudo -n sh -c 'echo a > /etc/only-on-node-a'");
    expect((await node("node-b").ssh("test -e /etc/only-on-node-a")).code).toBe(1);
    expect(existsSync(`${net.rootfs.path}/etc/only-on-node-a`)).toBe(false);
  });

  it("tears down every container, namespace, veth, bridge and key of the run", async () => {
    const slot = net.slot;
    const keyPath = net.keyPath;
    expect(existsSync(keyPath)).toBe(true);
    await net.teardown();
    expect(listHostsResources(slot)).toEqual({ netns: [], links: [], machines: [], cgroups: [] });
    expect(existsSync(`${RUN_BASE}/slot-${slot}`)).toBe(false);
    expect(existsSync(keyPath)).toBe(false);
    await net.teardown(); // idempotent
  });
});

describe.skipIf(skipReason !== undefined)("hosts harness: crash recovery", () => {
  it("removes a SIGKILLed run's container, namespace, veth and bridge at the next start", async () => {
    const fixture = fileURLToPath(new URL("./fixtures/boot-and-hang.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", fixture], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const slot = await new Promise<number>((resolve, reject) => {
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString();
        const m = /slot (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on("exit", (code) => reject(new Error(`fixture exited ${code} before booting: ${err}`)));
    });
    expect(listHostsResources(slot)).toEqual({ netns: [`fkh${slot}n1`], links: [`fkh${slot}br`, `fkh${slot}n1`], machines: [`fkh${slot}n1`], cgroups: HIERARCHIES.map((h) => `${h}/fkh${slot}n1`).sort() });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("close", r));
    // The crashed run's node is still up: nothing ran its exit handlers.
    expect(listHostsResources(slot).machines).toEqual([`fkh${slot}n1`]);
    expect(cleanupLeftovers()).toContain(slot);
    expect(listHostsResources(slot)).toEqual({ netns: [], links: [], machines: [], cgroups: [] });
    expect(existsSync(`${RUN_BASE}/slot-${slot}`)).toBe(false);
  }, 240_000);
});

if (skipReason !== undefined) {
  describe("hosts harness", () => {
    it.skip(`SKIPPED: ${skipReason}`, () => {});
  });
}
