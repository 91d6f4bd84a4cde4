/**
 * The node firewall: each role that listens (agentapi, queue, iceccd, icecc-scheduler, ntfy) installs the
 * rules of its ports from the fleet's allow-list (roles/reach.ts `roleReach`) into the node's own firewall,
 * and its uninstall removes them. Loopback and the allowed sources may connect to the role's ports; every
 * other packet to those ports is dropped; no other port (SSH above all) is touched.
 *
 * Per OS:
 * - Linux and inside a Windows node's WSL distro: nftables. fleetkit's own table `inet fleetkit` holds one
 *   base chain per role (`<role>-input`: hook input, priority filter - 10) and two sets per service
 *   (`<service>-v4`, `<service>-v6`), so roles load and leave independently and the node's own ruleset is
 *   never read or changed; the last role to leave deletes the table. A rendered script per role
 *   (`<binDir>/firewall/<role>.sh`) looks the allowed nodes' fleet.yaml `host` names up with `getent ahosts`
 *   and loads the role's chain with one `nft -f` (one transaction). It runs at install, before the role's
 *   packages and services (a Debian package starts its daemon on install), from a systemd unit at boot
 *   (`fleetkit-firewall-<role>.service`: the last loaded ruleset, before network-pre.target and the role's
 *   services, no lookups; PartOf nftables.service, whose `flush ruleset` would drop it), and from a timer a
 *   minute after boot and every 10 minutes (`fleetkit-firewall-<role>-refresh.timer`), because addresses
 *   change (DHCP, a re-joined tailnet device). A name that does not resolve keeps the addresses it last had;
 *   one never resolved is left out (that node cannot connect), so a failed lookup never opens a port and
 *   never fails the install. ntfy runs in Docker, whose DNAT sends published ports through the forward hook,
 *   not input: its role also gets a chain `ntfy-forward` matching `ct original proto-dst` (FIELD-NOTES:
 *   Docker's rules bypass a host firewall on the input hook). nftables is installed when missing (apt,
 *   pacman) and never removed: it is system infrastructure the node's own rules may use.
 * - macOS: pf. The role's rules are the anchor `fleetkit/<role>` (a `block drop in quick` of the role's ports
 *   from everything but loopback and a table of the allowed addresses), loaded by a rendered script run at
 *   install and by a LaunchDaemon job `dev.fleetkit.firewall.<role>` at boot and every 10 minutes (anchors
 *   loaded with `pfctl -a` do not survive a restart); /etc/pf.conf gets one `anchor "fleetkit/*"` line, and
 *   pf is enabled with a reference-counted `pfctl -E` token per role, released by `pfctl -X` on uninstall
 *   (pfctl(8)). Rendered and checked here, not run: there is no pfctl off macOS.
 * - Windows (the host side of a `windows-wsl` node): WSL2's mirrored networking (roles/wsl.ts) receives the
 *   distro's listening ports on the host's addresses, past Windows Defender Firewall and the Hyper-V
 *   firewall, which block inbound connections unless a rule allows them. {@link windowsHostFirewall} gives
 *   each service port one `New-NetFirewallRule` and one `New-NetFirewallHyperVRule` (WSL's VM creator id)
 *   allowing exactly the allowed nodes (`-RemoteAddress`, looked up on every run); it runs in the tailscale
 *   role's Windows host script, the node's one host-side step (see roles/wsl.ts for why). nftables in the
 *   distro enforces the same list behind it.
 */
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import { Fragment, readTemplate, renderTemplate, shQuote, type RoleParts } from "./bundle.js";
import { commentText } from "./escape.js";
import { launchdPlist } from "./launchd.js";
import { platformFor, type Platform } from "./platform.js";
import { nodeReach, roleReach, type ReachRule } from "./reach.js";
import { isBuiltinRole } from "./registry.js";
import type { BundleFile } from "./types.js";
import { withoutCommentLines } from "./wsl.js";

/** nftables priority of fleetkit's chains: just before the usual `filter` chains, so a drop is final. */
export const NFT_PRIORITY = "filter - 10";
/** launchd label of a role's pf job on macOS. */
export const pfJobLabel = (role: RoleName): string => `dev.fleetkit.firewall.${role}`;

/** The rules `role` enforces on `node`: its reach rules, less those open to anyone (ntfy `allowFrom: anywhere`). */
export function firewallRules(fleet: Fleet, node: FleetNode, role: RoleName): ReachRule[] {
  return roleReach(fleet, node, role).filter((r) => !r.open);
}

