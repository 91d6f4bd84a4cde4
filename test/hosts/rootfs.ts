/**
 * The cached Debian root filesystems the hosts-level test nodes boot from: bookworm (Debian 12, the default)
 * and trixie (Debian 13, whose Node.js 20 the queue and worker roles need; bookworm ships 18).
 *
 * Built once with `debootstrap --variant=minbase` from the machine's own apt mirror (read from
 * /etc/apt/sources.list.d/*.sources, the deb822 files apt uses here), under an exclusive `flock` so concurrent
 * test files never build it twice, into a temporary directory renamed into place when complete. The directory
 * name carries a hash of the recipe below, so changing the package list builds a fresh tree instead of
 * reusing a stale one. Nodes mount it read-only as the lower layer of an overlay (`systemd-nspawn
 * --volatile=overlay`), so one tree serves every node of every run and is never written after the build.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";

/** Where root filesystems are cached (outside the repo); override with FLEETKIT_ROOTFS_CACHE. */
export const ROOTFS_CACHE_DIR = process.env.FLEETKIT_ROOTFS_CACHE ?? "/var/cache/fleetkit";

/** The unprivileged node user every test node has, with passwordless sudo (the fleet's `user`). */
export const NODE_USER = "admin";

/**
 * Packages installed into the root filesystem. Beyond what boots a node with sshd (openssh-server,
 * systemd-sysv, dbus), these are what the Linux roles need anyway, so tests do not depend on apt at run time:
 * icecc (iceccd, icecc-scheduler, icecc-create-env), gcc + g++ + libc6-dev (a real compile; icecc-create-env
 * packs both compilers), curl + ca-certificates
 * (artifact downloads), sudo (the Pulumi command provider's `sudo -n sh -c`), python3 (the stand-in Tailscale and
 * AgentAPI), nodejs + npm + bubblewrap + socat (the claude role's packages; npm's dependency tree is ~300 Debian
 * packages, too slow to fetch per run), make (better-sqlite3, which the queue runtime needs, falls back to
 * compiling with node-gyp when its prebuilt binary cannot be fetched from GitHub, as here).
 */
export const ROOTFS_PACKAGES = [
  "openssh-server", "systemd-sysv", "dbus", "iproute2", "iputils-ping", "procps",
  "ca-certificates", "curl", "sudo", "python3", "gcc", "g++", "libc6-dev", "icecc", "file", "xz-utils",
  "nodejs", "npm", "bubblewrap", "socat", "make",
];

/** Debian mirror URLs as configured on this machine. */
export interface DebianMirrors {
  /** e.g. http://deb.debian.org/debian */
  debian: string;
  /** e.g. http://deb.debian.org/debian-security */
  security: string;
}

/**
 * Reads the Debian mirror and security mirror from this machine's deb822 apt sources (the `URIs:` of the
 * stanzas with a plain suite such as `bookworm`, and with a `*-security` suite). Falls back to deb.debian.org.
 */
export function machineDebianMirrors(dir = "/etc/apt/sources.list.d"): DebianMirrors {
  const found: DebianMirrors = { debian: "http://deb.debian.org/debian", security: "http://deb.debian.org/debian-security" };
  if (!existsSync(dir)) return found;
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".sources")).sort()) {
    for (const stanza of readFileSync(join(dir, f), "utf8").split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
      if (!uri || !/^https?:\/\//.test(uri)) continue;
      if (suites.some((x) => x.endsWith("-security"))) found.security = uri.replace(/\/$/, "");
      else if (suites.some((x) => /^[a-z]+$/.test(x))) found.debian = uri.replace(/\/$/, "");
    }
  }
  return found;
}

/** Debian releases the harness can boot. */
export type DebianSuite = "bookworm" | "trixie";

