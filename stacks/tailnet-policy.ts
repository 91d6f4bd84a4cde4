/**
 * The tailnet policy fleetkit manages when the stack has Tailscale API credentials (stacks/tailnet.ts):
 * tags for the fleet's nodes, grants generated from the fleet's allow-list (roles/reach.ts, the same rules
 * the node firewalls enforce, never a second copy) and a `tests` block asserting who may and may not reach
 * AgentAPI, the queue and icecc, which Tailscale evaluates before it accepts the policy (Tailscale KB 1337
 * "Tests": a policy whose tests fail is refused). Pure: no Pulumi, no config; the user's own entries arrive
 * as an already-read object ({@link readUserPolicy}).
 *
 * Shapes follow the tailnet policy file syntax (Tailscale KB 1337, grants KB 1538): `tagOwners`
 * `{ "tag:x": [owner…] }`, grants `{ src: [selector…], dst: [selector…], ip: ["tcp:3284"] }`, tests
 * `{ src: selector, proto: "tcp"|"udp", accept: ["tag:x:3284"], deny: [...] }`.
 */
import { readFileSync } from "node:fs";
import { parse as parseJsonc, printParseErrorCode, type ParseError } from "jsonc-parser";
import type { Fleet, FleetNode } from "../model/fleet.js";
import { canonicalRoles } from "../model/fleet.js";
import { fleetReach, TAILNET_CIDRS, type ReachRule } from "../roles/reach.js";
import { UserError } from "../model/errors.js";

/** Who owns every fleet tag by default: the tailnet's admins (Tailscale KB 1068 "Tags": tag owners). */
export const FLEET_TAG_OWNER = "autogroup:admin";

/** One grant of the policy file (network-layer only: fleetkit grants no app capabilities). */
export interface PolicyGrant {
  src: string[];
  dst: string[];
  ip: string[];
}

/** One entry of the policy file's `tests` block. */
export interface PolicyTest {
  src: string;
  proto: "tcp" | "udp";
  accept?: string[];
  deny?: string[];
}

/** A tailnet policy file as a JSON object: fleetkit's sections typed, any other section the user's. */
export interface TailnetPolicy {
  tagOwners: Record<string, string[]>;
  grants: PolicyGrant[];
  tests: PolicyTest[];
  [section: string]: unknown;
}

/**
 * The Tailscale tag of `node`: `tag:fleet-<profile>` when the node has a profile and no roles beyond it,
 * else `tag:fleet-node-<node>`. Nodes sharing a tag therefore run exactly the same roles, so a grant on a
 * tag allows what roles/reach.ts allows for every node carrying it and nothing more (a profile node with an
 * extra role, like remote-tasks' macbook-pro with `roles: [worker]`, gets its own tag). Tag names are
 * letters, digits and `-` (profile and node names are hostname labels, model/schema.ts).
 */
export function nodeTag(fleet: Fleet, node: FleetNode): string {
  if (node.profile !== undefined && Object.hasOwn(fleet.profiles, node.profile)) {
    const profileRoles = canonicalRoles(fleet.profiles[node.profile]!);
    if (profileRoles.join(",") === node.roles.join(",")) return `tag:fleet-${node.profile}`;
  }
  return `tag:fleet-node-${node.name}`;
}

/**
 * The tag of every node, by node name, in fleet order.
 * @throws UserError when a profile's tag and a node's own tag coincide (a profile named `node-<node>`).
 */
export function tailnetTags(fleet: Fleet): Map<string, string> {
  const tags = new Map(fleet.nodes.map((n) => [n.name, nodeTag(fleet, n)]));
  const profileTags = new Set(Object.keys(fleet.profiles).map((p) => `tag:fleet-${p}`));
  for (const [name, tag] of tags) {
    if (tag === `tag:fleet-node-${name}` && profileTags.has(tag)) {
      throw new UserError(
        `${fleet.file}: profile "node-${name}" and node ${name} would both be Tailscale tag ${tag}; rename the profile (the tailnet policy tags nodes by profile, and a node outside one by its name).`,
      );
    }
  }
  return tags;
}

/** Distinct values in first-seen order. */
const distinct = <T>(values: Iterable<T>): T[] => [...new Set(values)];

/**
 * The grant sources of a reach rule: `*` for an open port; the tags of its nodes; for address blocks, the
 * tailnet's own ranges (roles/reach.ts TAILNET_CIDRS, ntfy's `allowFrom: tailnet`) as every person's
 * device (`autogroup:member`) and every tagged device (`autogroup:tagged`) — what those ranges hold — and
 * any other CIDR block as itself (a grant source may be an IP range, KB 1396 "Targets").
 */
