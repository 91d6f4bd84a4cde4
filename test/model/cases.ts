/**
 * A small valid fleet and the bad variants the loader must reject, each with its exact message.
 * `edit` turns the valid text into the bad one; `expected` is the whole list of problem lines.
 */
export const VALID = `fleet: test
defaults:
  budgetUsdPerSession: 5
  claude:
    version: 2.1.331
profiles:
  agent: [tailscale, claude, iceccd, worker]
nodes:
  hub:
    host: hub
    os: debian
    arch: x86_64
    roles: [tailscale, claude, icecc-scheduler, iceccd, queue, worker]
  pi:
    host: pi
    os: raspios
    arch: aarch64
    profile: agent
`;

export interface BadCase {
  name: string;
  edit: (valid: string) => string;
  expected: string[];
}

const r = (from: string, to: string) => (s: string) => {
  if (!s.includes(from)) throw new Error(`case fixture: "${from}" not in the valid fleet`);
  return s.replace(from, to);
};

export const BAD_CASES: BadCase[] = [
  {
    name: "arch amd64",
    edit: s=>s.replace("arch: aarch64","arch: arm64"),
    expected: [
      "F:17:11 nodes.pi.arch: expected one of x86_64|aarch64, got \"arm64\" (did you mean aarch64?)",
    ],
  },
  {
    name: "unknown top",
    edit: s=>s.replace("fleet: test","fleet: test\nfleets: x"),
    expected: [
      "F:2:1 fleets: unknown field \"fleets\" (did you mean fleet?); allowed here: fleet, tailnet, defaults, services, artifacts, profiles, people, roleSources, nodes",
    ],
  },
  {
    name: "unknown node field",
    edit: s=>s.replace("profile: agent","profile: agent\n    rolez: [claude]"),
    expected: [
      "F:19:5 nodes.pi.rolez: unknown field \"rolez\" (did you mean roles?); allowed here: host, bootstrapHost, os, arch, user, sshPort, profile, roles, budgetUsdPerSession, iceccMaxJobs, wslDistro, docker, builder, tags",
    ],
  },
  {
    name: "bad name",
    edit: s=>s.replace("  pi:\n","  Pi_Node:\n"),
    expected: [
      "F:14:3 nodes.Pi_Node: invalid name \"Pi_Node\": expected a lower-case hostname label (a-z, 0-9, '-')",
    ],
  },
  {
    name: "missing os",
    edit: s=>s.replace("    os: raspios\n",""),
    expected: [
      "F:14:3 nodes.pi.os: required field \"os\" is missing: add `os:` (one of macos|debian|raspios|arch|windows-wsl)",
    ],
  },
  {
    name: "budget string",
    edit: s=>s.replace("budgetUsdPerSession: 5","budgetUsdPerSession: five"),
    expected: [
      "F:3:24 defaults.budgetUsdPerSession: expected a number, got \"five\"",
    ],
  },
  {
    name: "budget negative",
    edit: s=>s.replace("budgetUsdPerSession: 5","budgetUsdPerSession: -1"),
    expected: [
      "F:3:24 defaults.budgetUsdPerSession: expected a number > 0, got number -1",
    ],
  },
  {
    name: "unknown role",
    edit: s=>s.replace("profile: agent","roles: [icecream]"),
    expected: [
      "F:18:13 nodes.pi.roles.0: expected one of tailscale|claude|icecc-scheduler|iceccd|toolchains|agentapi|ntfy|queue|worker, got \"icecream\" (did you mean iceccd?)",
    ],
  },
  {
    name: "unknown profile",
    edit: s=>s.replace("profile: agent","profile: agnet"),
    expected: [
      "F:18:14 nodes.pi.profile: expected one of agent, got \"agnet\" (did you mean agent?)",
    ],
  },
  {
    name: "no scheduler",
    edit: s=>s.replace("icecc-scheduler, ",""),
    expected: [
      "F:8:1 nodes: nodes hub, pi run iceccd but no node runs icecc-scheduler; add icecc-scheduler to exactly one always-on Linux node",
    ],
  },
  {
    name: "two schedulers",
    edit: s=>s.replace("profile: agent","profile: agent\n    roles: [icecc-scheduler]"),
    expected: [
      "F:14:3 nodes.pi: role icecc-scheduler is already on node hub; a fleet has at most one icecc-scheduler, remove it from pi",
    ],
  },
  {
    name: "dup host",
    edit: s=>s.replace("host: pi","host: hub"),
    expected: [
      "F:15:11 nodes.pi.host: host \"hub\" is already used by node hub; every node needs its own address",
    ],
  },
  {
    name: "dup node key",
    edit: s=>s+"  pi:\n    host: pi2\n    os: debian\n    arch: x86_64\n    profile: agent\n",
    expected: [
      "F:19:3 (yaml): a key appears twice in one map (node names and fields must be unique)",
    ],
  },
  {
    name: "agentapi without claude",
    edit: s=>s.replace("profile: agent","roles: [tailscale, agentapi]"),
    expected: [
      "F:18:12 nodes.pi.roles: role agentapi needs role claude on the same node (AgentAPI drives the node's Claude Code); add claude",
    ],
  },
  {
    name: "windows without distro",
    edit: s=>s.replace("os: raspios\n    arch: aarch64","os: windows-wsl\n    arch: x86_64"),
    expected: [
      "F:16:9 nodes.pi.os: a windows-wsl node needs `wslDistro:` naming its WSL2 distribution (e.g. Debian), where its Linux roles run",
    ],
  },
  {
    name: "distro on linux",
    edit: s=>s.replace("profile: agent","profile: agent\n    wslDistro: Debian"),
    expected: [
      "F:19:16 nodes.pi.wslDistro: wslDistro applies only to os windows-wsl, but this node's os is raspios; remove it",
    ],
  },
  {
    name: "ntfy on mac",
    edit: s=>s.replace("os: raspios\n    arch: aarch64\n    profile: agent","os: macos\n    arch: aarch64\n    roles: [tailscale, ntfy]"),
    expected: [
      "F:16:9 nodes.pi.os: role ntfy is not supported on macos; it runs on debian|raspios|arch (move the role to another node or remove it)",
    ],
  },
  {
    name: "ntfy without docker",
    edit: s=>s.replace("profile: agent","profile: agent\n    roles: [ntfy]"),
    expected: [
      "F:14:3 nodes.pi: role ntfy runs as a Docker container: set `docker: true` on this node once it has a Docker engine its SSH user can use",
    ],
  },
  {
    name: "scheduler on mac",
    edit: s=>s.replace("os: debian","os: macos"),
    expected: [
      "F:11:9 nodes.hub.os: role icecc-scheduler is not supported on macos; it runs on debian|raspios|arch (move the role to another node or remove it)",
      "F:11:9 nodes.hub.os: role queue is not supported on macos; it runs on debian|raspios|arch (move the role to another node or remove it)",
    ],
  },
  {
    name: "worker without queue",
    edit: s=>s.replace("queue, ",""),
    expected: [
      "F:9:3 nodes.hub: workers need a task queue: add role queue to one always-on Linux node (usually the orchestrator)",
    ],
  },
  {
    name: "yaml syntax",
    edit: s=>s.replace("roles: [tailscale, claude, icecc","roles: [tailscale, claude, icecc\n  bad: ["),
    expected: [
      "F:14:3 (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]",
    ],
  },
  {
    name: "tab indent",
    edit: s=>s.replace("    host: pi\n","\thost: pi\n"),
    expected: [
      "F:15:1 (yaml): Tabs are not allowed as indentation",
      "F:15:8 (yaml): Nested mappings are not allowed in compact mappings",
      "F:15:8 (yaml): Implicit keys need to be on a single line",
      "F:16:9 (yaml): Nested mappings are not allowed in compact mappings",
      "F:16:9 (yaml): Implicit keys need to be on a single line",
      "F:17:11 (yaml): Nested mappings are not allowed in compact mappings",
      "F:17:11 (yaml): Implicit keys need to be on a single line",
    ],
  },
  {
    name: "missing defaults",
    edit: s=>s.replace(/defaults:\n  budgetUsdPerSession: 5\n  claude:\n    version: 2.1.331\n/,""),
    expected: [
      "F:1:1 defaults: required field \"defaults\" is missing: add `defaults:` (a map)",
    ],
  },
  {
    name: "claude without defaults.claude",
    edit: r("  claude:\n    version: 2.1.331\n", ""),
    expected: [
      "F:7:3 nodes.hub: node runs role claude but defaults.claude is not set: add `claude: { version: <pinned @anthropic-ai/claude-code version> }` under defaults",
    ],
  },
  {
    name: "empty",
    edit: s=>"",
    expected: [
      "F:1:1 (root): the file is empty: expected a map with fleet, defaults and nodes (see examples/)",
    ],
  },
  {
    name: "no roles",
    edit: s=>s.replace("    profile: agent\n",""),
    expected: [
      "F:14:3 nodes.pi: node has no roles: add `profile: <name>` or `roles: [...]` (roles: tailscale|claude|icecc-scheduler|iceccd|toolchains|agentapi|ntfy|queue|worker)",
    ],
  },
  {
    name: "port out of range",
    edit: s=>s.replace("defaults:\n","defaults:\n  sshPort: 70000\n"),
    expected: [
      "F:3:12 defaults.sshPort: expected a number ≤ 65535, got number 70000",
    ],
  },
  {
    name: "maxjobs float",
    edit: s=>s.replace("profile: agent","profile: agent\n    iceccMaxJobs: 2.5"),
    expected: [
      "F:19:19 nodes.pi.iceccMaxJobs: expected an integer, got number 2.5",
    ],
  },
  {
    name: "tags not strings",
    edit: s=>s.replace("profile: agent","profile: agent\n    tags: { ram: 8 }"),
    expected: [
      "F:19:18 nodes.pi.tags.ram: expected a string, got number 8",
    ],
  },
  {
    name: "nodes a list",
    edit: s=>s.replace(/nodes:[\s\S]*/,"nodes:\n  - hub\n"),
    expected: [
      "F:9:3 nodes: expected a map, got a list",
    ],
  },
  {
    name: "claude version",
    edit: s=>s.replace("version: 2.1.331","version: latest"),
    expected: [
      "F:5:14 defaults.claude.version: expected an exact version like 2.0.14, got \"latest\"",
    ],
  },
  {
    name: "no budget",
    edit: s=>s.replace("  budgetUsdPerSession: 5\n",""),
    expected: [
      "F:8:3 nodes.hub: node runs Claude but has no budget cap: set `budgetUsdPerSession:` (USD) on it or under defaults",
      "F:13:3 nodes.pi: node runs Claude but has no budget cap: set `budgetUsdPerSession:` (USD) on it or under defaults",
    ],
  },
  {
    name: "two queues",
    edit: s=>s.replace("profile: agent","profile: agent\n    roles: [queue]"),
    expected: [
      "F:14:3 nodes.pi: role queue is already on node hub; a fleet has at most one queue, remove it from pi",
    ],
  },
  {
    name: "artifact sha",
    edit: s=>s.replace("profiles:","artifacts:\n  agentapi:\n    version: v1.0.0\n    url: https://example.invalid/a\n    sha256: { linux-x86_64: abc }\nprofiles:"),
    expected: [
      "F:10:29 artifacts.agentapi.sha256.linux-x86_64: expected 64 lower-case hex digits (a sha256), got \"abc\"",
    ],
  },
];