/** The shell recipe that turns a fresh debootstrap tree into a test node image (run on the host, as root). */
function recipe(mirrors: DebianMirrors, suite: DebianSuite): string {
  return String.raw`
set -euo pipefail
[ -n "$FINAL" ] || exit 2
for d in "$FINAL".tmp.*; do umount "$d/proc" 2>/dev/null || true; done
rm -rf --one-file-system "$FINAL".tmp.*
tmp="$FINAL.tmp.$$"
# debootstrap resolves only simple dependency sets: it lays down the base, apt installs the rest.
debootstrap --variant=minbase --include=openssh-server,systemd-sysv,dbus ${suite} "$tmp" "$MIRROR"
cat > "$tmp/etc/apt/sources.list" <<EOF
deb ${mirrors.debian} ${suite} main
deb ${mirrors.debian} ${suite}-updates main
deb ${mirrors.security} ${suite}-security main
EOF
cp /etc/resolv.conf "$tmp/etc/resolv.conf"
mount -t proc proc "$tmp/proc"
trap 'umount "$tmp/proc" 2>/dev/null || true' EXIT
chroot "$tmp" apt-get update -q
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
chroot "$tmp" apt-get clean
umount "$tmp/proc"
trap - EXIT
# The packaged icecc init scripts must not start by themselves: the icecc roles own those daemons.
for s in iceccd icecc-scheduler; do
  if [ -e "$tmp/etc/init.d/$s" ]; then chroot "$tmp" update-rc.d "$s" disable; fi
  for d in "$tmp"/etc/systemd/system/*.wants; do rm -f "$d/$s.service"; done
done
# Nothing may take the dpkg lock or prompt on a console behind the tests' back.
for u in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer \
         systemd-firstboot.service; do
  ln -sf /dev/null "$tmp/etc/systemd/system/$u"
done
# Empty machine-id: each boot gets its own (from the container UUID nspawn passes); hostname comes from nspawn.
: > "$tmp/etc/machine-id"
rm -f "$tmp/etc/hostname"
chroot "$tmp" useradd --create-home --shell /bin/bash --groups sudo ${NODE_USER}
echo '${NODE_USER} ALL=(ALL) NOPASSWD:ALL' > "$tmp/etc/sudoers.d/${NODE_USER}"
chmod 0440 "$tmp/etc/sudoers.d/${NODE_USER}"
install -d -m 0700 "$tmp/root/.ssh"
install -d -m 0700 -o "$(chroot "$tmp" id -u ${NODE_USER})" -g "$(chroot "$tmp" id -g ${NODE_USER})" "$tmp/home/${NODE_USER}/.ssh"
printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n' > "$tmp/etc/ssh/sshd_config.d/fleetkit-test.conf"
echo "$RECIPE_HASH" > "$tmp/etc/fleetkit-test-rootfs"
mv "$tmp" "$FINAL"
`;
}

/**
 * Removes trees of `suite` built from an older recipe (about 1 GB each) once a new one exists, unless a
 * running process (a node of a concurrent run) still names it on its command line.
 */
function pruneStale(suite: DebianSuite, keep: string, log: (line: string) => void): void {
  const inUse = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8");
      } catch {
        return "";
      }
    })
    .join("\n");
  for (const d of readdirSync(ROOTFS_CACHE_DIR)) {
    const path = join(ROOTFS_CACHE_DIR, d);
    if (!new RegExp(`^rootfs-${suite}-[0-9a-f]{12}$`).test(d) || path === keep || inUse.includes(path)) continue;
    rmSync(path, { recursive: true, force: true });
    log(`hosts: removed the outdated root filesystem ${path}`);
  }
}

/** Result of {@link ensureRootfs}. */
export interface RootfsInfo {
  /** Absolute path of the finished tree. */
  path: string;
  /** True when this call ran debootstrap (a cold build); false when the cache was reused. */
  built: boolean;
  /** Wall time of this call, seconds. */
  seconds: number;
}

/**
 * Returns the cached root filesystem of `suite`, building it first when missing (cold: about a minute of debootstrap
 * plus apt-get update). Safe to call from concurrent processes: the build runs under `flock` on
 * `<cache>/rootfs.lock` and re-checks the cache once it holds the lock. Throws with debootstrap's output
 * tail when the build fails; a failed build leaves only a `.tmp.*` directory that the next build removes.
 */
export async function ensureRootfs(log: (line: string) => void = () => {}, suite: DebianSuite = "bookworm"): Promise<RootfsInfo> {
  const started = Date.now();
  const mirrors = machineDebianMirrors();
  const script = recipe(mirrors, suite);
  const hash = createHash("sha256").update(JSON.stringify({ script, ROOTFS_PACKAGES })).digest("hex").slice(0, 12);
  const final = join(ROOTFS_CACHE_DIR, `rootfs-${suite}-${hash}`);
  const ready = () => existsSync(join(final, "etc/fleetkit-test-rootfs"));
  if (ready()) return { path: final, built: false, seconds: (Date.now() - started) / 1000 };
  mkdirSync(ROOTFS_CACHE_DIR, { recursive: true });
  log(`hosts: building root filesystem ${final} with debootstrap from ${mirrors.debian} (one time)`);
  const guarded = `if [ -f "$FINAL/etc/fleetkit-test-rootfs" ]; then exit 0; fi\n${script}`;
  const out: string[] = [];
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn("flock", [join(ROOTFS_CACHE_DIR, "rootfs.lock"), "bash", "-c", guarded], {
      env: { ...process.env, FINAL: final, PACKAGES: ROOTFS_PACKAGES.join(" "), MIRROR: mirrors.debian, RECIPE_HASH: hash, DEBIAN_FRONTEND: "noninteractive" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (b: Buffer) => { out.push(b.toString()); if (out.length > 400) out.splice(0, 200); };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", reject);
    child.on("close", (c) => resolve(c ?? 1));
  });
  if (code !== 0 || !ready()) {
    throw new Error(`building the test root filesystem ${final} failed (exit ${code}); last output:\n${out.join("").split("\n").slice(-25).join("\n")}`);
  }
  pruneStale(suite, final, log);
  return { path: final, built: true, seconds: (Date.now() - started) / 1000 };
}
