/**
 * Whether a fleet service answers where it should not (`fleet status`): for each TCP reach rule of the
 * fleet's allow-list (roles/reach.ts; an open rule and UDP are not checked: a UDP "connect" proves nothing),
 * a short TCP connect to the service's fleet.yaml host and port
 * - from one probed fleet node the rule does not allow (not the service's own node, whose loopback is always
 *   allowed), as part of that node's probe over SSH ({@link exposureChecks}, {@link exposureProbeLines});
 * - and from the machine running `fleet status`, unless one of its own addresses is an allowed source or it
 *   is the service's node ({@link localExposures}).
 * A connection that succeeds is an exposure: the node firewall (roles/firewall.ts) is missing or wrong. A
 * refused or timed-out connect is what a working firewall (or a stopped service) gives; it proves nothing
 * more, so it is not reported.
 */
import { lookup } from "node:dns/promises";
import { BlockList, connect, isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { shQuote } from "../roles/bundle.js";
import { fleetReach, type ReachRule } from "../roles/reach.js";
import type { Fleet, FleetNode } from "../model/fleet.js";

/** Seconds one exposure connect may take (a dropping firewall makes it time out). */
export const EXPOSURE_CONNECT_SECONDS = 3;

/** A service found reachable from where its rule does not allow. */
export interface Exposure {
  /** The reach rule's service (`agentapi`, `queue`, `iceccd`, `icecc-scheduler`, `icecc-scheduler-text`, `ntfy`). */
  service: string;
  /** The node the service runs on. */
  node: string;
  port: number;
  /** A fleet node's name, or `this machine (<its address>)`. */
  from: string;
  /** Who the rule allows besides loopback: node names and CIDR blocks. */
  allowed: string[];
}

/** `exposed: agentapi on rpi1 is reachable from rpi2 (allowed: arch-orchestrator)`: one problem line. */
export function exposureProblem(e: Exposure): string {
  return `exposed: ${e.service} on ${e.node} is reachable from ${e.from} (allowed: ${e.allowed.length ? e.allowed.join(", ") : "this node only"})`;
}

/** The rules an exposure check looks at: TCP and not open to anyone. */
export function checkedRules(fleet: Fleet): ReachRule[] {
  return fleetReach(fleet).filter((r) => r.proto === "tcp" && !r.open);
}

function cidrList(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [net, bits] = c.split("/");
    list.addSubnet(net!, Number(bits), isIP(net!) === 6 ? "ipv6" : "ipv4");
  }
  return list;
}

/** Whether `node` may connect under `rule`, as far as fleet.yaml tells: it is listed, or its host is an address in one of the CIDR blocks. */
function allowedNode(rule: ReachRule, node: FleetNode): boolean {
  if (node.name === rule.node || rule.fromNodes.includes(node.name)) return true;
  if (!rule.fromCidrs.length) return false;
  // A named node may come from an address in the blocks (the tailnet's, say): it cannot prove an exposure.
  const family = isIP(node.host);
  return family === 0 || cidrList(rule.fromCidrs).check(node.host, family === 4 ? "ipv4" : "ipv6");
}

/**
 * Which probed node checks which rules: per rule the first of `probed` (fleet order) that the rule does not
 * allow, so each rule costs one connect from one node. Pure.
 * @returns node name → the rules its probe checks (nodes with none are absent).
 */
export function exposureChecks(fleet: Fleet, probed: FleetNode[]): Map<string, ReachRule[]> {
  const out = new Map<string, ReachRule[]>();
  for (const rule of checkedRules(fleet)) {
    const prober = probed.find((n) => !allowedNode(rule, n));
    if (prober) out.set(prober.name, [...(out.get(prober.name) ?? []), rule]);
  }
  return out;
}

/**
 * POSIX sh lines of a probe that try each rule's port on the service node's host, all at once, each for at
 * most {@link EXPOSURE_CONNECT_SECONDS}: `bash`'s /dev/tcp (Debian, Arch, WSL and macOS all have bash) in
 * the background, killed when time is up. Each prints one record `reach SERVICE NODE PORT open|closed`, or
 * `unchecked` without bash. Pure.
 */
