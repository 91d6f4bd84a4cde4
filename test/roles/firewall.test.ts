/**
 * The node firewall of listening roles (roles/firewall.ts), below the hosts level:
 * - the rendered nftables script run for real by sh against the real nft in a fresh network namespace
 *   (`unshare -n -m`, its own /etc/hosts bind-mounted so name lookups are this test's): exact rulesets,
 *   changed/unchanged, a name that does not resolve (never opens the port), last known addresses kept,
 *   `--boot`, and one role's removal leaving another's rules alone;
 * - the macOS pf script run by sh with stand-ins for pfctl and dscacheutil (there is no pf off macOS): the
 *   anchor text through a pf.conf(5) grammar of the two rule forms it uses, the pf.conf line, the enable
 *   token, and the removal; not proven on a Mac;
 * - where each role's bundle puts the firewall, the icecc `--interface` choice, the queue's bind and the
 *   ntfy port's host IP, and the Windows host rules.
 * Needs root for the namespaces (the hosts level's machine); skipped loudly elsewhere.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadFleet, parseFleet } from "../../model/load.js";
import type { Fleet, FleetNode, RoleName } from "../../model/fleet.js";
import { renderBundle } from "../../roles/index.js";
import { readTemplate, renderTemplate } from "../../roles/bundle.js";
import { firewallRules, nftRemoveCommands, nftScript, pfScript, windowsHostFirewall } from "../../roles/firewall.js";
import { iceccInterface, localSchedulerHost } from "../../roles/iceccd/render.js";
import { ntfyContainer } from "../../roles/ntfy/render.js";

const FLEET_YAML = `fleet: fw-test
tailnet: fw-test.ts.net
defaults:
  user: fleet
  budgetUsdPerSession: 5
  claude: { version: 2.1.331 }
services:
  ntfy: { allowFrom: [fleet, 192.168.1.0/24] }
nodes:
  hub: { host: 192.0.2.10, os: debian, arch: x86_64, docker: true, roles: [icecc-scheduler, iceccd, queue, ntfy] }
  agent: { host: agent.fw-test.ts.net, os: debian, arch: x86_64, roles: [claude, agentapi, iceccd] }
  mac: { host: mac, os: macos, arch: aarch64, roles: [claude, agentapi, iceccd] }
`;
const fleet = parseFleet(FLEET_YAML, "fw-test.fleet.yaml");
const mesh = loadFleet("fleet.yaml");
const remote = loadFleet("examples/remote-tasks.fleet.yaml");
const node = (f: Fleet, name: string): FleetNode => f.nodes.find((n) => n.name === name)!;
/** /etc/hosts inside the namespace: agent has an IPv4 and an IPv6 address; `mac` resolves nowhere. */
const HOSTS = "127.0.0.1 localhost\n10.1.0.12 agent.fw-test.ts.net\nfd7a:115c:a1e0::12 agent.fw-test.ts.net\n";

const rootProblem = process.getuid?.() !== 0 ? "needs root (network and mount namespaces)" : spawnSync("nft", ["--version"]).status !== 0 ? "needs nft (apt-get install nftables)" : undefined;
if (rootProblem) console.warn(`\n*** firewall scripts against the real nft SKIPPED: ${rootProblem} ***\n`);

