/**
 * Cross-field rules of a fleet: the checks a schema of one field at a time cannot make. Each returns
 * problems with the fleet.yaml path to blame, so the loader can print `file:line:col path: message`.
 */
import type { FleetFile, NodeInput, OsName, RoleName, UserRoleSpec } from "./schema.js";
import { ROLE_NAMES, ROLE_SUPPORT } from "./schema.js";
import { canonicalRoles } from "./fleet.js";
import { didYouMean } from "./suggest.js";
import { describeValue } from "./text.js";

/** One validation problem: the fleet.yaml path it concerns and a message (what was expected, how to fix). */
export interface Problem {
  path: (string | number)[];
  message: string;
  /** Point at the key of the last path element rather than its value (e.g. for a node's name). */
  atKey?: boolean;
  /** Field path to print when it differs from the place blamed (a missing field is blamed on its map). */
  field?: (string | number)[];
}

const LINUX: readonly string[] = ["debian", "raspios", "arch"];

/**
 * Whether `name` is a profile of the file. An own key only: `profile: constructor` / `toString` / `__proto__`
 * must not find Object.prototype's members (`in` and `[name]` would).
 */
export function hasProfile(file: FleetFile, name: string): boolean {
  return Object.hasOwn(file.profiles, name);
}

/** The roles a node gets: its profile's (when the profile exists) plus its own, canonical order. */
export function rolesOf(file: FleetFile, node: NodeInput, userRoles: readonly UserRoleSpec[] = []): RoleName[] {
  const fromProfile = node.profile !== undefined && hasProfile(file, node.profile) ? file.profiles[node.profile] : [];
  return canonicalRoles([...fromProfile, ...(node.roles ?? [])], userRoles.map((r) => r.name));
}

/** The OSes `role` runs on: model/schema.ts `ROLE_SUPPORT` for a built-in role, the user role's own list else. */
function supportOf(role: RoleName, userRoles: readonly UserRoleSpec[]): readonly OsName[] {
  if (Object.hasOwn(ROLE_SUPPORT, role)) return ROLE_SUPPORT[role as keyof typeof ROLE_SUPPORT];
  return userRoles.find((r) => r.name === role)?.os ?? [];
}

/**
 * Every cross-field problem of a schema-valid fleet file, in file order. Rules: profile exists; a node has
 * roles; role allowed on the node's OS; `agentapi` needs `claude`; `windows-wsl` ⇔ `wslDistro`; unique hosts;
 * exactly one `icecc-scheduler` when any node runs `iceccd`; at most one `ntfy`, on Linux with Docker; at
 * most one `queue`, and one present when any node runs `worker`; `defaults.claude` when any node runs `claude`; workers and Claude nodes have a budget cap; no
 * person under `people:` has a node's name.
 */
