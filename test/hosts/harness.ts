/**
 * Hosts-level test harness: boots N Debian nodes (bookworm by default, or trixie) with real systemd as PID 1
 * and sshd, each in its own network namespace, and gives the test process an SSH transport to them.
 *
 * How a run is laid out (all names carry the run's slot number `S`, 0–63, so concurrent test files never
 * collide and a crashed run's leftovers can be found):
 * - state in `/run/fleetkit-hosts/slot-S/` (tmpfs, outside the repo): the throwaway ed25519 key made for
 *   this run, the nodes' authorized_keys, /etc/hosts, apt proxy config and npmrc, each node's console log;
 * - a bridge `fkhSbr` holding `10.213.S.1/24` on the host; per node a namespace `fkhSnI` whose `eth0`
 *   (`10.213.S.(10+I)/24`) is one end of a veth pair, the other end (`fkhSnI`) enslaved to the bridge.
 *   Nodes reach each other over the bridge and the host at `10.213.S.1`; they have no default route, so
 *   the only things outside the node they can reach are the registry proxy (Debian's registry for apt,
 *   npm's for `npm install`; see registry-proxy.ts) and the artifact server, both on `10.213.S.1`. No host
 *   sysctl or firewall rule is changed;
 * - with `tailnet: true`, a second network standing in for the tailnet: a bridge `fkhStb` holding
 *   `100.64.S.1/24` and per node a veth `fkhSnIt` whose other end is the node's `tailscale0`
 *   (`100.64.S.(10+I)/24`), the interface name Tailscale gives its device on Linux;
 * - per node `systemd-nspawn --register=no --keep-unit --volatile=overlay -b --capability=CAP_NET_ADMIN`
 *   on the cached root filesystem (see rootfs.ts) in that namespace (CAP_NET_ADMIN over the node's own
 *   network namespace only, so roles can load nftables rules there, as on a real machine): the tree is the read-only lower layer of a tmpfs overlay, so every
 *   write a test makes vanishes with the node (what `--ephemeral` gives, without copying 1 GB per node on
 *   ext4). The key, hosts file, apt proxy config and npmrc are bind-mounted read-only;
 * - each node runs in its own cgroup `<machine>` (see `cgroupParents`), so nodes' systemds never share one.
 *
 * Teardown (`teardown()`, and synchronously from process `exit`/SIGINT/SIGTERM handlers) powers nodes off,
 * kills what remains in their namespaces, deletes namespaces, veths, the bridge, the nodes' cgroups and the
 * slot directory. Every boot first removes the leftovers of runs whose owning process is gone.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { ensureRootfs, machineDebianMirrors, NODE_USER, type DebianSuite, type RootfsInfo } from "./rootfs.js";
import { startRegistryProxy, type RegistryProxy } from "./registry-proxy.js";
import { startArtifactServer, type ArtifactServer } from "./artifact-server.js";

/** Directory holding one subdirectory per live (or crashed) run. */
export const RUN_BASE = "/run/fleetkit-hosts";
/** Prefix of every namespace, link and machine name the harness creates. */
export const NAME_PREFIX = "fkh";
const MAX_SLOTS = 64;

/** Thrown by {@link bootNodes} when this machine cannot run the hosts level; the message says why and how to fix. */
export class HostsUnavailableError extends Error {}

/** Output of one command run on a node. */
export interface CommandResult {
  /** Exit code of the remote command (255 = ssh itself failed). */
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link TestNode.ssh}. */
export interface SshOptions {
  /** Bytes written to the remote command's stdin, then EOF (like @pulumi/command's `stdin`). */
  input?: string | Buffer;
  /** Login user; default the node user (`admin`, passwordless sudo), or `root`. */
  user?: string;
  /** Kill the ssh client after this many seconds (default 600). */
  timeoutSeconds?: number;
}

