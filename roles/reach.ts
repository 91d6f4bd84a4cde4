/**
 * Who may reach what: the fleet's allow-list of every port a fleetkit role listens on, derived from
 * fleet.yaml alone. It is the one description both enforcements read — the node firewall each role installs
 * (nftables on Linux and inside WSL, a pf anchor on macOS, a Windows Firewall rule) and the tailnet policy
 * the stack manages when it has a Tailscale API key — so the two can never disagree.
 *
 * The rules (issue "trust boundaries"), each declared by its role's definition (`listens` in roles/<role>/index.ts):
 * - `agentapi` (services.agentapi.port, TCP): loopback plus the nodes that drive agents, i.e. the queue
 *   node (its server proxies the dashboard's conversations). AgentAPI has no authentication at all
 *   (FIELD-NOTES), so whoever reaches the port drives Claude as the node user.
 * - `queue` (services.queue.port, TCP): every fleet node (workers claim, every node's `fleet task`).
 * - `iceccd` (TCP 10245): the nodes that compile, i.e. every node running iceccd (a client hands jobs
 *   straight to the remote daemon the scheduler picked).
 * - `icecc-scheduler` (TCP 8765 for daemons and monitors, UDP 8765 discovery; TCP 8766, the text
 *   interface, loopback only): every node running iceccd.
 * - `ntfy` (services.ntfy.port, TCP): `services.ntfy.allowFrom` — `fleet` (the fleet's nodes), `tailnet`
 *   (every device on the tailnet: phones subscribe) and/or CIDR blocks; default fleet + tailnet.
 *
 * - a user role (fleet.yaml `roleSources:`): the ports its definition's `listens` declares, sources in the
 *   grammar of `services.ntfy.allowFrom` (checked here, since they become firewall rules).
 *
 * Loopback is always allowed (a node talking to itself). Ports not listed here (SSH above all) are not
 * touched: fleetkit never locks its operator out.
 */
import { BlockList, isIP } from "node:net";
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import { nodeName, reachSource } from "../model/grammar.js";
import { UserError } from "../model/errors.js";
import { isBuiltinRole, roleDefinition, roleSettings } from "./registry.js";
import type { RoleListen } from "./types.js";

/** Port icecc daemons listen on for jobs (icecream `iceccd(1)`: "TCP port 10245"). */
export const ICECCD_PORT = 10245;
/** Port of the icecc scheduler for daemons and monitors, TCP (and UDP for broadcast discovery). */
export const ICECC_SCHEDULER_PORT = 8765;
/** The scheduler's plain-text status interface (icecream `icecc-scheduler(1)`); kept to loopback. */
export const ICECC_SCHEDULER_TEXT_PORT = 8766;

/**
 * Tailscale's address ranges: every tailnet device has an address in 100.64.0.0/10 (the CGNAT range) and
 * in fd7a:115c:a1e0::/48 (Tailscale KB "What are these 100.x.y.z addresses?").
 */
export const TAILNET_CIDRS = ["100.64.0.0/10", "fd7a:115c:a1e0::/48"] as const;

const TAILNET_BLOCKS = new BlockList();
TAILNET_BLOCKS.addSubnet("100.64.0.0", 10, "ipv4");
TAILNET_BLOCKS.addSubnet("fd7a:115c:a1e0::", 48, "ipv6");

/** Whether `host` is an IP address in Tailscale's ranges ({@link TAILNET_CIDRS}). */
export function isTailnetAddress(host: string): boolean {
  const family = isIP(host);
  return family !== 0 && TAILNET_BLOCKS.check(host, family === 4 ? "ipv4" : "ipv6");
}

/**
 * Whether the fleet reaches `node` over the tailnet: it runs the tailscale role and its fleet.yaml `host` is
 * a tailnet address, or a MagicDNS name of the fleet's `tailnet` (a bare name, or one ending in the tailnet
 * suffix). A host that is a LAN address or another DNS name says other nodes come in over the LAN, so
 * nothing may be bound to the Tailscale interface there.
 */
export function reachedOverTailnet(fleet: Fleet, node: FleetNode): boolean {
  if (!node.roles.includes("tailscale")) return false;
  if (isIP(node.host)) return isTailnetAddress(node.host);
  return fleet.tailnet !== undefined && (!node.host.includes(".") || node.host.endsWith(`.${fleet.tailnet}`));
}