export function checkRules(file: FleetFile, userRoles: readonly UserRoleSpec[] = []): Problem[] {
  const problems: Problem[] = [];
  const nodes = Object.entries(file.nodes);
  const profileNames = Object.keys(file.profiles);
  const holders = new Map<RoleName, string[]>();
  const hosts = new Map<string, string>();

  for (const [name, node] of nodes) {
    const at = (...rest: (string | number)[]) => ["nodes", name, ...rest];
    if (node.profile !== undefined && !hasProfile(file, node.profile)) {
      const known = profileNames.length ? profileNames.join("|") : "(none defined under profiles:)";
      problems.push({
        path: at("profile"),
        message: `expected one of ${known}, got ${describeValue(node.profile)}${didYouMean(node.profile, profileNames)}`,
      });
    }
    const roles = rolesOf(file, node, userRoles);
    if (roles.length === 0 && (node.profile === undefined || hasProfile(file, node.profile))) {
      problems.push({
        path: at(),
        atKey: true,
        message: `node has no roles: add \`profile: <name>\` or \`roles: [...]\` (roles: ${[...ROLE_NAMES, ...userRoles.map((r) => r.name)].join("|")})`,
      });
    }
    for (const role of roles) {
      (holders.get(role) ?? holders.set(role, []).get(role)!).push(name);
      const supported = supportOf(role, userRoles);
      if (!supported.includes(node.os)) {
        problems.push({
          path: at("os"),
          message: `role ${role} is not supported on ${node.os}; it runs on ${supported.join("|")} (move the role to another node or remove it)`,
        });
      }
    }
    if (roles.includes("agentapi") && !roles.includes("claude")) {
      problems.push({
        path: at(node.roles?.includes("agentapi") ? "roles" : "profile"),
        message: "role agentapi needs role claude on the same node (AgentAPI drives the node's Claude Code); add claude",
      });
    }
    if (node.os === "windows-wsl" && node.wslDistro === undefined) {
      problems.push({
        path: at("os"),
        message: "a windows-wsl node needs `wslDistro:` naming its WSL2 distribution (e.g. Debian), where its Linux roles run",
      });
    }
    if (node.os !== "windows-wsl" && node.wslDistro !== undefined) {
      problems.push({
        path: at("wslDistro"),
        message: `wslDistro applies only to os windows-wsl, but this node's os is ${node.os}; remove it`,
      });
    }
    if ((roles.includes("worker") || roles.includes("claude")) && (node.budgetUsdPerSession ?? file.defaults.budgetUsdPerSession) === undefined) {
      problems.push({
        path: at(),
        atKey: true,
        message: "node runs Claude but has no budget cap: set `budgetUsdPerSession:` (USD) on it or under defaults",
      });
    }
    for (const field of ["host", "bootstrapHost"] as const) {
      const value = node[field];
      if (value === undefined) continue;
      const key = value.toLowerCase();
      const other = hosts.get(key);
      if (other !== undefined && other !== name) {
        problems.push({
          path: at(field),
          message: `host "${value}" is already used by node ${other}; every node needs its own address`,
        });
      } else {
        hosts.set(key, name);
      }
    }
  }

  const firstNodePath = nodes.length ? ["nodes", nodes[0][0]] : ["nodes"];
  const held = (role: RoleName) => holders.get(role) ?? [];
  if (held("iceccd").length > 0 && held("icecc-scheduler").length === 0) {
    problems.push({
      path: ["nodes"],
      atKey: true,
      message: `nodes ${held("iceccd").join(", ")} run iceccd but no node runs icecc-scheduler; add icecc-scheduler to exactly one always-on Linux node`,
    });
  }
  for (const role of ["icecc-scheduler", "ntfy", "queue"] as const) {
    const names = held(role);
    for (const extra of names.slice(1)) {
      problems.push({
        path: ["nodes", extra],
        atKey: true,
        message: `role ${role} is already on node ${names[0]}; a fleet has at most one ${role}, remove it from ${extra}`,
      });
    }
  }
  for (const name of held("ntfy")) {
    const node = file.nodes[name];
    if (LINUX.includes(node.os) && node.docker !== true) {
      problems.push({
        path: ["nodes", name],
        atKey: true,
        message: "role ntfy runs as a Docker container: set `docker: true` on this node once it has a Docker engine its SSH user can use",
      });
    }
  }
  // A task's submittedBy names a node or a person: one name must not stand for both.
  for (const person of Object.keys(file.people)) {
    if (Object.hasOwn(file.nodes, person)) {
      problems.push({ path: ["people", person], atKey: true, message: `"${person}" is also a node's name; a person and a node need different names (rename the person)` });
    }
  }
  if (held("claude").length > 0 && file.defaults.claude === undefined) {
    problems.push({
      path: ["nodes", held("claude")[0]!],
      atKey: true,
      message: `node runs role claude but defaults.claude is not set: add \`claude: { version: <pinned @anthropic-ai/claude-code version> }\` under defaults`,
    });
  }
  // GitHub names ignore case: a repository polled twice would be listed twice a cycle.
  const polled = file.services.queue.github?.poll?.repos ?? [];
  polled.forEach((repo, i) => {
    const first = polled.findIndex((r) => r.toLowerCase() === repo.toLowerCase());
    if (first !== i) problems.push({ path: ["services", "queue", "github", "poll", "repos", i], message: `repository ${repo} is already listed (item ${first}; GitHub names ignore case); list each repository once` });
  });
  if (held("worker").length > 0 && held("queue").length === 0) {
    problems.push({
      path: held("worker").length ? ["nodes", held("worker")[0]] : firstNodePath,
      atKey: true,
      message: "workers need a task queue: add role queue to one always-on Linux node (usually the orchestrator)",
    });
  }
  return problems;
}