/** One booted node. */
export interface TestNode {
  /** Hostname inside the node, as given to {@link bootNodes}. */
  name: string;
  /** IPv4 address of the node's eth0; other nodes and the test process reach it there. */
  address: string;
  /** IPv4 address of the node's `tailscale0` (boot option `tailnet`), else undefined. */
  tailnetAddress?: string;
  /** systemd-nspawn machine name (`fkhSnI`, also the namespace name). */
  machine: string;
  /** The unprivileged node user with passwordless sudo. */
  user: string;
  /** Runs `command` (one shell command string, as the Pulumi command provider sends it) over SSH. */
  ssh(command: string, opts?: SshOptions): Promise<CommandResult>;
  /** Like {@link ssh} but throws (with stdout/stderr) unless the exit code is 0; returns stdout. */
  run(command: string, opts?: SshOptions): Promise<string>;
  /**
   * Runs an sftp batch (sftp(1) `-b -`) as the node user, over the same SSH as {@link ssh}: what
   * @pulumi/command's CopyToRemote speaks. Relative remote paths start in the user's home.
   * @throws Error with sftp's stderr when a command of the batch (one not prefixed with `-`) fails.
   */
  sftp(batch: string): Promise<void>;
  /** Places a file as root: `source` is a local path or literal content; `mode` like 0o644. Atomic (temp + rename). */
  copy(source: { path: string } | { content: string | Buffer }, remotePath: string, mode: number): Promise<void>;
  /** The node's console output so far (systemd boot messages), for diagnostics. */
  consoleLog(): string;
}

/** Options for {@link bootNodes}. */
export interface BootOptions {
  /** Node hostnames; default `node1`…`nodeN`. Must be N distinct DNS labels. */
  names?: string[];
  /** Progress lines (rootfs build, boot times); default silent. */
  log?: (line: string) => void;
  /** Seconds to wait for each node to reach running/degraded and answer SSH (default 180). */
  bootTimeoutSeconds?: number;
  /** Debian release of the nodes (default bookworm; trixie has the Node.js 20 the queue/worker roles need). */
  suite?: DebianSuite;
  /** Give every node a `tailscale0` on a second network, 100.64.S.0/24 (the host at 100.64.S.1). */
  tailnet?: boolean;
  /**
   * Write `127.0.1.1 <node name>` into each node's own /etc/hosts, as Debian's installer does (and Raspberry
   * Pi OS): on the node itself its name is then loopback, while the other nodes resolve it to its address.
   */
  debianHostname?: boolean;
}

/** A booted set of nodes and the services the harness runs for them. */
export interface TestNetwork {
  slot: number;
  nodes: TestNode[];
  /** Address of the host side of the nodes' network (registry proxy and artifact server listen here). */
  hostAddress: string;
  /** The host's address on the stand-in tailnet (boot option `tailnet`), else undefined. */
  hostTailnetAddress?: string;
  artifactServer: ArtifactServer;
  registryProxy: RegistryProxy;
  /** Private key of this run (in the slot directory; deleted at teardown). */
  keyPath: string;
  rootfs: RootfsInfo;
  /** Seconds from network setup to every node running and answering SSH (excludes the rootfs build). */
  bootSeconds: number;
  /** Powers nodes off and removes every container, namespace, veth, bridge and file of this run. Idempotent. */
  teardown(): Promise<void>;
}

function onPath(bin: string): boolean {
  return (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter).concat(["/usr/sbin", "/sbin"]).some((d) => existsSync(join(d, bin)));
}

/**
 * Why this machine cannot run the hosts level, or undefined when it can: needs Linux, root, overlayfs and
 * the tools named (with the Debian package that provides each).
 */