const work = mkdtempSync(join(tmpdir(), "fleetkit-firewall-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Writes each role's rendered nftables script of `f` into `work`; returns their paths by `node/role`. */
function scripts(f: Fleet, pairs: [string, RoleName][]): Record<string, string> {
  return Object.fromEntries(
    pairs.map(([n, role]) => {
      const path = join(work, `${n}-${role}.sh`);
      writeFileSync(path, nftScript(f, node(f, n), role, firewallRules(f, node(f, n), role)));
      return [`${n}/${role}`, path];
    }),
  );
}

/**
 * Runs `shell` as root in a new network and mount namespace with HOSTS as /etc/hosts and the firewall state
 * in `state` (fresh unless `keep`); everything one scenario does happens in that one namespace.
 */
function inNamespace(shell: string, state: string, keep = false): { status: number | null; stdout: string; stderr: string } {
  const hosts = join(work, "hosts");
  writeFileSync(hosts, HOSTS);
  if (!keep) rmSync(state, { recursive: true, force: true });
  const r = spawnSync("unshare", ["-n", "-m", "sh", "-c", `mount --bind ${hosts} /etc/hosts\n${shell}`], {
    env: { PATH: process.env.PATH, FK_FW_STATE: state, FK_FW_LOCK: join(work, "lock") },
    encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const SET = (name: string, elements?: string) =>
  `\tset ${name} {\n\t\ttype ${name.endsWith("v6") ? "ipv6" : "ipv4"}_addr\n\t\tflags interval\n\t\tauto-merge\n${elements ? `\t\telements = { ${elements} }\n` : ""}\t}\n`;
const CHAIN = (name: string, hook: string, rules: string[]) =>
  `\tchain ${name} {\n\t\ttype filter hook ${hook} priority filter - 10; policy accept;\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n`;
const INPUT = (chain: string, set: string, port: number, proto = "tcp") => [
  `${proto} dport ${port} ip saddr @${set}-v4 accept`,
  `${proto} dport ${port} ip6 saddr @${set}-v6 accept`,
  `${proto} dport ${port} counter drop comment "fleetkit ${set}: allowed sources only"`,
];
const MAC_WARNING = (role: string) => `fleetkit: firewall ${role}: mac does not resolve; it cannot connect here until it does (looked up again every 10 minutes)\n`;

describe.skipIf(rootProblem !== undefined)("the nftables script, run by sh against the real nft in a fresh namespace", () => {
  const s = scripts(fleet, [["hub", "iceccd"], ["hub", "icecc-scheduler"], ["hub", "ntfy"], ["hub", "queue"], ["agent", "agentapi"]]);
  const state = join(work, "state");

  it("every listening role's rules load into the one table side by side (nft accepts each chain name: `queue` alone is a keyword)", () => {
    const r = inNamespace(`${Object.values(s).map((p) => `sh ${p} 2>/dev/null`).join("\n")}\nnft -s list table inet fleetkit | grep -E '^\\s+chain '`, state);
    expect([r.status, r.stdout]).toEqual([
      0,
      "changed\n".repeat(5) + ["iceccd-input", "icecc-scheduler-input", "ntfy-input", "ntfy-forward", "queue-input", "agentapi-input"].map((c) => `\tchain ${c} {\n`).join(""),
    ]);
  });

  it("loads exactly the role's chain and sets: loopback, then the allowed nodes' addresses, then drop; a second run is unchanged", () => {
    const r = inNamespace(`sh ${s["hub/iceccd"]}; sh ${s["hub/iceccd"]}; nft -s list table inet fleetkit`, state);
    expect([r.status, r.stderr]).toEqual([0, MAC_WARNING("iceccd").repeat(2)]);
    // hub (an address), agent (a name with two addresses); mac does not resolve: no address, never "any".
    expect(r.stdout).toBe(
      "changed\nunchanged\ntable inet fleetkit {\n" +
        SET("iceccd-v4", "10.1.0.12, 192.0.2.10") + "\n" + SET("iceccd-v6", "fd7a:115c:a1e0::12") + "\n" +
        CHAIN("iceccd-input", "input", ['iif "lo" accept', ...INPUT("iceccd", "iceccd", 10245)]) + "}\n",
    );
  });

  it("the scheduler: TCP and UDP 8765 for compiling nodes, the text port 8766 for this node only", () => {
    const r = inNamespace(`sh ${s["hub/icecc-scheduler"]} >/dev/null 2>&1; nft -s list chain inet fleetkit icecc-scheduler-input`, state);
    expect(r.stdout).toBe(
      "table inet fleetkit {\n" +
        CHAIN("icecc-scheduler-input", "input", [
          'iif "lo" accept',
          ...INPUT("icecc-scheduler", "icecc-scheduler", 8765),
          ...INPUT("icecc-scheduler", "icecc-scheduler-discovery", 8765, "udp"),
          'tcp dport 8766 counter drop comment "fleetkit icecc-scheduler-text: allowed sources only"',
        ]) + "}\n",
    );
  });

  it("ntfy, published by Docker: the same list on the forward hook by the connection's original port, and the CIDR of allowFrom", () => {
    const r = inNamespace(`sh ${s["hub/ntfy"]} >/dev/null 2>&1; nft -s list chain inet fleetkit ntfy-forward; nft -s list set inet fleetkit ntfy-v4`, state);
    const dnat = "meta l4proto tcp ct direction original ct status dnat ct original proto-dst 8091";
    expect(r.stdout).toBe(
      "table inet fleetkit {\n" +
        CHAIN("ntfy-forward", "forward", [`${dnat} ip saddr @ntfy-v4 accept`, `${dnat} ip6 saddr @ntfy-v6 accept`, `${dnat} counter drop comment "fleetkit ntfy: allowed sources only"`]) +
        "}\ntable inet fleetkit {\n" + SET("ntfy-v4", "10.1.0.12, 192.0.2.10,\n\t\t\t     192.168.1.0/24") + "}\n",
    );
  });

  it("a name that stops resolving keeps its last known addresses (and says so); --boot reloads the saved ruleset without lookups", () => {
    // An earlier run resolved mac to 198.51.100.7; now it does not resolve.
    mkdirSync(state, { recursive: true });
    writeFileSync(join(state, "iceccd.hosts"), "mac 198.51.100.7\n");
    const kept = inNamespace(`sh ${s["hub/iceccd"]}; nft -s list set inet fleetkit iceccd-v4`, state, true);
    const v4 = SET("iceccd-v4", "10.1.0.12, 192.0.2.10,\n\t\t\t     198.51.100.7");
    expect([kept.status, kept.stderr]).toEqual([0, "fleetkit: firewall iceccd: mac does not resolve now; keeping its last known addresses 198.51.100.7\n"]);
    expect(kept.stdout).toBe(`changed\ntable inet fleetkit {\n${v4}}\n`);
    expect(readFileSync(join(state, "iceccd.hosts"), "utf8")).toBe("192.0.2.10 192.0.2.10\nagent.fw-test.ts.net 10.1.0.12\nagent.fw-test.ts.net fd7a:115c:a1e0::12\nmac 198.51.100.7\n".replace("192.0.2.10 192.0.2.10\n", ""));
    // In a fresh namespace (a reboot: no table) --boot loads what the last run loaded, resolving nothing.
    const boot = inNamespace(`sh ${s["hub/iceccd"]} --boot; nft -s list set inet fleetkit iceccd-v4`, state, true);
    expect([boot.status, boot.stderr, boot.stdout]).toEqual([0, "", `loaded\ntable inet fleetkit {\n${v4}}\n`]);
  });

  it("a run whose chain was flushed away (nftables.service restarted) loads it again; one role's removal leaves another's rules", () => {
    const r = inNamespace(
      [
        `sh ${s["hub/iceccd"]} 2>/dev/null`,
        `sh ${s["agent/agentapi"]}`,
        "nft flush ruleset",
        `sh ${s["hub/iceccd"]} 2>/dev/null`,
        `sh ${s["agent/agentapi"]}`,
        `nft -f - <<'EOF'\n${nftRemoveCommands(fleet, "iceccd", firewallRules(fleet, node(fleet, "hub"), "iceccd"))}\nEOF`,
        // Removing a role that is not loaded is a no-op, not an error.
        `nft -f - <<'EOF'\n${nftRemoveCommands(fleet, "iceccd", firewallRules(fleet, node(fleet, "hub"), "iceccd"))}\nEOF`,
        "nft list tables; nft -s list table inet fleetkit | grep -E '^\\s+(chain|set) '",
      ].join("\n"),
      state,
    );
    expect([r.status, r.stdout, r.stderr]).toEqual([0, "changed\nchanged\nchanged\nchanged\ntable inet fleetkit\n\tset agentapi-v4 {\n\tset agentapi-v6 {\n\tchain agentapi-input {\n", ""]);
  });

  it("nft refusing the rules stops the run (exit 1), says so, and leaves the rules in force untouched", () => {
    const bad = join(work, "bad.sh");
    writeFileSync(bad, readFileSync(s["agent/agentapi"], "utf8").replace("fk_fw_commit 'agentapi-input'", "fk_fw 'add rule inet fleetkit agentapi-input tcp dport 3284 frobnicate'\nfk_fw_commit 'agentapi-input'"));
    const r = inNamespace(`sh ${s["agent/agentapi"]}; sh ${bad}; echo "exit $?"; nft -s list chain inet fleetkit agentapi-input | grep -c dport`, state);
    expect(r.stdout).toBe("changed\nexit 1\n3\n");
    expect(r.stderr).toContain("fleetkit: firewall agentapi: nft refused this role's rules (above); the previous rules stay in force\n");
  });
});

/** pf.conf(5) forms the anchors use: a persistent table of addresses, and one quick block rule per port. */
function pfGrammarProblems(anchor: string): string[] {
  const problems: string[] = [];
  for (const line of anchor.trimEnd().split("\n")) {
    const table = /^table <([a-z_]{1,31})> persist(?: \{ ([^}]*) \})?$/.exec(line);
    const block = /^block drop in quick on ! lo0 proto (tcp|udp) from ! <([a-z_]{1,31})> to any port (\d{1,5})$/.exec(line);
    if (table) {
      for (const a of table[2]?.split(", ") ?? []) if (!isIP(a.split("/")[0]!)) problems.push(`${line}: ${a} is not an address`);
    } else if (!block || Number(block[3]) > 65535) {
      problems.push(`not a pf rule of the expected forms: ${line}`);
    }
  }
  return problems;
}

describe("the pf script (macOS), run by sh with stand-ins for pfctl and dscacheutil; not proven on a Mac", () => {
  const bin = join(work, "pf-bin");
  const pf = join(work, "pf");
  mkdirSync(bin, { recursive: true });
  // pfctl stand-in: anchors as files, references as a token list, every call logged.
  writeFileSync(
    join(bin, "pfctl"),
    `#!/bin/sh
echo "pfctl $*" >> "$PF/calls"
anchor=""; file=""; show=""; flush=""
while [ $# -gt 0 ]; do
  case $1 in
    -q) ;; -a) anchor=$(echo "$2" | tr / _); shift ;; -f) file=$2; shift ;; -s) show=$2; shift ;; -F) flush=$2; shift ;;
    -E) n=$(( $(wc -l < "$PF/tokens" 2>/dev/null || echo 0) + 1000 )); echo "$n" >> "$PF/tokens"; echo "pf enabled" >&2; echo "Token : $n" >&2; exit 0 ;;
    -X) grep -vx "$2" "$PF/tokens" > "$PF/tokens.new"; mv "$PF/tokens.new" "$PF/tokens"; exit 0 ;;
  esac
  shift
done
if [ -n "$file" ] && [ -n "$anchor" ]; then cp "$file" "$PF/anchor-$anchor"
elif [ -n "$file" ]; then cp "$file" "$PF/main.conf"
elif [ "$show" = References ]; then cat "$PF/tokens" 2>/dev/null
elif [ "$show" = rules ]; then grep '^block' "$PF/anchor-$anchor" 2>/dev/null
elif [ -n "$flush" ]; then rm -f "$PF/anchor-$anchor"
fi
`,
  );
  writeFileSync(join(bin, "dscacheutil"), `#!/bin/sh\n[ "$5" = agent.fw-test.ts.net ] && printf 'name: agent.fw-test.ts.net\\nip_address: 10.1.0.12\\nipv6_address: fd7a:115c:a1e0::12\\n\\n'\nexit 0\n`);
  chmodSync(join(bin, "pfctl"), 0o755);
  chmodSync(join(bin, "dscacheutil"), 0o755);
  const script = join(work, "mac-agentapi-pf.sh");
  const mac = node(fleet, "mac");
  writeFileSync(script, pfScript(fleet, mac, "agentapi", firewallRules(fleet, mac, "agentapi")));
  const iceccdScript = join(work, "mac-iceccd-pf.sh");
  writeFileSync(iceccdScript, pfScript(fleet, mac, "iceccd", firewallRules(fleet, mac, "iceccd")));
  const run = (shell: string) => {
    const r = spawnSync("sh", ["-c", shell], { env: { PATH: `${bin}:${process.env.PATH}`, PF: pf, FK_FW_STATE: join(pf, "state"), FK_FW_PFCONF: join(pf, "pf.conf") }, encoding: "utf8" });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const APPLE_PF_CONF = 'scrub-anchor "com.apple/*"\nnat-anchor "com.apple/*"\nrdr-anchor "com.apple/*"\ndummynet-anchor "com.apple/*"\nanchor "com.apple/*"\nload anchor "com.apple" from "/etc/pf.anchors/com.apple"\n';

  it("loads anchor fleetkit/<role> (valid pf.conf forms, exact text), adds the anchor line to pf.conf once, enables pf with the role's own token", () => {
    rmSync(pf, { recursive: true, force: true });
    mkdirSync(pf);
    writeFileSync(join(pf, "pf.conf"), APPLE_PF_CONF);
    const r = run(`sh ${script}; sh ${iceccdScript}; sh ${script}`);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, "changed\nchanged\nunchanged\n", MAC_WARNING("iceccd")]);
    const anchor = readFileSync(join(pf, "anchor-fleetkit_agentapi"), "utf8");
    expect(anchor).toBe("table <fleetkit_agentapi> persist { 192.0.2.10 }\nblock drop in quick on ! lo0 proto tcp from ! <fleetkit_agentapi> to any port 3284\n");
    const iceccd = readFileSync(join(pf, "anchor-fleetkit_iceccd"), "utf8");
    // mac itself does not resolve (it is not in the stand-in's table): left out, never "any".
    expect(iceccd).toBe("table <fleetkit_iceccd> persist { 192.0.2.10, 10.1.0.12, fd7a:115c:a1e0::12 }\nblock drop in quick on ! lo0 proto tcp from ! <fleetkit_iceccd> to any port 10245\n");
    expect([...pfGrammarProblems(anchor), ...pfGrammarProblems(iceccd)]).toEqual([]);
    expect(readFileSync(join(pf, "pf.conf"), "utf8")).toBe(`${APPLE_PF_CONF}# fleetkit: the rules of fleetkit roles (anchors fleetkit/<role>), kept by fleetkit\nanchor "fleetkit/*"\n`);
    expect(readFileSync(join(pf, "main.conf"), "utf8")).toBe(readFileSync(join(pf, "pf.conf"), "utf8"));
    expect(readFileSync(join(pf, "tokens"), "utf8")).toBe("1000\n1001\n");
    expect([readFileSync(join(pf, "state", "agentapi.token"), "utf8"), readFileSync(join(pf, "state", "iceccd.token"), "utf8")]).toEqual(["1000\n", "1001\n"]);
  });

  it("after a reboot (no anchors, no references) the job loads the anchor and takes a new reference", () => {
    rmSync(join(pf, "anchor-fleetkit_agentapi"));
    writeFileSync(join(pf, "tokens"), "");
    const r = run(`sh ${script}`);
    expect([r.status, r.stdout]).toEqual([0, "changed\n"]);
    expect(readFileSync(join(pf, "tokens"), "utf8")).toBe("1000\n");
  });

  it("the grammar check rejects what pf would not take", () => {
    expect(pfGrammarProblems("block drop in quick proto tcp from any to any port 3284\ntable <x> persist { 1.2.3 }\n")).toEqual([
      "not a pf rule of the expected forms: block drop in quick proto tcp from any to any port 3284",
      "table <x> persist { 1.2.3 }: 1.2.3 is not an address",
    ]);
  });
});

describe("where each bundle puts its firewall", () => {
  const lines = (f: Fleet, n: string, role: RoleName, which: "install" | "uninstall") => renderBundle(f, node(f, n), role)[which].split("\n");
  const at = (ls: string[], re: RegExp) => ls.findIndex((l) => re.test(l));

  it.each([
    // Debian's icecc package starts its daemon on install: the rules go in before the package.
    ["hub", "iceccd", /^fk_apt_install icecc$/],
    ["hub", "icecc-scheduler", /^fk_apt_install icecc$/],
    ["hub", "queue", /^fk_systemd_unit fleet-queue.service$/],
    ["agent", "agentapi", /^fk_systemd_unit claude-agentapi.service$/],
    ["hub", "ntfy", /docker container inspect 'ntfy'/],
  ] as const)("%s %s: rules loaded before %s; the boot unit and refresh timer enabled; uninstall stops the service first and removes the rules last", (n, role, first) => {
    const install = lines(fleet, n, role, "install");
    const loaded = at(install, /^fk_fw_out=\$\(\/bin\/sh '\/usr\/local\/lib\/fleetkit\/firewall\//);
    expect(loaded).toBeGreaterThan(0);
    expect(loaded).toBeLessThan(at(install, first));
    expect(install).toContain(`systemctl enable --now --quiet fleetkit-firewall-${role}.service fleetkit-firewall-${role}-refresh.timer`);
    expect(install).toContain("command -v nft >/dev/null 2>&1 || fk_apt_install nftables");
    const uninstall = lines(fleet, n, role, "uninstall");
    const removed = at(uninstall, /^    printf '%s\\n' 'add table inet fleetkit$/);
    expect(at(uninstall, new RegExp(`^fk_systemd_remove fleetkit-firewall-${role}-refresh.timer `))).toBeGreaterThan(0);
    expect(removed).toBeGreaterThan(at(uninstall, new RegExp(`^fk_systemd_remove fleetkit-firewall-${role}.service `)));
    expect(at(uninstall, new RegExp(`^fk_rm '/var/lib/fleetkit/firewall'/'${role}'.nft '/var/lib/fleetkit/firewall'/'${role}'.hosts$`))).toBeGreaterThan(removed);
  });

  it("ntfy open to anyone (allowFrom: anywhere): no firewall files, and its install takes away what an earlier one loaded", () => {
    const open = parseFleet(FLEET_YAML.replace("allowFrom: [fleet, 192.168.1.0/24]", "allowFrom: [anywhere]"), "open.yaml");
    const b = renderBundle(open, node(open, "hub"), "ntfy");
    expect(b.files.map((f) => f.path)).toEqual(["/etc/fleetkit/ntfy/server.public.yml"]);
    const install = b.install.split("\n");
    expect(install).toContain("fk_systemd_remove fleetkit-firewall-ntfy-refresh.timer /etc/systemd/system/fleetkit-firewall-ntfy-refresh.timer");
    expect(install).toContain("fk_rm '/usr/local/lib/fleetkit/firewall/ntfy.sh'");
    expect(at(install, /^delete chain inet fleetkit ntfy-forward(' \| nft -f -)?$/)).toBeGreaterThan(0);
    expect(install.some((l) => l.startsWith("fk_fw_out="))).toBe(false);
  });

  it("an unpinned AgentAPI download still stops the install before anything changes (the firewall comes after it)", () => {
    const install = lines(mesh, "rpi1", "agentapi", "install");
    expect(at(install, /^fk_die 'no sha256 pinned for agentapi/)).toBeLessThan(at(install, /^fk_put /));
  });

  it("macOS nodes get pf files, Linux nodes nftables ones", () => {
    const paths = (n: string) => renderBundle(fleet, node(fleet, n), "agentapi").files.map((f) => f.path).filter((p) => p.includes("firewall"));
    expect(paths("mac")).toEqual(["/usr/local/libexec/fleetkit/firewall/agentapi.sh", "/Library/LaunchDaemons/dev.fleetkit.firewall.agentapi.plist"]);
    expect(paths("agent")).toEqual([
      "/usr/local/lib/fleetkit/firewall/agentapi.sh",
      "/etc/systemd/system/fleetkit-firewall-agentapi.service",
      "/etc/systemd/system/fleetkit-firewall-agentapi-refresh.service",
      "/etc/systemd/system/fleetkit-firewall-agentapi-refresh.timer",
    ]);
  });

  it("roles that listen on nothing get no firewall; the unit orders itself before the role's services", () => {
    for (const role of ["tailscale", "claude", "worker", "toolchains"] as RoleName[]) {
      const n = mesh.nodes.find((x) => x.roles.includes(role))!;
      expect(renderBundle(mesh, n, role).install).not.toContain("fk_fw_out");
    }
    const unit = renderBundle(fleet, node(fleet, "hub"), "iceccd").files.find((f) => f.path === "/etc/systemd/system/fleetkit-firewall-iceccd.service")!.content;
    expect(unit.split("\n").filter((l) => /^(Before|After|PartOf|ExecStart|WantedBy)=/.test(l))).toEqual([
      "After=local-fs.target nftables.service",
      "Before=network-pre.target shutdown.target iceccd.service",
      "PartOf=nftables.service",
      "ExecStart=/usr/local/lib/fleetkit/firewall/iceccd.sh --boot",
      "WantedBy=sysinit.target",
    ]);
  });

  it("macOS: the pf job is loaded after the rules, removed after the role's service, and the anchor emptied last", () => {
    const install = lines(fleet, "mac", "iceccd", "install");
    expect(at(install, /^fk_fw_out=\$\(\/bin\/sh '\/usr\/local\/libexec\/fleetkit\/firewall\/iceccd.sh'\)/)).toBeLessThan(at(install, /^fk_brew_install icecream$/));
    expect(install).toContain("fk_launchd_daemon dev.fleetkit.firewall.iceccd /Library/LaunchDaemons/dev.fleetkit.firewall.iceccd.plist system");
    const uninstall = lines(fleet, "mac", "iceccd", "uninstall");
    expect(at(uninstall, /^fk_launchd_remove dev.fleetkit.firewall.iceccd /)).toBeGreaterThan(at(uninstall, /^fk_launchd_remove org.icecc.iceccd /));
    expect(at(uninstall, /^pfctl -q -a fleetkit\/'iceccd' -F all/)).toBeGreaterThan(at(uninstall, /^fk_rm '\/usr\/local\/libexec\/fleetkit\/firewall\/iceccd.sh'/));
  });
});

describe("bind only where needed", () => {
  const FLEETS = { mesh, "fw-test": fleet };
  it.each([
    // Linux nodes reached over the tailnet (MagicDNS names of the fleet's tailnet) bind tailscale0 ...
    ["mesh", "arch-orchestrator", "tailscale0"],
    ["mesh", "rpi1", "tailscale0"],
    // ... Macs name their Tailscale interface utun<N> at start, WSL sees the host's adapters: firewall only.
    ["mesh", "macbook1", undefined],
    ["mesh", "windows-desktop", undefined],
    // No tailscale role, and an address outside the tailnet (the hub): the fleet comes in over the LAN.
    ["fw-test", "hub", undefined],
    ["fw-test", "agent", undefined],
  ] as const)("%s fleet: icecc on %s binds %s", (f, n, iface) => {
    expect(iceccInterface(FLEETS[f], node(FLEETS[f], n))).toBe(iface);
  });

  it("the scheduler node's own daemon registers over the tailnet when the scheduler is bound there, else on loopback", () => {
    expect(localSchedulerHost(mesh, node(mesh, "arch-orchestrator"))).toBe("arch-orchestrator.tail-agent-mesh.ts.net");
    expect(localSchedulerHost(fleet, node(fleet, "hub"))).toBe("127.0.0.1");
    const tailnetIp = parseFleet(FLEET_YAML.replace("host: 192.0.2.10, os: debian, arch: x86_64, docker: true, roles: [", "host: 100.101.1.10, os: debian, arch: x86_64, docker: true, roles: [tailscale, "), "t.yaml");
    expect([iceccInterface(tailnetIp, node(tailnetIp, "hub")), localSchedulerHost(tailnetIp, node(tailnetIp, "hub"))]).toEqual(["tailscale0", "100.101.1.10"]);
    const unit = renderBundle(tailnetIp, node(tailnetIp, "hub"), "icecc-scheduler").files.find((f) => f.path === "/etc/systemd/system/icecc-scheduler.service")!.content;
    expect(unit.split("\n").filter((l) => /^(After|ExecStart)=/.test(l))).toEqual([
      "After=network-online.target tailscaled.service",
      "ExecStart=/usr/sbin/icecc-scheduler --port 8765 --interface tailscale0 --user-uid icecc",
    ]);
  });

  it("the queue listens on every address (its own name is loopback on Debian) and checks GET /healthz where other nodes connect", () => {
    const b = renderBundle(remote, node(remote, "raspberrypi"), "queue");
    expect(b.files.find((f) => f.path === "/etc/systemd/system/fleet-queue.service")!.content).toContain(" --listen 0.0.0.0:8787 ");
    const install = b.install.split("\n");
    expect(install).toContain(`fk_q_addr=$(getent ahosts 'raspberrypi' 2>/dev/null | awk '$1 !~ /^(127\\.|::1$|::ffff:127\\.)/ { print $1; exit }') || fk_q_addr=""`);
    expect(install).toContain(`[ -n "$fk_q_addr" ] || fk_q_addr=$('/usr/local/bin/tailscale' ip -4 2>/dev/null | head -n1) || fk_q_addr=""`);
  });

  it.each([
    ["a tailnet address, fleet and tailnet allowed", "100.101.1.10", "[fleet, tailnet]", "100.101.1.10"],
    ["a tailnet address, but a LAN block allowed too", "100.101.1.10", "[fleet, 192.168.1.0/24]", undefined],
    ["a MagicDNS name (its address is not known here)", "hub", "[fleet, tailnet]", undefined],
  ])("ntfy's published port with %s: host IP %s", (_, host, allowFrom, ip) => {
    const f = parseFleet(FLEET_YAML.replace("host: 192.0.2.10", `host: ${host}`).replace("allowFrom: [fleet, 192.168.1.0/24]", `allowFrom: ${allowFrom}`).replace("roles: [icecc-scheduler", "roles: [tailscale, icecc-scheduler"), "n.yaml");
    expect(ntfyContainer(f, node(f, "hub")).ports).toEqual([{ internal: 80, external: 8091, ...(ip ? { ip } : {}) }]);
  });
});

describe("the Windows host side (mirrored WSL networking)", () => {
  it("one allow rule per WSL service port with the allowed nodes, in the tailscale role's host script; all fleetkit-* rules removed with it", () => {
    const fw = windowsHostFirewall(mesh, node(mesh, "windows-desktop"));
    const compilers = "'arch-orchestrator', 'macbook1', 'imac', 'macbook2', 'rpi1', 'rpi2', 'rpi3', 'windows-desktop', 'windows-laptop'";
    expect(fw.install.split("\n")).toContain(`$FkFw = @(@{ Name = 'fleetkit-iceccd'; Proto = 'TCP'; Port = '10245'; From = @(${compilers}) })`);
    expect(fw.install).not.toMatch(/^\s*#(?! --- Firewall)/m);
    const ts = renderBundle(mesh, node(mesh, "windows-desktop"), "tailscale");
    expect(ts.install).toContain(fw.install);
    expect(ts.uninstall).toContain("Get-NetFirewallRule -Name 'fleetkit-*' -ErrorAction SilentlyContinue | ForEach-Object { Remove-NetFirewallRule -Name $_.Name }");
    expect(windowsHostFirewall(mesh, node(mesh, "rpi1"))).toEqual({ install: "", uninstall: "" });
  });

  it("the template's rule loop creates both rules with -RemoteAddress, and a rule with no resolved address is removed, never left open", () => {
    const t = readTemplate("firewall/windows-host.ps1");
    expect(t).toContain("New-NetFirewallRule -Name $r.Name -DisplayName \"fleetkit $($r.Name)\" -Direction Inbound -Action Allow -Protocol $r.Proto -LocalPort $r.Port -RemoteAddress $a -Profile Any");
    expect(t).toContain("-VMCreatorId '{40E0AC32-46A5-438A-A0B2-2B479E8F2E90}' -Action Allow -Protocol $r.Proto -LocalPorts $r.Port -RemoteAddresses $a");
    expect(t).toMatch(/if \(\$a\.Count -eq 0\) \{\n.*\n    if \(\$cur\) \{ Fk-FwDrop \$r\.Name; \$script:FkChanged = \$true \}\n  \} elseif/);
    expect(renderTemplate("firewall/windows-host-remove.ps1", { node: "n" })).toContain("Remove-NetFirewallHyperVRule -Name $_.Name");
  });
});