/** Whether `role` listens on `node` at all (has reach rules, open or not): only such roles touch the firewall. */
export function listens(fleet: Fleet, node: FleetNode, role: RoleName): boolean {
  return roleReach(fleet, node, role).length > 0;
}

/** Where the firewall state of `node` lives: the loaded rulesets, last known addresses, pf tokens. */
export function firewallStateDir(node: FleetNode): string {
  return `${platformFor(node).stateDir}/firewall`;
}

/** The rendered firewall script of `role` on `node`. */
export function firewallScript(node: FleetNode, role: RoleName): string {
  return `${platformFor(node).binDir}/firewall/${role}.sh`;
}

/**
 * nftables chains of `role`: `<role>-input`, plus `<role>-forward` for a service Docker publishes (ntfy).
 * Suffixed, because a bare role name can be an nft keyword (`queue` is a statement).
 */
export function nftChains(role: RoleName): string[] {
  return role === "ntfy" ? [`${role}-input`, `${role}-forward`] : [`${role}-input`];
}

/** The allowed sources of a rule as the node looks them up: the allowed nodes' fleet.yaml hosts, then CIDRs. */
export function ruleSources(fleet: Fleet, rule: ReachRule): string[] {
  let hosts = hostsByName.get(fleet);
  if (!hosts) hostsByName.set(fleet, (hosts = new Map(fleet.nodes.map((n) => [n.name, n.host]))));
  return [...new Set([...rule.fromNodes.map((name) => hosts.get(name)!), ...rule.fromCidrs])];
}

/** Each fleet's node hosts by node name: a rule from every node would otherwise search the list per node (quadratic). */
const hostsByName = new WeakMap<Fleet, Map<string, string>>();

function ruleComment(fleet: Fleet, r: ReachRule): string {
  const from = [...r.fromNodes, ...r.fromCidrs];
  return `# ${commentText(`${r.service} ${r.proto}/${r.port} from ${from.length ? from.join(", ") : "this node only"}: ${r.why}`)}`;
}

/** The shell lines of the Linux script that build `role`'s nft ruleset (after the helpers). Pure. */
function nftRuleLines(fleet: Fleet, role: RoleName, rules: ReachRule[]): string[] {
  const q = shQuote;
  const [input, forward] = nftChains(role);
  const lines = [
    "fk_fw 'add table inet fleetkit'",
    `fk_fw ${q(`add chain inet fleetkit ${input} { type filter hook input priority ${NFT_PRIORITY}; policy accept; }`)}`,
    `fk_fw ${q(`flush chain inet fleetkit ${input}`)}`,
  ];
  if (forward) {
    lines.push(
      `fk_fw ${q(`add chain inet fleetkit ${forward} { type filter hook forward priority ${NFT_PRIORITY}; policy accept; }`)}`,
      `fk_fw ${q(`flush chain inet fleetkit ${forward}`)}`,
    );
  }
  for (const r of rules) {
    const sources = ruleSources(fleet, r);
    lines.push(ruleComment(fleet, r));
    if (sources.length) lines.push(`fk_fw_set ${[r.service, ...sources].map(q).join(" ")}`);
  }
  lines.push(`fk_fw ${q(`add rule inet fleetkit ${input} iif "lo" accept`)}`);
  for (const r of rules) {
    const add = (chain: string, match: string, verdict: string) => lines.push(`fk_fw ${q(`add rule inet fleetkit ${chain} ${match} ${verdict}`)}`);
    const allow = ruleSources(fleet, r).length > 0;
    const port = `${r.proto} dport ${r.port}`;
    if (allow) {
      add(input, `${port} ip saddr @${r.service}-v4`, "accept");
      add(input, `${port} ip6 saddr @${r.service}-v6`, "accept");
    }
    add(input, port, `counter drop comment "fleetkit ${r.service}: allowed sources only"`);
    if (forward) {
      // Docker's DNAT rewrote the port; the connection's original direction still carries the published one.
      const dnat = `meta l4proto ${r.proto} ct direction original ct status dnat ct original proto-dst ${r.port}`;
      if (allow) {
        add(forward, `${dnat} ip saddr @${r.service}-v4`, "accept");
        add(forward, `${dnat} ip6 saddr @${r.service}-v6`, "accept");
      }
      add(forward, dnat, `counter drop comment "fleetkit ${r.service}: allowed sources only"`);
    }
  }
  lines.push(`fk_fw_commit ${nftChains(role).map(q).join(" ")}`);
  return lines;
}