export function hostsPrerequisiteProblem(): string | undefined {
  if (process.platform !== "linux") return `needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "needs root (network namespaces, veths and systemd-nspawn); run the tests as root";
  const tools: [string, string][] = [
    ["debootstrap", "debootstrap"], ["systemd-nspawn", "systemd-container"], ["ip", "iproute2"],
    ["ssh", "openssh-client"], ["ssh-keygen", "openssh-client"], ["flock", "util-linux"], ["tar", "tar"], ["gzip", "gzip"],
  ];
  const missing = tools.filter(([bin]) => !onPath(bin));
  if (missing.length) {
    return `missing ${missing.map(([b]) => b).join(", ")}; install with: apt-get install -y ${[...new Set(missing.map(([, p]) => p))].join(" ")}`;
  }
  if (!readFileSync("/proc/filesystems", "utf8").includes("overlay")) return "the kernel has no overlayfs (nodes boot on a tmpfs overlay)";
  return undefined;
}

/** Prints the loud skip line the hosts test files use, and returns the reason for `describe.skipIf`. */
export function announceSkip(): string | undefined {
  const problem = hostsPrerequisiteProblem();
  if (problem) console.warn(`\n*** hosts level SKIPPED: ${problem} ***\n`);
  return problem;
}

/** Names the harness's objects in `slot` (or any slot) currently exist, for leak checks. Sorted. */
export interface HostsResources {
  netns: string[];
  links: string[];
  /** Machine names of running systemd-nspawn processes. */
  machines: string[];
  /** Per-node cgroups, as `<hierarchy>/<machine>` (e.g. `unified/fkh0n1`). */
  cgroups: string[];
}

const NAME_RE = /^fkh(\d+)(?:n\d+t?|br|tb)$/;

function sh(cmd: string, args: string[], allowFail = false): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    if (allowFail) return "";
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${(err.stderr ?? err.message).trim()}`);
  }
}

/**
 * The cgroup directories nodes are placed in, one per writable hierarchy systemd uses (the unified cgroup2
 * tree and, on hybrid hosts, the v1 `name=systemd` tree), under this process's own cgroup there.
 *
 * Why: with `--keep-unit` and no systemd on the host, nspawn puts every container into
 * `<its cgroup>/payload`, so all nodes would share one cgroup tree and each node's systemd would see (and
 * try to kill) the other nodes' `system.slice/<unit>` processes ("Failed to kill control group …:
 * Input/output error", units stuck in `activating`). Each node therefore starts in its own `<machine>` cgroup.
 */
function cgroupParents(): { name: string; path: string }[] {
  const own = readFileSync("/proc/self/cgroup", "utf8").split("\n");
  const rel = (hier: string) => own.find((l) => l.split(":")[1] === hier)?.split(":")[2] ?? "/";
  const out: { name: string; path: string }[] = [];
  if (existsSync("/sys/fs/cgroup/cgroup.controllers")) out.push({ name: "unified", path: join("/sys/fs/cgroup", rel("")) });
  else if (existsSync("/sys/fs/cgroup/unified/cgroup.procs")) out.push({ name: "unified", path: join("/sys/fs/cgroup/unified", rel("")) });
  if (existsSync("/sys/fs/cgroup/systemd/cgroup.procs")) out.push({ name: "systemd", path: join("/sys/fs/cgroup/systemd", rel("name=systemd")) });
  return out;
}

/** Removes a cgroup directory tree bottom-up (rmdir only; processes must be gone). Bounded retries. */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(join(dir, e.name));
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}

function nspawnProcesses(): { pid: number; machine: string }[] {
  const out: { pid: number; machine: string }[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (!argv[0]?.endsWith("systemd-nspawn")) continue;
    const m = argv.find((a) => a.startsWith(`--machine=${NAME_PREFIX}`));
    if (m) out.push({ pid: Number(d), machine: m.slice("--machine=".length) });
  }
  return out;
}

/** Lists the harness's namespaces, links and machines, all slots or one. */
export function listHostsResources(slot?: number): HostsResources {
  const mine = (name: string) => {
    const m = NAME_RE.exec(name);
    return m !== null && (slot === undefined || Number(m[1]) === slot);
  };
  const netns = sh("ip", ["netns", "list"], true).split("\n").map((l) => l.split(" ")[0] ?? "").filter(mine);
  const links = sh("ip", ["-o", "link", "show"], true).split("\n").map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? "").filter(mine);
  const machines = nspawnProcesses().map((p) => p.machine).filter(mine);
  const cgroups = cgroupParents().flatMap((c) => (existsSync(c.path) ? readdirSync(c.path) : []).filter(mine).map((d) => `${c.name}/${d}`));
  return { netns: netns.sort(), links: links.sort(), machines: machines.sort(), cgroups: cgroups.sort() };
}