export function grantSources(rule: ReachRule, tags: Map<string, string>): string[] {
  if (rule.open) return ["*"];
  const cidrs = rule.fromCidrs.filter((c) => !(TAILNET_CIDRS as readonly string[]).includes(c));
  const tailnet = TAILNET_CIDRS.every((c) => rule.fromCidrs.includes(c));
  return distinct([...rule.fromNodes.map((n) => tags.get(n)!), ...(tailnet ? ["autogroup:member", "autogroup:tagged"] : []), ...cidrs]);
}

/**
 * fleetkit's own tailnet policy for `fleet` (before the user's entries are merged in):
 * - `tagOwners`: every fleet tag owned by `autogroup:admin` plus `extraTagOwners` (an OAuth client's tag:
 *   an OAuth client mints keys only for tags its own tag owns, Tailscale KB 1215 "OAuth clients");
 * - `grants`: a person's devices reach each other (`autogroup:member` → `autogroup:self`, the grant of
 *   Tailscale's default policy, so taking over the policy does not cut a person's laptop off their phone);
 *   SSH (each node's `sshPort`) to every fleet tag from every person's device and from every fleet tag, so
 *   `pulumi up` and `fleet` keep working wherever they run — also on a fleet node, which is tagged and so no
 *   longer a person's device (roles/reach.ts leaves SSH to the node's own sshd: "fleetkit never locks its
 *   operator out"); then one grant per (sources, destination tag) with every port of roles/reach.ts that
 *   pair allows (`tcp:3284`, `udp:8765` …). Ports reach.ts keeps to loopback get no grant.
 * - `tests`: per fleet tag and protocol, `accept` for every fleet port its nodes may reach and `deny` for
 *   every fleet port they may not (a headless agent may not reach another agent's AgentAPI; only the
 *   queue node may). SSH is not asserted: fleetkit's SSH grant is for people, and a tag-to-tag SSH grant in
 *   the user's file is theirs to make.
 * Ordering is deterministic (fleet order, then rule order), so an unchanged fleet gives an unchanged policy.
 */
export function fleetTailnetPolicy(fleet: Fleet, extraTagOwners: string[] = []): TailnetPolicy {
  const tags = tailnetTags(fleet);
  const fleetTags = distinct(tags.values());
  const owners = distinct([FLEET_TAG_OWNER, ...extraTagOwners]);
  const tagOwners: Record<string, string[]> = {};
  // An OAuth client's own tag must be defined too, or Tailscale refuses the policy.
  for (const owner of extraTagOwners) if (owner.startsWith("tag:") && !fleetTags.includes(owner)) tagOwners[owner] = [FLEET_TAG_OWNER];
  for (const tag of fleetTags) tagOwners[tag] = owners;

  const grants: PolicyGrant[] = [{ src: ["autogroup:member"], dst: ["autogroup:self"], ip: ["*"] }];
  const sshPorts = distinct(fleet.nodes.map((n) => n.sshPort));
  for (const port of sshPorts) {
    grants.push({ src: ["autogroup:member", ...fleetTags], dst: distinct(fleet.nodes.filter((n) => n.sshPort === port).map((n) => tags.get(n.name)!)), ip: [`tcp:${port}`] });
  }
  const rules = fleetReach(fleet);
  const byPair = new Map<string, PolicyGrant>();
  for (const rule of rules) {
    const src = grantSources(rule, tags);
    if (src.length === 0) continue;
    const dst = tags.get(rule.node)!;
    const key = JSON.stringify([src, dst]);
    const grant = byPair.get(key) ?? { src, dst: [dst], ip: [] };
    byPair.set(key, grant);
    const ip = `${rule.proto}:${rule.port}`;
    if (!grant.ip.includes(ip)) grant.ip.push(ip);
  }
  grants.push(...byPair.values());

  const tests: PolicyTest[] = [];
  for (const proto of ["tcp", "udp"] as const) {
    for (const src of fleetTags) {
      const accept: string[] = [];
      const deny: string[] = [];
      for (const rule of rules) {
        if (rule.proto !== proto || rule.open) continue;
        const target = `${tags.get(rule.node)!}:${rule.port}`;
        const allowed = rule.fromNodes.some((n) => tags.get(n) === src) || TAILNET_CIDRS.every((c) => rule.fromCidrs.includes(c));
        const list = allowed ? accept : deny;
        if (!list.includes(target)) list.push(target);
      }
      if (accept.length || deny.length) tests.push({ src, proto, ...(accept.length ? { accept } : {}), ...(deny.length ? { deny } : {}) });
    }
  }
  return { tagOwners, grants, tests };
}

