/**
 * The artifact server of the hosts level: serves stand-ins for the downloads test nodes cannot fetch here
 * (Tailscale's static tarball, the AgentAPI binary) from the host side of the nodes' network, laid out like
 * the real download sites so a role's real download-and-verify path runs unchanged:
 *
 * - `GET /tailscale/tailscale_<version>_<goarch>.tgz` — like pkgs.tailscale.com/stable: a directory
 *   `tailscale_<version>_<goarch>/` holding `tailscale`, `tailscaled` and `systemd/tailscaled.{service,defaults}`;
 * - `GET /agentapi/<version>/agentapi-<os>-<goarch>` — like coder/agentapi's GitHub release assets (the
 *   version carries its own `v`, as fleet.yaml's `artifacts.agentapi.version` does: `v0.10.0`).
 *
 * Stand-ins are small POSIX sh / python3 programs that behave like the real ones where roles look
 * (versions, a daemon that stays up, `agentapi server --port N` answering `GET /status`). Tarballs are built
 * reproducibly (sorted names, mtime 0, numeric root owner, `gzip -n`), so a version's sha256 is the same in
 * every run; it is computed from the served bytes at publish time, never written down by hand.
 */
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Fastify, { type FastifyInstance } from "fastify";

const run = promisify(execFile);

/** Artifacts the server can stand in for. */
export type ArtifactKind = "tailscale" | "agentapi";

/** One file the server serves. */
export interface ServedFile {
  /** URL path, e.g. `/agentapi/v0.10.0/agentapi-linux-amd64`. */
  path: string;
  /** Absolute URL as nodes reach it. */
  url: string;
  /** sha256 of the served bytes, lowercase hex. */
  sha256: string;
  sizeBytes: number;
}

/**
 * A published artifact version in the shape of fleet.yaml's `artifacts.<kind>` (version, URL template with
 * `{version}`/`{os}`/`{goarch}`, sha256 per platform key), ready to put into a test fleet.
 */
export interface FleetArtifact {
  version: string;
  url: string;
  sha256: Partial<Record<"linux-x86_64" | "linux-aarch64", string>>;
  /** The served file of this machine's platform. */
  file: ServedFile;
}