function slotDir(slot: number): string {
  return join(RUN_BASE, `slot-${slot}`);
}

function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function slotOwnerAlive(slot: number): boolean {
  try {
    const [pid, start] = readFileSync(join(slotDir(slot), "owner"), "utf8").trim().split(" ");
    return processStart(Number(pid)) === start;
  } catch {
    return false;
  }
}

/**
 * Removes everything of `slot` synchronously: kills its nspawn processes and whatever still runs in its
 * namespaces, deletes namespaces, links and the slot directory. Safe to call when parts are already gone.
 */
function destroySlotSync(slot: number): void {
  const res = listHostsResources(slot);
  for (const p of nspawnProcesses().filter((p) => NAME_RE.exec(p.machine)?.[1] === String(slot))) {
    try { process.kill(p.pid, "SIGKILL"); } catch { /* already gone */ }
  }
  for (const ns of res.netns) {
    for (const pid of sh("ip", ["netns", "pids", ns], true).split("\n").filter(Boolean)) {
      try { process.kill(Number(pid), "SIGKILL"); } catch { /* already gone */ }
    }
  }
  for (const ns of res.netns) sh("ip", ["netns", "delete", ns], true);
  for (const c of cgroupParents()) {
    for (const d of existsSync(c.path) ? readdirSync(c.path) : []) if (NAME_RE.exec(d)?.[1] === String(slot)) removeCgroup(join(c.path, d));
  }
  for (const link of listHostsResources(slot).links) sh("ip", ["link", "delete", link], true);
  const propagate = "/run/systemd/nspawn/propagate";
  if (existsSync(propagate)) {
    for (const d of readdirSync(propagate)) if (NAME_RE.exec(d)?.[1] === String(slot)) rmSync(join(propagate, d), { recursive: true, force: true });
  }
  rmSync(slotDir(slot), { recursive: true, force: true });
}

/**
 * Removes the leftovers of crashed runs: every slot whose owning process is gone, and any `fkh*` namespace,
 * link or machine whose slot has no live owner. Returns the slots cleaned.
 */
export function cleanupLeftovers(): number[] {
  const slots = new Set<number>();
  if (existsSync(RUN_BASE)) {
    for (const d of readdirSync(RUN_BASE)) {
      const m = /^slot-(\d+)$/.exec(d);
      if (m) slots.add(Number(m[1]));
      else if (d.startsWith(".new-") && processStart(Number(d.split("-")[1])) === undefined) rmSync(join(RUN_BASE, d), { recursive: true, force: true });
    }
  }
  const all = listHostsResources();
  for (const name of [...all.netns, ...all.links, ...all.machines, ...all.cgroups.map((c) => c.split("/")[1]!)]) slots.add(Number(NAME_RE.exec(name)?.[1]));
  const cleaned: number[] = [];
  for (const s of [...slots].sort((a, b) => a - b)) {
    if (slotOwnerAlive(s)) continue;
    destroySlotSync(s);
    cleaned.push(s);
  }
  return cleaned;
}

function claimSlot(): number {
  mkdirSync(RUN_BASE, { recursive: true, mode: 0o700 });
  const staging = join(RUN_BASE, `.new-${process.pid}-${Date.now()}`);
  mkdirSync(staging, { mode: 0o700 });
  writeFileSync(join(staging, "owner"), `${process.pid} ${processStart(process.pid)}\n`);
  for (let s = 0; s < MAX_SLOTS; s++) {
    if (existsSync(slotDir(s))) continue;
    try {
      renameSync(staging, slotDir(s));
      return s;
    } catch {
      /* taken meanwhile; try the next */
    }
  }
  rmSync(staging, { recursive: true, force: true });
  throw new HostsUnavailableError(`all ${MAX_SLOTS} hosts-level run slots under ${RUN_BASE} are in use by live processes`);
}

const SSH_BASE_OPTIONS = [
  "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
  "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes",
];