/** Policy sections that are lists: the user's entries are appended to fleetkit's. */
const LIST_SECTIONS = ["grants", "acls", "tests", "ssh", "sshTests", "nodeAttrs"] as const;
/** Policy sections that are maps: the user's keys are added (for a fleet tag in `tagOwners`, its owners too). */
const MAP_SECTIONS = ["tagOwners", "groups", "hosts", "ipsets", "postures", "autoApprovers"] as const;

/**
 * Reads the user's own policy entries (`fleetkit:tailnetPolicyFile`): a tailnet policy file in HuJSON
 * (JSON with `//` and `/* *\/` comments and trailing commas, github.com/tailscale/hujson), e.g. the policy
 * the tailnet had before fleetkit managed it.
 * @returns the file's top-level object.
 * @throws UserError (one paragraph: file:line:column, what was expected, how to fix) when the file cannot
 *   be read, is not HuJSON, is not an object, or has a list/map section of the wrong type.
 */
export function readUserPolicy(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UserError(
      `${file}:1:1 (file): cannot read the tailnet policy file named by fleetkit:tailnetPolicyFile (${(err as NodeJS.ErrnoException).code ?? "unreadable"}); ` +
        `fix the path with \`pulumi config set fleetkit:tailnetPolicyFile PATH\` (relative to the project) or remove the key.`,
    );
  }
  const errors: ParseError[] = [];
  const value = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  const at = (offset: number) => {
    const before = text.slice(0, offset).split("\n");
    return `${file}:${before.length}:${before.at(-1)!.length + 1}`;
  };
  if (errors.length) {
    const e = errors[0]!;
    throw new UserError(`${at(e.offset)}: the tailnet policy file is not HuJSON (${printParseErrorCode(e.error)}); fix it (JSON with comments and trailing commas) and run again.`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UserError(`${file}:1:1: a tailnet policy file must be one object ({ "grants": [...], "tagOwners": {...}, ... }); got ${Array.isArray(value) ? "a list" : typeof value}.`);
  }
  const policy = value as Record<string, unknown>;
  for (const [section, isList] of [...LIST_SECTIONS.map((s) => [s, true] as const), ...MAP_SECTIONS.map((s) => [s, false] as const)]) {
    if (!Object.hasOwn(policy, section)) continue;
    const v = policy[section];
    const ok = isList ? Array.isArray(v) : v !== null && typeof v === "object" && !Array.isArray(v);
    if (!ok) {
      const offset = text.indexOf(`"${section}"`);
      throw new UserError(`${at(Math.max(offset, 0))} ${section}: expected ${isList ? "a list" : "an object"}, got ${Array.isArray(v) ? "a list" : v === null ? "null" : typeof v}; fix the section and run again.`);
    }
  }
  return policy;
}

/**
 * fleetkit's policy with the user's entries merged in: list sections appended after fleetkit's, map
 * sections' keys added (a fleet tag listed in the user's `tagOwners` gets those owners as well as
 * fleetkit's), any other section (e.g. `derpMap`, `randomizeClientPort`) taken as the user wrote it. The
 * user's grants can widen access, but fleetkit's `tests` still run: a user grant that lets a node reach
 * what roles/reach.ts forbids makes Tailscale refuse the policy at `pulumi up`, naming the failing test.
 * @throws UserError when the user's file redefines a section fleetkit keeps as its own type.
 */
export function mergeTailnetPolicy(fleetPolicy: TailnetPolicy, user: Record<string, unknown>): TailnetPolicy {
  const merged: TailnetPolicy = { ...fleetPolicy };
  for (const [section, value] of Object.entries(user)) {
    if ((LIST_SECTIONS as readonly string[]).includes(section)) {
      merged[section] = [...((merged[section] as unknown[] | undefined) ?? []), ...(value as unknown[])];
    } else if ((MAP_SECTIONS as readonly string[]).includes(section)) {
      const mine = { ...((merged[section] as Record<string, unknown> | undefined) ?? {}) };
      for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
        if (section === "tagOwners" && Object.hasOwn(mine, key) && Array.isArray(v)) mine[key] = distinct([...(mine[key] as string[]), ...(v as string[])]);
        else mine[key] = v;
      }
      merged[section] = mine;
    } else {
      merged[section] = value;
    }
  }
  return merged;
}