/** One port of one listening service and who may reach it. */
export interface ReachRule {
  /** The role whose service listens (the role installs and removes the rule). */
  role: RoleName;
  /** Short service name used in rule comments and reports, e.g. `agentapi`, `icecc-scheduler-text`. */
  service: string;
  /** The node the service runs on. */
  node: string;
  proto: "tcp" | "udp";
  port: number;
  /** Fleet nodes allowed besides loopback, by name, in fleet order (their fleet.yaml `host` is the address). */
  fromNodes: string[];
  /** Address blocks allowed besides those nodes (CIDR, IPv4 or IPv6), e.g. the tailnet's ranges for ntfy. */
  fromCidrs: string[];
  /** Anyone may connect (ntfy with `allowFrom: [anywhere]`): no rule is installed for this port. */
  open: boolean;
  /** One line for plans, reports and rule comments: who, and why. */
  why: string;
}

/** The keywords of `services.ntfy.allowFrom`; every other entry is a CIDR block (the loader's grammar, model/grammar.ts `reachSource`). */
const REACH_KEYWORDS: readonly string[] = ["fleet", "tailnet", "anywhere"];

/** Names of the nodes that run `role`, in fleet order (who may reach a service, by role). */
export function holders(fleet: Fleet, role: RoleName): string[] {
  return fleet.nodes.filter((n) => n.roles.includes(role)).map((n) => n.name);
}

/** Who `from` (keywords and CIDRs, the grammar of `services.ntfy.allowFrom`) lets in. */
function sourcesOf(fleet: Fleet, from: readonly string[]): Pick<ReachRule, "fromNodes" | "fromCidrs" | "open"> {
  const open = from.includes("anywhere");
  const cidrs = [...(from.includes("tailnet") ? TAILNET_CIDRS : []), ...from.filter((f) => !REACH_KEYWORDS.includes(f))];
  return { fromNodes: from.includes("fleet") ? fleet.nodes.map((n) => n.name) : [], fromCidrs: open ? [] : cidrs, open };
}

/**
 * The reach rules `role`'s definition declares on `node` (`RoleDefinition.listens`). A user role's are
 * checked: they become firewall rules, so a value outside the grammar is refused rather than rendered (a
 * built-in role's come from the validated fleet model).
 * @throws UserError naming the user role and the bad value.
 */
function listenRules(fleet: Fleet, node: FleetNode, role: RoleName): ReachRule[] {
  const def = roleDefinition(fleet, role);
  const listens = def.listens?.(fleet, node, roleSettings(fleet, role)) ?? [];
  const bad = (what: string, value: unknown) => new UserError(`role ${role}: listens() on node ${node.name} returned ${what} ${JSON.stringify(value)}; fix the role's index.ts`);
  // A built-in role's values come from the validated model; a user role's are checked here.
  const checked = !isBuiltinRole(role);
  return listens.map((l) => {
    if (checked) checkListen(l);
    const sources = sourcesOf(fleet, l.from ?? []);
    // In fleet order; through a Set, as a rule from every node would otherwise search its list per node.
    const allowed = new Set([...sources.fromNodes, ...(l.fromNodes ?? [])]);
    const fromNodes = fleet.nodes.map((n) => n.name).filter((n) => allowed.has(n));
    return { role, service: l.service, node: node.name, proto: l.proto, port: l.port, ...sources, fromNodes, why: checked ? String(l.why).replace(/[^\x20-\x7e]/g, "?") : l.why };
  });
  function checkListen(l: RoleListen): void {
    if (!nodeName.safeParse(l.service).success) throw bad("a service name that is not a hostname label:", l.service);
    if (l.proto !== "tcp" && l.proto !== "udp") throw bad("a protocol other than tcp or udp:", l.proto);
    if (!Number.isInteger(l.port) || l.port < 1 || l.port > 65535) throw bad("a port outside 1-65535:", l.port);
    for (const f of l.from ?? []) if (!reachSource.safeParse(f).success) throw bad("a source that is not fleet, tailnet, anywhere or a CIDR block:", f);
    for (const n of l.fromNodes ?? []) if (!fleet.nodes.some((x) => x.name === n)) throw bad("a node the fleet does not have:", n);
  }
}

/**
 * Every reach rule of `node` (its listening services, in role order): what each role's definition declares
 * (`listens`, roles/<role>/index.ts), from fleet.yaml. Pure.
 * @returns [] for a node that runs no listening role.
 */
export function nodeReach(fleet: Fleet, node: FleetNode): ReachRule[] {
  return node.roles.flatMap((role) => listenRules(fleet, node, role));
}

/** Every reach rule of the fleet, node by node in fleet order. Pure. */
export function fleetReach(fleet: Fleet): ReachRule[] {
  return fleet.nodes.flatMap((n) => nodeReach(fleet, n));
}

/** The rules of `node` that belong to `role` (what that role's install puts into the node firewall). */
export function roleReach(fleet: Fleet, node: FleetNode, role: RoleName): ReachRule[] {
  return nodeReach(fleet, node).filter((r) => r.role === role);
}