export function exposureProbeLines(fleet: Fleet, rules: ReachRule[]): string[] {
  if (!rules.length) return [];
  const hostOf = (name: string) => fleet.nodes.find((n) => n.name === name)!.host;
  const lines = [
    "fk_tcp() {",
    `  bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" >/dev/null 2>&1 &`,
    "  fk_tp=$!",
    `  ( sleep ${EXPOSURE_CONNECT_SECONDS}; kill "$fk_tp" 2>/dev/null ) >/dev/null 2>&1 &`,
    "  fk_tk=$!",
    '  if wait "$fk_tp"; then fk_tr=0; else fk_tr=1; fi',
    '  kill "$fk_tk" 2>/dev/null',
    '  return "$fk_tr"',
    "}",
  ];
  for (const r of rules) {
    const record = `reach\t${r.service}\t${r.node}\t${r.port}`;
    lines.push(
      `if ! command -v bash >/dev/null 2>&1; then echo "${record}\tunchecked"; ` +
        `else ( if fk_tcp ${shQuote(hostOf(r.node))} ${r.port}; then echo "${record}\topen"; else echo "${record}\tclosed"; fi ) & fi`,
    );
  }
  lines.push("wait");
  return lines;
}

/** An exposure found by a fleet node's probe (its `reach … open` records), for the rules it checked. */
export function probedExposures(fleet: Fleet, from: string, rules: ReachRule[], open: { service: string; node: string; port: number }[]): Exposure[] {
  return rules
    .filter((r) => open.some((o) => o.service === r.service && o.node === r.node && o.port === r.port))
    .map((r) => ({ service: r.service, node: r.node, port: r.port, from, allowed: [...r.fromNodes, ...r.fromCidrs] }));
}

/** Options of {@link localExposures}. */
export interface LocalExposureOptions {
  /** This machine's addresses (default: every interface's, from os.networkInterfaces). */
  localAddresses?: string[];
  /** Seconds per connect (default {@link EXPOSURE_CONNECT_SECONDS}). */
  connectSeconds?: number;
}

/**
 * Tries each of `rules` from this machine, in parallel, unless this machine may connect anyway (one of its
 * addresses is an allowed node's or in an allowed block) or is the service's node (its host resolves to
 * one of this machine's addresses). Never throws: a name that does not resolve is not checked.
 */
export async function localExposures(fleet: Fleet, rules: ReachRule[], opts: LocalExposureOptions = {}): Promise<Exposure[]> {
  const mine = new Set(opts.localAddresses ?? Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address)));
  const seconds = opts.connectSeconds ?? EXPOSURE_CONNECT_SECONDS;
  const resolved = new Map<string, Promise<string[]>>();
  const addrs = (host: string) => {
    if (!resolved.has(host)) resolved.set(host, isIP(host) ? Promise.resolve([host]) : lookup(host, { all: true }).then((r) => r.map((a) => a.address), () => []));
    return resolved.get(host)!;
  };
  const hostOf = (name: string) => fleet.nodes.find((n) => n.name === name)!.host;
  const found = await Promise.all(
    rules.map(async (r): Promise<Exposure | undefined> => {
      const target = await addrs(hostOf(r.node));
      // A loopback host is this machine (the bench's and tests' nodes on 127.0.0.x), like one of its addresses.
      if (!target.length || target.some((a) => mine.has(a) || /^127\.|^::1$/.test(a))) return undefined;
      const allowed = (await Promise.all(r.fromNodes.map((n) => addrs(hostOf(n))))).flat();
      const blocks = cidrList(r.fromCidrs);
      if ([...mine].some((a) => allowed.includes(a) || (isIP(a) !== 0 && blocks.check(a, isIP(a) === 4 ? "ipv4" : "ipv6")))) return undefined;
      const local = await tcpConnect(hostOf(r.node), r.port, seconds);
      return local === undefined ? undefined : { service: r.service, node: r.node, port: r.port, from: `this machine (${local})`, allowed: [...r.fromNodes, ...r.fromCidrs] };
    }),
  );
  return found.filter((e): e is Exposure => e !== undefined);
}

/** Connects to host:port within `seconds`; resolves to the local address used, or undefined when it did not connect. */
function tcpConnect(host: string, port: number, seconds: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (local: string | undefined) => {
      socket.destroy();
      resolve(local);
    };
    socket.setTimeout(seconds * 1000, () => done(undefined));
    socket.once("connect", () => done(socket.localAddress ?? "?"));
    socket.once("error", () => done(undefined));
  });
}