/** nft commands that remove `role`'s chains and sets, valid whether or not they exist (add, then delete). */
export function nftRemoveCommands(fleet: Fleet, role: RoleName, rules: ReachRule[]): string {
  const lines = ["add table inet fleetkit"];
  for (const c of nftChains(role)) lines.push(`add chain inet fleetkit ${c}`, `flush chain inet fleetkit ${c}`, `delete chain inet fleetkit ${c}`);
  for (const r of rules) {
    for (const fam of [4, 6]) {
      lines.push(`add set inet fleetkit ${r.service}-v${fam} { type ipv${fam}_addr; flags interval; auto-merge; }`, `delete set inet fleetkit ${r.service}-v${fam}`);
    }
  }
  return lines.join("\n");
}

/**
 * The helpers of a firewall script without their comment lines (the first stays, naming the template): a
 * Windows node's WSL install must fit one command line (roles/bundle.ts), and the template documents them.
 */
function helpers(template: string): string {
  const text = `${readTemplate(template).trimEnd()}\n${readTemplate("firewall/addresses.sh").trimEnd()}`;
  return withoutCommentLines(`# --- fleetkit firewall helpers (templates/${template}, templates/firewall/addresses.sh) ---\n${text}`);
}

/** The header comment shared by both scripts. */
function scriptHeader(fleet: Fleet, node: FleetNode, role: RoleName, what: string, rules: ReachRule[]): string[] {
  return [
    "#!/bin/sh",
    `# ${commentText(`Rendered by fleetkit for node ${node.name}: the firewall rules of role ${role} (${what}).`)}`,
    "# Allowed sources (fleet.yaml hosts or CIDR blocks) by service, from roles/reach.ts:",
    ...rules.map((r) => ruleComment(fleet, r)),
    "# Prints `changed` or `unchanged` (`loaded` at boot). Run as root.",
    "set -eu",
    `FK_FW_ROLE=${shQuote(role)}`,
  ];
}

/** The Linux (nftables) firewall script of `role` on `node`. Pure. */
export function nftScript(fleet: Fleet, node: FleetNode, role: RoleName, rules: ReachRule[]): string {
  return [
    ...scriptHeader(fleet, node, role, `nftables table inet fleetkit, chain ${nftChains(role).join(" and ")}`, rules),
    helpers("firewall/nft-lib.sh"),
    "fk_fw_begin",
    'fk_fw_boot "${1:-}"',
    ...nftRuleLines(fleet, role, rules),
  ].join("\n") + "\n";
}

/** The pf anchor lines of `role` (after the helpers): one table and one block rule per service. Pure. */
function pfRuleLines(fleet: Fleet, role: RoleName, rules: ReachRule[]): string[] {
  const q = shQuote;
  const lines: string[] = [];
  for (const r of rules) {
    const table = `fleetkit_${r.service.replace(/-/g, "_")}`;
    const sources = ruleSources(fleet, r);
    lines.push(ruleComment(fleet, r), `fk_fw_table ${[table, ...sources].map(q).join(" ")}`);
    // quick: a drop here is final; loopback (lo0) always passes; the node's own rules still decide the rest.
    lines.push(`fk_fw ${q(`block drop in quick on ! lo0 proto ${r.proto} from ! <${table}> to any port ${r.port}`)}`);
  }
  lines.push("fk_fw_commit");
  return lines;
}

/** The macOS (pf) firewall script of `role` on `node`. Pure. */
export function pfScript(fleet: Fleet, node: FleetNode, role: RoleName, rules: ReachRule[]): string {
  return [
    ...scriptHeader(fleet, node, role, `pf anchor fleetkit/${role}`, rules),
    helpers("firewall/pf-lib.sh"),
    "fk_fw_begin",
    ...pfRuleLines(fleet, role, rules),
  ].join("\n") + "\n";
}

/** What a role's bundle gains for its firewall (see {@link withFirewall}). */
interface FirewallParts {
  files: BundleFile[];
  /** Shell run before the role's own preInstall. */
  before: string;
  /** Shell run after the role's own postInstall. */
  after: string;
  /** Shell run after the role's own preUninstall (its services are stopped by then). */
  stop: string;
  /** Shell run after the role's own postUninstall. */
  remove: string;
}

/** nftables when missing (never released on uninstall: the node's own rules may use it). */
function ensureNft(p: Platform): string {
  return `command -v nft >/dev/null 2>&1 || ${p.family === "arch" ? "fk_pacman_install" : "fk_apt_install"} nftables`;
}