function runSsh(keyPath: string, target: string, command: string, opts: SshOptions & { connectTimeoutSeconds?: number; program?: "ssh" | "sftp" } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const args = ["-i", keyPath, ...SSH_BASE_OPTIONS];
    if (opts.connectTimeoutSeconds) args.push("-o", `ConnectTimeout=${opts.connectTimeoutSeconds}`);
    // sftp reads its batch from stdin (`-b -`); ssh takes the command as its last argument.
    if (opts.program === "sftp") args.push("-b", "-", target);
    else args.push(target, command);
    const child = spawn(opts.program ?? "ssh", args, { stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    const timeoutSeconds = opts.timeoutSeconds ?? 600;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutSeconds * 1000);
    child.on("error", (e) => { clearTimeout(timer); reject(e); });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString() + (signal ? `\n[ssh killed by ${signal} after ${timeoutSeconds} s]` : "");
      resolve({ code: code ?? 255, stdout: Buffer.concat(out).toString(), stderr });
    });
    if (opts.input !== undefined) {
      child.stdin!.on("error", () => { /* remote closed stdin early; the exit code tells */ });
      child.stdin!.end(opts.input);
    }
  });
}

const live = new Map<number, () => void>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const destroyAll = () => { for (const destroy of [...live.values()]) destroy(); };
  process.on("exit", destroyAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      destroyAll();
      process.kill(process.pid, sig);
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Boots `n` nodes (1–40) and the registry proxy and artifact server for them; resolves once every node's
 * `systemctl is-system-running` says `running` or `degraded` over SSH.
 *
 * Builds the cached root filesystem first when it is missing (see {@link ensureRootfs}). Throws
 * {@link HostsUnavailableError} when the machine lacks what the level needs; throws (after removing
 * everything it created) when a node fails to boot in time, with that node's console tail.
 */
export async function bootNodes(n: number, opts: BootOptions = {}): Promise<TestNetwork> {
  const problem = hostsPrerequisiteProblem();
  if (problem) throw new HostsUnavailableError(`hosts level unavailable: ${problem}`);
  if (!Number.isInteger(n) || n < 1 || n > 40) throw new RangeError(`bootNodes: n must be 1..40, got ${n}`);
  const names = opts.names ?? Array.from({ length: n }, (_, i) => `node${i + 1}`);
  if (names.length !== n || new Set(names).size !== n || !names.every((x) => /^[a-z][a-z0-9-]{0,62}$/.test(x))) {
    throw new RangeError(`bootNodes: names must be ${n} distinct lowercase host labels, got ${JSON.stringify(names)}`);
  }
  const log = opts.log ?? (() => {});
  const bootTimeoutSeconds = opts.bootTimeoutSeconds ?? 180;

  const cleaned = cleanupLeftovers();
  if (cleaned.length) log(`hosts: removed leftovers of crashed runs in slots ${cleaned.join(", ")}`);
  const rootfs = await ensureRootfs(log, opts.suite ?? "bookworm");
  if (rootfs.built) log(`hosts: root filesystem built in ${rootfs.seconds.toFixed(1)} s`);

  installExitHandlers();
  const slot = claimSlot();
  const dir = slotDir(slot);
  const children: ChildProcess[] = [];
  let registryProxy: RegistryProxy | undefined;
  let artifactServer: ArtifactServer | undefined;
  let tornDown = false;
  const destroySync = () => {
    if (tornDown) return;
    tornDown = true;
    live.delete(slot);
    destroySlotSync(slot);
  };
  live.set(slot, destroySync);
  const teardown = async () => {
    if (tornDown) return;
    // Clean poweroff first (nspawn turns SIGTERM into the container's shutdown), bounded; then force.
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && children.some((c) => c.exitCode === null && c.signalCode === null)) await sleep(100);
    await Promise.allSettled([registryProxy?.close(), artifactServer?.close()]);
    destroySync();
  };

  try {
    const started = Date.now();
    const hostAddress = `10.213.${slot}.1`;
    const bridge = `${NAME_PREFIX}${slot}br`;
    const keyPath = join(dir, "id_ed25519");
    sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `fleetkit-hosts-slot-${slot}`, "-f", keyPath]);
    writeFileSync(join(dir, "authorized_keys"), readFileSync(`${keyPath}.pub`), { mode: 0o644 });

    sh("ip", ["link", "add", bridge, "type", "bridge"]);
    sh("ip", ["addr", "add", `${hostAddress}/24`, "dev", bridge]);
    sh("ip", ["link", "set", bridge, "up"]);

    const mirrors = machineDebianMirrors();
    registryProxy = await startRegistryProxy(hostAddress, [new URL(mirrors.debian).hostname, new URL(mirrors.security).hostname]);
    artifactServer = await startArtifactServer(hostAddress);
    writeFileSync(join(dir, "apt-proxy.conf"), `Acquire::http::Proxy "${registryProxy.url}";\nAcquire::https::Proxy "${registryProxy.url}";\n`, { mode: 0o644 });
    writeFileSync(join(dir, "npmrc"), `registry=${registryProxy.url}/\n`, { mode: 0o644 });

    const nodes = names.map((name, i) => ({
      name,
      machine: `${NAME_PREFIX}${slot}n${i + 1}`,
      address: `10.213.${slot}.${11 + i}`,
      tailnetAddress: opts.tailnet ? `100.64.${slot}.${11 + i}` : undefined,
    }));
    // One hosts file per node: with `debianHostname`, a node's own name is 127.0.1.1 on that node only.
    for (const self of nodes) {
      writeFileSync(join(dir, `hosts-${self.name}`), [
        "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", `${hostAddress}\tfleetkit-test-host`,
        ...(opts.debianHostname ? [`127.0.1.1\t${self.name}`] : []),
        ...nodes.filter((x) => !(opts.debianHostname && x === self)).map((x) => `${x.address}\t${x.name}`), "",
      ].join("\n"), { mode: 0o644 });
    }

    for (const x of nodes) {
      const ns = x.machine;
      sh("ip", ["netns", "add", ns]);
      sh("ip", ["link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      sh("ip", ["-n", ns, "addr", "add", `${x.address}/24`, "dev", "eth0"]);
      sh("ip", ["-n", ns, "link", "set", "eth0", "up"]);
      sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
      sh("ip", ["link", "set", ns, "master", bridge, "up"]);
    }
    const hostTailnetAddress = opts.tailnet ? `100.64.${slot}.1` : undefined;
    if (opts.tailnet) {
      const tailnetBridge = `${NAME_PREFIX}${slot}tb`;
      sh("ip", ["link", "add", tailnetBridge, "type", "bridge"]);
      sh("ip", ["addr", "add", `${hostTailnetAddress}/24`, "dev", tailnetBridge]);
      sh("ip", ["link", "set", tailnetBridge, "up"]);
      for (const x of nodes) {
        const ns = x.machine;
        sh("ip", ["link", "add", `${ns}t`, "type", "veth", "peer", "name", "tailscale0", "netns", ns]);
        sh("ip", ["-n", ns, "addr", "add", `${x.tailnetAddress}/24`, "dev", "tailscale0"]);
        sh("ip", ["-n", ns, "link", "set", "tailscale0", "up"]);
        sh("ip", ["link", "set", `${ns}t`, "master", tailnetBridge, "up"]);
      }
    }

    const cgroups = cgroupParents();
    for (const x of nodes) {
      const logFd = openSync(join(dir, `console-${x.name}.log`), "w");
      const procs = cgroups.map((c) => join(c.path, x.machine, "cgroup.procs"));
      for (const c of cgroups) mkdirSync(join(c.path, x.machine));
      // A shell moves itself into the node's own cgroups, then becomes systemd-nspawn (see cgroupParents).
      const child = spawn("sh", ["-c", 'for f in $FK_CGROUP_PROCS; do echo $$ > "$f" || exit 1; done; exec "$@"', "sh", "systemd-nspawn", 
        "--quiet", "--register=no", "--keep-unit", "--volatile=overlay", "--boot", "--console=read-only",
        `--machine=${x.machine}`, `--hostname=${x.name}`, `--directory=${rootfs.path}`,
        `--network-namespace-path=/run/netns/${x.machine}`,
        `--bind-ro=${join(dir, "authorized_keys")}:/root/.ssh/authorized_keys`,
        `--bind-ro=${join(dir, "authorized_keys")}:/home/${NODE_USER}/.ssh/authorized_keys`,
        `--bind-ro=${join(dir, `hosts-${x.name}`)}:/etc/hosts`,
        // Roles load nftables rules; the node's network namespace is its own, so this reaches no further.
        "--capability=CAP_NET_ADMIN",
        `--bind-ro=${join(dir, "apt-proxy.conf")}:/etc/apt/apt.conf.d/90fleetkit-test-proxy`,
        `--bind-ro=${join(dir, "npmrc")}:/etc/npmrc`,
      ], { stdio: ["ignore", logFd, logFd], detached: true, env: { ...process.env, FK_CGROUP_PROCS: procs.join(" ") } });
      closeSync(logFd);
      children.push(child);
    }

    const testNodes: TestNode[] = nodes.map((x) => {
      const ssh = (command: string, o: SshOptions = {}) => runSsh(keyPath, `${o.user ?? NODE_USER}@${x.address}`, command, o);
      const run = async (command: string, o: SshOptions = {}) => {
        const r = await ssh(command, o);
        if (r.code !== 0) throw new Error(`on ${x.name}: \`${command.length > 200 ? command.slice(0, 200) + "…" : command}\` exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
        return r.stdout;
      };
      return {
        name: x.name,
        address: x.address,
        ...(x.tailnetAddress ? { tailnetAddress: x.tailnetAddress } : {}),
        machine: x.machine,
        user: NODE_USER,
        ssh,
        run,
        sftp: async (batch) => {
          const r = await runSsh(keyPath, `${NODE_USER}@${x.address}`, "", { program: "sftp", input: batch, timeoutSeconds: 300 });
          if (r.code !== 0) throw new Error(`on ${x.name}: sftp batch exited ${r.code}\n${r.stderr}`);
        },
        copy: async (source, remotePath, mode) => {
          const content = "path" in source ? readFileSync(source.path) : source.content;
          const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
          const script = `set -e; p=${q(remotePath)}; d=$(dirname "$p"); mkdir -p "$d"; t="$d/.fleetkit-copy.$$"; cat > "$t"; chmod ${mode.toString(8)} "$t"; mv -f "$t" "$p"`;
          await run(`sh -c ${q(script)}`, { user: "root", input: content });
        },
        consoleLog: () => readFileSync(join(dir, `console-${x.name}.log`), "utf8"),
      };
    });

    await Promise.all(testNodes.map(async (node, i) => {
      const child = children[i]!;
      const deadline = Date.now() + bootTimeoutSeconds * 1000;
      let last = "";
      while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`node ${node.name}: systemd-nspawn exited (${child.exitCode ?? child.signalCode}) while booting; console tail:\n${node.consoleLog().split("\n").slice(-20).join("\n")}`);
        }
        // As the node user through sudo, the path role scripts take; also waits out pam_nologin during boot.
        const r = await runSsh(keyPath, `${NODE_USER}@${node.address}`, "sudo -n systemctl is-system-running", { timeoutSeconds: 15, connectTimeoutSeconds: 2 });
        last = (r.stdout.trim() || r.stderr.trim()).split("\n")[0] ?? "";
        if (last === "running" || last === "degraded") return;
        await sleep(250);
      }
      throw new Error(`node ${node.name} did not reach running/degraded with SSH in ${bootTimeoutSeconds} s (last answer: ${last}); console tail:\n${node.consoleLog().split("\n").slice(-20).join("\n")}`);
    }));

    const bootSeconds = (Date.now() - started) / 1000;
    log(`hosts: ${n} node(s) running in ${bootSeconds.toFixed(1)} s (slot ${slot}, rootfs ${rootfs.built ? "built" : "cached"})`);
    return { slot, nodes: testNodes, hostAddress, ...(hostTailnetAddress ? { hostTailnetAddress } : {}), artifactServer, registryProxy, keyPath, rootfs, bootSeconds, teardown };
  } catch (e) {
    await teardown();
    throw e;
  }
}
