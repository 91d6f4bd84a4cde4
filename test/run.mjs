#!/usr/bin/env node
/**
 * `npm test`: README's one test command. On a Debian machine as root it installs the Debian packages the
 * test levels need (idempotent; one line naming what it installs; waits up to 5 minutes for a dpkg lock
 * another apt holds), then runs `tsc --noEmit` and every vitest level. Where it cannot install (not root,
 * not Debian, apt failing), each test file whose tools are missing is left out with one line per tool
 * naming the file count and the package to install, so nothing fails for a missing tool.
 *
 * A test file declares the programs it runs in a comment line `// @needs prog prog …` (see NEEDS below
 * for the programs this knows and their Debian packages); files without one need only Node.js.
 * Arguments are passed to vitest (`npm test -- test/model` runs one level). Exit code: vitest's, or
 * tsc's when type checking fails.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { delimiter, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * Program → Debian package that provides it. The hosts level also needs these on the machine running the
 * tests (its nodes get their own packages from Debian through the harness's registry proxy).
 */
export const NEEDS = {
  shellcheck: "shellcheck", // static level: every rendered shell script
  "systemd-analyze": "systemd", // static level: systemd-analyze verify
  python3: "python3", // static level: plistlib parses every launchd plist
  sshd: "openssh-server", // loopback sshd for the toolchain distribution and the fleet verbs
  ssh: "openssh-client",
  "ssh-keygen": "openssh-client",
  sudo: "sudo", // bundles' and the distribution's commands run as root through sudo -n, as on nodes
  git: "git", // runtime level: tasks with a git repository
  "icecc-create-env": "icecc", // toolchains: packs a compiler into an icecc environment
  "icecc-scheduler": "icecc", // cli level: the monitor client against a real scheduler on loopback
  iceccd: "icecc",
  icecc: "icecc", // the compiler wrapper whose job the monitor sees
  gcc: "gcc",
  "g++": "g++",
  clang: "clang",
  "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu", // toolchains: a real cross compiler, packed into a cross tarball
  "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu",
  chroot: "coreutils", // toolchains: runs a packed compiler inside its tarball's tree, as icecc's README checks one
  file: "file", // toolchains: the object a cross compiler made is aarch64
  debootstrap: "debootstrap", // hosts level: Debian root filesystem for the test nodes
  "systemd-nspawn": "systemd-container", // hosts level: boots the test nodes
  ip: "iproute2", // hosts level: network namespaces and veth pairs
  iptables: "iptables", // hosts level: NAT for the nodes' registry proxy
  nft: "nftables",
  chromium: "chromium", // browser level: the fleet's web page in headless Chromium
  script: "bsdutils", // scripts level: runs a verb on a pseudo-terminal (the spinner shows only there)
};

/** Packages installed even though no file names them: what `npm ci` needs to build better-sqlite3 from source. */
const BUILD_PACKAGES = ["make", "g++", "python3"];

const SBIN = ["/usr/local/sbin", "/usr/sbin", "/sbin"];
function onPath(bin) {
  return (process.env.PATH ?? "").split(delimiter).concat(SBIN).some((d) => d && existsSync(join(d, bin)));
}

function testFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(p));
    else if (e.name.endsWith(".test.ts")) out.push(p);
  }
  return out.sort();
}

/** `@needs` declarations of every test file: Map<relative path, programs>. */
export function declaredNeeds() {
  const needs = new Map();
  for (const file of testFiles(join(ROOT, "test"))) {
    const progs = [...readFileSync(file, "utf8").matchAll(/^\s*(?:\/\/|\*)\s*@needs\s+(.+)$/gm)].flatMap((m) => m[1].trim().split(/\s+/));
    for (const p of progs) if (!Object.hasOwn(NEEDS, p)) throw new Error(`${relative(ROOT, file)}: @needs ${p}: unknown program (test/run.mjs NEEDS lists the known ones)`);
    needs.set(relative(ROOT, file), [...new Set(progs)]);
  }
  return needs;
}

function isDebianRoot() {
  return process.platform === "linux" && process.getuid?.() === 0 && existsSync("/etc/debian_version") && onPath("apt-get") && onPath("dpkg-query");
}

function installed(pkg) {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });
  return r.status === 0 && r.stdout.includes("install ok installed");
}

/** Installs the missing packages with apt-get; returns an error text, or "" when all is installed. */
function aptInstall(packages) {
  const missing = [...new Set(packages)].filter((p) => !installed(p)).sort();
  if (missing.length === 0) return "";
  process.stdout.write(`test: installing Debian packages the test levels need: ${missing.join(" ")}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  // Wait for a dpkg lock another apt holds (unattended upgrades at boot) instead of failing at once.
  const lock = ["-o", "DPkg::Lock::Timeout=300"];
  const quiet = { env, stdio: ["ignore", "ignore", "inherit"] };
  const update = spawnSync("apt-get", [...lock, "update", "-q"], quiet);
  if (update.status !== 0) return `apt-get update exited ${update.status}`;
  const r = spawnSync("apt-get", [...lock, "install", "-y", "-q", "--no-install-recommends", ...missing], quiet);
  return r.status === 0 ? "" : `apt-get install exited ${r.status}`;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit" });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function main() {
  const needs = declaredNeeds();
  const all = [...new Set([...needs.values()].flat())];
  if (isDebianRoot()) {
    const why = aptInstall([...all.map((p) => NEEDS[p]), ...BUILD_PACKAGES]);
    if (why) process.stdout.write(`test: could not install packages (${why}); files whose tools are missing are skipped\n`);
  }
  const missing = all.filter((p) => !onPath(p));
  const exclude = [];
  for (const prog of missing) {
    const files = [...needs].filter(([, progs]) => progs.includes(prog)).map(([f]) => f);
    exclude.push(...files);
    process.stdout.write(`test: skipping ${files.length} file(s) (${files.join(", ")}): ${prog} is missing; install Debian package ${NEEDS[prog]}\n`);
  }
  const tsc = run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "--noEmit"]);
  if (tsc !== 0) return tsc;
  const args = [join(ROOT, "node_modules/vitest/vitest.mjs"), "run", "--passWithNoTests", ...[...new Set(exclude)].flatMap((f) => ["--exclude", f]), ...process.argv.slice(2)];
  return run(process.execPath, args);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main();