/**
 * Runs the firewall script and remembers in `fk_fw_changed` whether it loaded new rules: a firewall-only
 * change (new addresses) marks the install changed at its end without restarting the role's services. In
 * the early position the placed firewall files' own changes are taken out of FK_CHANGED the same way.
 */
function runScript(role: RoleName, script: string, loaded: string, early: boolean): string {
  return [
    early ? "fk_fw_changed=$FK_CHANGED\nFK_CHANGED=0" : "fk_fw_changed=0",
    `fk_fw_out=$(/bin/sh ${shQuote(script)}) || fk_die ${shQuote(`the firewall rules of role ${role} could not be loaded (the message above says why); ${role} was not started`)}`,
    `if [ "$fk_fw_out" = changed ]; then fk_fw_changed=1; fk_log ${shQuote(`firewall: loaded ${loaded}`)}; fi`,
  ].join("\n");
}

function linuxFirewall(fleet: Fleet, node: FleetNode, role: RoleName, rules: ReachRule[], services: string[], early: boolean): FirewallParts {
  const p = platformFor(node);
  const script = firewallScript(node, role);
  const unit = `fleetkit-firewall-${role}.service`;
  const refresh = `fleetkit-firewall-${role}-refresh`;
  const dir = "/etc/systemd/system";
  const view = { node: node.name, role, script, chains: nftChains(role).join(", "), plural: nftChains(role).length > 1, services: services.join(" ") };
  const scripts = `${p.binDir}/firewall`;
  const remove = renderTemplate("firewall/nft-remove.sh", { role, state: firewallStateDir(node), scripts, commands: nftRemoveCommands(fleet, role, rules) }).trimEnd();
  const stop = [`${refresh}.timer`, `${refresh}.service`, unit].map((u) => `fk_systemd_remove ${u} ${dir}/${u}`).join("\n");
  if (rules.length === 0) {
    // Every port of the role is open to anyone (ntfy `allowFrom: anywhere`): what a previous install loaded goes.
    const cleanup = [stop, `fk_rm ${shQuote(script)}`, remove].join("\n");
    return { files: [], before: cleanup, after: "", stop: "", remove: cleanup };
  }
  return {
    files: [
      { path: script, mode: 0o755, owner: "root", kind: "shell", content: nftScript(fleet, node, role, rules) },
      { path: `${dir}/${unit}`, mode: 0o644, owner: "root", kind: "systemd", content: renderTemplate("firewall/fleetkit-firewall.service", view) },
      { path: `${dir}/${refresh}.service`, mode: 0o644, owner: "root", kind: "systemd", content: renderTemplate("firewall/fleetkit-firewall-refresh.service", view) },
      { path: `${dir}/${refresh}.timer`, mode: 0o644, owner: "root", kind: "systemd", content: renderTemplate("firewall/fleetkit-firewall-refresh.timer", view) },
    ],
    before: [
      `# Firewall: role ${role}'s ports answer only loopback and the allowed sources before anything of the role listens.`,
      ensureNft(p),
      runScript(role, script, `chain ${nftChains(role).join(" and ")} of table inet fleetkit`, early),
      "systemctl daemon-reload",
      `systemctl enable --now --quiet ${unit} ${refresh}.timer`,
    ].join("\n"),
    after: 'if [ "$fk_fw_changed" = 1 ]; then FK_CHANGED=1; fi',
    stop,
    remove,
  };
}

function macosFirewall(fleet: Fleet, node: FleetNode, role: RoleName, rules: ReachRule[], early: boolean): FirewallParts {
  const script = firewallScript(node, role);
  const label = pfJobLabel(role);
  const plist = `/Library/LaunchDaemons/${label}.plist`;
  const remove = renderTemplate("firewall/pf-remove.sh", { role, state: firewallStateDir(node), scripts: `${platformFor(node).binDir}/firewall` }).trimEnd();
  if (rules.length === 0) {
    const cleanup = [`fk_launchd_remove ${label} ${plist} system`, `fk_rm ${shQuote(script)}`, remove].join("\n");
    return { files: [], before: cleanup, after: "", stop: "", remove: cleanup };
  }
  return {
    files: [
      { path: script, mode: 0o755, owner: "root", kind: "shell", content: pfScript(fleet, node, role, rules) },
      {
        path: plist,
        mode: 0o644,
        owner: "root",
        kind: "launchd",
        content: launchdPlist(
          [
            `Rendered by fleetkit for node ${node.name}: loads role ${role}'s pf anchor fleetkit/${role} at boot (anchors`,
            "loaded with pfctl -a do not survive a restart), enables pf with the role's own reference, and looks the",
            "allowed nodes up again every 10 minutes. A job that runs and exits, not a daemon.",
          ],
          { Label: label, ProgramArguments: ["/bin/sh", script], RunAtLoad: true, KeepAlive: false, StartInterval: 600, StandardErrorPath: "/var/log/fleetkit-firewall.log" },
        ),
      },
    ],
    before: [
      `# Firewall: role ${role}'s ports answer only loopback and the allowed sources before anything of the role listens.`,
      runScript(role, script, `pf anchor fleetkit/${role}`, early),
      // The job (re)loads when its plist or rules changed; that counts as a firewall change, not the role's.
      "fk_fw_role_changed=$FK_CHANGED",
      'if [ "$fk_fw_changed" = 1 ]; then FK_CHANGED=1; fi',
      `fk_launchd_daemon ${label} ${plist} system`,
      'if [ "$FK_CHANGED" = 1 ]; then fk_fw_changed=1; fi',
      "FK_CHANGED=$fk_fw_role_changed",
    ].join("\n"),
    after: 'if [ "$fk_fw_changed" = 1 ]; then FK_CHANGED=1; fi',
    stop: `fk_launchd_remove ${label} ${plist} system`,
    remove,
  };
}