/** A running artifact server. */
export interface ArtifactServer {
  /** `http://<address>:<port>` */
  baseUrl: string;
  /** Builds (once) and serves the stand-in `kind` at `version`; returns it in fleet.yaml's shape. */
  publish(kind: ArtifactKind, version: string): Promise<FleetArtifact>;
  /** Serves arbitrary bytes at `path` (e.g. a corrupt download); returns what was served. */
  serve(path: string, content: string | Buffer): ServedFile;
  /** Every request seen, as `METHOD path status`, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** Go's architecture name for this machine (`amd64`, `arm64`) and fleet.yaml's platform key. */
export function hostPlatform(): { goarch: "amd64" | "arm64"; key: "linux-x86_64" | "linux-aarch64" } {
  return process.arch === "arm64" ? { goarch: "arm64", key: "linux-aarch64" } : { goarch: "amd64", key: "linux-x86_64" };
}

/**
 * The stand-in `tailscaled` (python3): serves the CLI on its unix socket (`--socket`, default
 * /run/tailscale/tailscaled.sock), keeps login state in its `--state` file as JSON, tells systemd it is ready
 * (sd_notify READY=1 from the main process, as the real daemon does under `Type=notify`), and exits 0 on
 * SIGTERM. Records only the sha256 of an auth key, never the key. `--version` and `--cleanup` exit at once.
 */
function tailscaledStandIn(version: string): string {
  return `#!/usr/bin/env python3
"""fleetkit test stand-in for tailscaled ${version}: a daemon with the CLI's socket; touches no network."""
import hashlib
import json
import os
import signal
import socket
import sys

VERSION = "${version}"
args = sys.argv[1:]


def opt(name, default):
    for i, a in enumerate(args):
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
        if a == name and i + 1 < len(args):
            return args[i + 1]
    return default


sock_path = opt("--socket", "/run/tailscale/tailscaled.sock")
state_path = opt("--state", "/var/lib/tailscale/tailscaled.state")
if "--version" in args or "-version" in args:
    print(VERSION)
    sys.exit(0)
if "--cleanup" in args or "-cleanup" in args:
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    sys.exit(0)

try:
    with open(state_path) as f:
        state = json.load(f)
except (OSError, ValueError):
    state = {"BackendState": "NeedsLogin", "HostName": None, "AuthKeySha256": None}
if state.get("BackendState") == "Stopped":
    state["BackendState"] = "Running"


def save():
    os.makedirs(os.path.dirname(state_path), exist_ok=True)
    tmp = state_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, state_path)


def status():
    running = state["BackendState"] == "Running"
    host = state.get("HostName") or socket.gethostname()
    return {
        "Version": VERSION,
        "BackendState": state["BackendState"],
        "Self": {"HostName": host, "DNSName": host + ".tailnet-standin.ts.net.", "TailscaleIPs": ["100.64.0.1"] if running else [], "Online": running},
        "AuthKeySha256": state.get("AuthKeySha256"),
    }


def handle(req):
    cmd = req.get("cmd")
    if cmd == "status":
        return status()
    if cmd == "up":
        if state["BackendState"] != "Running" and not req.get("authKey"):
            return {"error": "no auth key given and this node is logged out"}
        if req.get("authKey"):
            state["AuthKeySha256"] = hashlib.sha256(req["authKey"].encode()).hexdigest()
        state["BackendState"] = "Running"
        if req.get("hostname"):
            state["HostName"] = req["hostname"]
    elif cmd == "set":
        if req.get("hostname"):
            state["HostName"] = req["hostname"]
    elif cmd == "down":
        state["BackendState"] = "Stopped"
    elif cmd == "logout":
        state.update({"BackendState": "NeedsLogin", "HostName": None, "AuthKeySha256": None})
    else:
        return {"error": "unknown command " + repr(cmd)}
    save()
    return status()


os.makedirs(os.path.dirname(sock_path), exist_ok=True)
if os.path.exists(sock_path):
    os.unlink(sock_path)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sock_path)
os.chmod(sock_path, 0o666)
server.listen(8)


def stop(*_):
    try:
        os.unlink(sock_path)
    finally:
        os._exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
notify = os.environ.get("NOTIFY_SOCKET")
if notify:
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.connect("\\0" + notify[1:] if notify.startswith("@") else notify)
    n.send(b"READY=1")
    n.close()
while True:
    conn, _ = server.accept()
    with conn:
        data = b""
        while not data.endswith(b"\\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        try:
            reply = handle(json.loads(data.decode() or "{}"))
        except ValueError:
            reply = {"error": "bad request"}
        conn.sendall((json.dumps(reply) + "\\n").encode())
`;
}

/**
 * The stand-in `tailscale` CLI (python3): `version`, `status [--json]`, `up [--auth-key=KEY|file:PATH]
 * [--hostname=H]`, `set --hostname=H`, `down`, `logout`, `ip` (the address of the node's `tailscale0`, which
 * the harness's stand-in tailnet provides), talking to the stand-in daemon's socket;
 * fails like the real CLI when tailscaled is not running.
 */
function tailscaleStandIn(version: string): string {
  return `#!/usr/bin/env python3
"""fleetkit test stand-in for the tailscale ${version} CLI; talks only to the stand-in tailscaled."""
import json
import socket
import sys

VERSION = "${version}"
argv = sys.argv[1:]
sock_path = "/run/tailscale/tailscaled.sock"
while argv and argv[0].startswith("--socket"):
    sock_path = argv[0].split("=", 1)[1] if "=" in argv[0] else argv.pop(1)
    argv.pop(0)
cmd = argv[0] if argv else "status"
flags = {}
for a in argv[1:]:
    if a.startswith("--"):
        k, _, v = a[2:].partition("=")
        flags[k] = v if _ else "true"


def call(req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock_path)
    except OSError:
        print("failed to connect to local tailscaled; it doesn't appear to be running", file=sys.stderr)
        sys.exit(1)
    s.sendall((json.dumps(req) + "\\n").encode())
    data = b""
    while not data.endswith(b"\\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    reply = json.loads(data.decode())
    if "error" in reply:
        print("tailscale: " + reply["error"], file=sys.stderr)
        sys.exit(1)
    return reply


if cmd in ("version", "--version"):
    print(VERSION)
elif cmd == "status":
    st = call({"cmd": "status"})
    if flags.get("json") == "true":
        print(json.dumps(st, indent=2))
    elif st["BackendState"] == "Running":
        print("100.64.0.1  %s  -  linux  -" % st["Self"]["HostName"])
    else:
        print("Logged out." if st["BackendState"] == "NeedsLogin" else "Tailscale is stopped.")
        sys.exit(1)
elif cmd in ("up", "login"):
    key = flags.get("auth-key") or flags.get("authkey") or ""
    if key.startswith("file:"):
        with open(key[5:]) as f:
            key = f.read().strip()
    call({"cmd": "up", "authKey": key, "hostname": flags.get("hostname")})
elif cmd == "set":
    call({"cmd": "set", "hostname": flags.get("hostname")})
elif cmd in ("down", "logout"):
    call({"cmd": cmd})
elif cmd == "ip":
    # The address of the node's tailscale0 when the harness gave it one (its stand-in tailnet), else a fixed one.
    import subprocess
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "tailscale0"], capture_output=True, text=True).stdout.split()
    print(out[3].split("/")[0] if len(out) > 3 else "100.64.0.1")
else:
    print("tailscale stand-in: unsupported command " + repr(cmd), file=sys.stderr)
    sys.exit(2)
`;
}

/** The systemd unit Tailscale ships in its static tarball, with Type=simple (the stand-in cannot sd_notify). */
const TAILSCALED_SERVICE = `[Unit]
Description=Tailscale node agent
Documentation=https://tailscale.com/kb/
Wants=network-pre.target
After=network-pre.target NetworkManager.service systemd-resolved.service

[Service]
EnvironmentFile=/etc/default/tailscaled
ExecStart=/usr/sbin/tailscaled --state=/var/lib/tailscale/tailscaled.state --socket=/run/tailscale/tailscaled.sock --port=\${PORT} $FLAGS
ExecStopPost=/usr/sbin/tailscaled --cleanup
Restart=on-failure
RuntimeDirectory=tailscale
RuntimeDirectoryMode=0755
StateDirectory=tailscale
StateDirectoryMode=0700
CacheDirectory=tailscale
CacheDirectoryMode=0750
Type=simple

[Install]
WantedBy=multi-user.target
`;

const TAILSCALED_DEFAULTS = `# Set the port to listen on for incoming VPN packets.
# Remote nodes will automatically be informed about the new port number,
# but you might want to configure this in order to set external firewall
# settings.
PORT="41641"

# Extra flags you might want to pass to tailscaled.
FLAGS=""
`;

/** The stand-in `agentapi`: `agentapi server [--port N] [...] -- CMD` serves GET /status (and /messages). */
function agentapiStandIn(version: string): string {
  return `#!/usr/bin/env python3
"""fleetkit test stand-in for AgentAPI ${version}: 'agentapi server --port N [...] -- CMD' answers GET /status."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "${version}"


def main(argv):
    if not argv or argv[0] in ("--version", "version"):
        print("agentapi version " + VERSION)
        return 0
    if argv[0] != "server":
        print("agentapi stand-in: unsupported command " + repr(argv[0]), file=sys.stderr)
        return 2
    args = argv[1:]
    agent = args[args.index("--") + 1:] if "--" in args else []
    opts = args[:args.index("--")] if "--" in args else args
    def opt(name, default):
        for i, a in enumerate(opts):
            if a == name and i + 1 < len(opts):
                return opts[i + 1]
            if a.startswith(name + "="):
                return a.split("=", 1)[1]
        return default

    port = int(opt("--port", "3284"))
    allowed_hosts = opt("--allowed-hosts", "localhost").split(",")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
            if "*" not in allowed_hosts and host not in allowed_hosts:
                self.send_error(403, "host not allowed: " + host)
                return
            if self.path == "/status":
                body = {"status": "stable", "agent": agent, "version": VERSION}
            elif self.path == "/messages":
                body = {"messages": []}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
    return 0


sys.exit(main(sys.argv[1:]))
`;
}

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

/**
 * Starts the server on `address` (host side of the nodes' network; `127.0.0.1` works for host-only use),
 * port chosen by the kernel, and publishes the default versions given. Stand-in files are built in a
 * temporary directory removed by `close()`. Rejects when the address cannot be bound or `tar` fails.
 */
export async function startArtifactServer(address: string): Promise<ArtifactServer> {
  const files = new Map<string, Buffer>();
  const requests: string[] = [];
  const work = mkdtempSync(join(tmpdir(), "fleetkit-artifacts-"));
  const app: FastifyInstance = Fastify({ logger: false });
  app.get("/*", async (req, reply) => {
    const path = decodeURIComponent(req.url.split("?")[0] ?? "");
    const body = files.get(path);
    requests.push(`GET ${path} ${body ? 200 : 404}`);
    if (!body) return reply.code(404).type("text/plain").send("not found\n");
    return reply.type("application/octet-stream").send(body);
  });
  await app.listen({ host: address, port: 0 });
  const addr = app.server.address();
  if (!addr || typeof addr === "string") throw new Error("artifact server has no TCP address");
  const baseUrl = `http://${address}:${addr.port}`;
  const platform = hostPlatform();

  const serve = (path: string, content: string | Buffer): ServedFile => {
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
    files.set(path, body);
    return { path, url: baseUrl + path, sha256: sha256(body), sizeBytes: body.length };
  };

  const published = new Map<string, FleetArtifact>();
  const publish = async (kind: ArtifactKind, version: string): Promise<FleetArtifact> => {
    const key = `${kind}@${version}`;
    const have = published.get(key);
    if (have) return have;
    let file: ServedFile;
    let url: string;
    if (kind === "tailscale") {
      const dirName = `tailscale_${version}_${platform.goarch}`;
      const dir = join(work, key, dirName);
      mkdirSync(join(dir, "systemd"), { recursive: true });
      writeFileSync(join(dir, "tailscale"), tailscaleStandIn(version));
      writeFileSync(join(dir, "tailscaled"), tailscaledStandIn(version));
      chmodSync(join(dir, "tailscale"), 0o755);
      chmodSync(join(dir, "tailscaled"), 0o755);
      writeFileSync(join(dir, "systemd", "tailscaled.service"), TAILSCALED_SERVICE);
      writeFileSync(join(dir, "systemd", "tailscaled.defaults"), TAILSCALED_DEFAULTS);
      const tgz = join(work, key, `${dirName}.tgz`);
      await run("tar", ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C", join(work, key), "-cf", tgz.replace(/\.tgz$/, ".tar"), dirName]);
      await run("gzip", ["-n", "-9", "-f", tgz.replace(/\.tgz$/, ".tar")]);
      file = serve(`/tailscale/${dirName}.tgz`, readFileSync(tgz.replace(/\.tgz$/, ".tar.gz")));
      url = `${baseUrl}/tailscale/tailscale_{version}_{goarch}.tgz`;
    } else {
      file = serve(`/agentapi/${version}/agentapi-linux-${platform.goarch}`, agentapiStandIn(version));
      url = `${baseUrl}/agentapi/{version}/agentapi-{os}-{goarch}`;
    }
    const artifact: FleetArtifact = { version, url, sha256: { [platform.key]: file.sha256 }, file };
    published.set(key, artifact);
    return artifact;
  };

  return {
    baseUrl,
    publish,
    serve,
    requests,
    close: async () => {
      await app.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
