/**
 * The test nodes' only way out: a proxy on the host side of their network for the package registries and
 * nothing else. Nodes have no default route, so everything they fetch from outside goes through here:
 *
 * - apt: an HTTP forward proxy (`Acquire::http::Proxy`): `GET`/`HEAD` with absolute URIs to the allowed hosts
 *   (the machine's Debian mirrors), or `CONNECT host:443` to them; any other host gets 403;
 * - npm: a pass-through mirror of https://registry.npmjs.org at this server's root (`registry=` in the node's
 *   /etc/npmrc; npm's default `replace-registry-host` rewrites tarball URLs to it). The TLS connection to
 *   npm is made from the test process, with this machine's trust store, so nodes need no CA of their own.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";

/** The registry the npm mirror passes through to. */
export const NPM_REGISTRY = "https://registry.npmjs.org";

/** A running proxy. */
export interface RegistryProxy {
  /** `http://<address>:<port>`: apt's proxy URL and npm's registry URL as nodes use them. */
  url: string;
  /** Requests refused, as `METHOD target` (for test diagnostics). */
  refused: string[];
  /** Requests passed upstream, count. */
  passed(): number;
  close(): Promise<void>;
}

/**
 * Starts the proxy on `address` (a host-side address only the test nodes reach), port chosen by the kernel.
 * `allowedHosts` are the exact host names apt may reach (e.g. `deb.debian.org`); the npm mirror is always on.
 * Rejects when the address cannot be bound.
 */
export async function startRegistryProxy(address: string, allowedHosts: string[]): Promise<RegistryProxy> {
  const allowed = new Set(allowedHosts.map((h) => h.toLowerCase()));
  const refused: string[] = [];
  let passed = 0;
  const server: Server = createServer((req, res) => {
    if ((req.url ?? "").startsWith("/")) {
      npmMirror(req, res);
      return;
    }
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
  /** Origin-form requests are npm's: passed to the real registry over HTTPS, GET/HEAD only. */
  const npmMirror = (req: IncomingMessage, res: ServerResponse) => {
    if (!["GET", "HEAD"].includes(req.method ?? "")) {
      refused.push(`${req.method} ${req.url}`);
      res.writeHead(405).end("fleetkit test npm mirror: read-only\n");
      return;
    }
    passed++;
    const headers: Record<string, string | string[] | undefined> = { ...req.headers, host: new URL(NPM_REGISTRY).host };
    delete headers["proxy-connection"];
    delete headers.connection;
    const upstream = httpsRequest(NPM_REGISTRY + req.url, { method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.setTimeout(120_000, () => upstream.destroy(new Error("upstream timeout")));
    upstream.on("error", (e) => {
      if (!res.headersSent) res.writeHead(502).end(`upstream error: ${e.message}\n`);
      else res.destroy();
    });
    upstream.end();
  };
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