/**
 * Roles whose packages start their daemon as they install (Debian's icecc package starts iceccd and
 * icecc-scheduler from its postinst, on every interface): their firewall goes in before the role's
 * preInstall. Every other role's goes in before its postInstall (which starts its services), so a role
 * whose install stops early (an unpinned download) still stops before anything changed.
 */
const FIREWALL_FIRST: ReadonlySet<RoleName> = new Set(["iceccd", "icecc-scheduler"]);

/**
 * `parts` of `role` on `node` with the role's firewall added (module docstring): its script and units
 * placed and the rules loaded before anything of the role can listen ({@link FIREWALL_FIRST}), the units
 * stopped after the role's services and the rules removed at the end of its uninstall. Roles that do not
 * listen come back unchanged. Pure.
 */
export function withFirewall(fleet: Fleet, node: FleetNode, role: RoleName, parts: RoleParts): RoleParts {
  if (parts.target === "windows-host" || !listens(fleet, node, role)) return parts;
  const rules = firewallRules(fleet, node, role);
  // A user role's packages may start its service as they install (Debian's do): rules first, to be safe.
  const early = FIREWALL_FIRST.has(role) || !isBuiltinRole(role);
  const fw =
    platformFor(node).family === "macos"
      ? macosFirewall(fleet, node, role, rules, early)
      : linuxFirewall(fleet, node, role, rules, parts.services.filter((s) => s.manager === "systemd").map((s) => s.name), early);
  const join = (...xs: (string | undefined)[]) => xs.filter(Boolean).join("\n");
  const stopAndRemove = { preUninstall: join(parts.preUninstall, fw.stop), postUninstall: join(parts.postUninstall, fw.remove) };
  if (early) {
    return {
      ...parts,
      ...stopAndRemove,
      firstFiles: [...(parts.firstFiles ?? []), ...fw.files],
      preInstall: join(fw.before, parts.preInstall),
      postInstall: join(parts.postInstall, fw.after),
    };
  }
  return { ...parts, ...stopAndRemove, files: [...parts.files, ...fw.files], postInstall: join(fw.before, parts.postInstall, fw.after) };
}

/**
 * PowerShell lines for a Windows node's host script (after the prelude): allow rules of Windows Defender
 * Firewall and the Hyper-V firewall for the ports its WSL roles listen on, and the lines that remove them.
 * Both empty for a node that is not `windows-wsl` or listens on nothing. Pure.
 */
export function windowsHostFirewall(fleet: Fleet, node: FleetNode): { install: string; uninstall: string } {
  if (node.os !== "windows-wsl") return { install: "", uninstall: "" };
  const rules = nodeReach(fleet, node).filter((r) => !r.open);
  const entries = rules
    .filter((r) => ruleSources(fleet, r).length > 0)
    .map((r) => ({ Name: `fleetkit-${r.service}`, Proto: r.proto.toUpperCase(), Port: String(r.port), From: ruleSources(fleet, r) }));
  // The host script travels on one Windows command line (roles/bundle.ts): its comments stay in the template.
  const install = withoutCommentLines(renderTemplate("firewall/windows-host.ps1", { node: node.name, rules: Fragment.psHashtables(entries) }).trimEnd());
  return {
    install,
    uninstall: renderTemplate("firewall/windows-host-remove.ps1", { node: node.name }).trimEnd(),
  };
}
