/**
 * The test nodes' only way out: an HTTP forward proxy on the host side of their network, passing requests
 * to the package registry hosts it is given (Debian's, npm's) and refusing everything else with 403. Nodes have no default route,
 * so apt (configured with `Acquire::http::Proxy`) reaches Debian through this and nothing else reaches
 * anything outside. Plain `GET`/`HEAD` with absolute URIs (apt's http method) and `CONNECT host:443` (https
 * sources) are supported.
 */
import { createServer, request as httpRequest, type Server } from "node:http";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";

/** A running proxy. */
export interface AptProxy {
  /** `http://<address>:<port>` as nodes use it. */
  url: string;
  /** Requests refused, as `METHOD target` (for test diagnostics). */
  refused: string[];
  /** Requests passed upstream, count. */
  passed(): number;
  close(): Promise<void>;
}

/**
 * Starts the proxy on `address` (a host-side address only the test nodes reach), port chosen by the kernel.
 * `allowedHosts` are exact host names (e.g. `deb.debian.org`). Rejects when the address cannot be bound.
 */
export async function startAptProxy(address: string, allowedHosts: string[]): Promise<AptProxy> {
  const allowed = new Set(allowedHosts.map((h) => h.toLowerCase()));
  const refused: string[] = [];
  let passed = 0;
  const server: Server = createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      res.writeHead(400).end("absolute URI required\n");
      return;
    }
    if (target.protocol !== "http:" || !allowed.has(target.hostname.toLowerCase()) || !["GET", "HEAD"].includes(req.method ?? "")) {
      refused.push(`${req.method} ${req.url}`);
      res.writeHead(403).end("fleetkit test proxy: only the Debian package registry is reachable\n");
      return;
    }
    passed++;
    const headers = { ...req.headers };
    delete headers["proxy-connection"];
    const upstream = httpRequest(target, { method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.setTimeout(60_000, () => upstream.destroy(new Error("upstream timeout")));
    upstream.on("error", (e) => {
      if (!res.headersSent) res.writeHead(502).end(`upstream error: ${e.message}\n`);
      else res.destroy();
    });
    req.pipe(upstream);
  });
  server.on("connect", (req, socket, head) => {
    const [host, port] = (req.url ?? "").split(":");
    if (!host || port !== "443" || !allowed.has(host.toLowerCase())) {
      refused.push(`CONNECT ${req.url}`);
      socket.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    passed++;
    const up = connect(443, host, () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.setTimeout(60_000, () => up.destroy());
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, address, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}`,
    refused,
    passed: () => passed,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
