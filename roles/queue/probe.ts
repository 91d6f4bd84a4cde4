/**
 * What `fleet status` asks the queue node about its queue server: `GET /healthz` on loopback (the server
 * listens on all addresses, and the node firewall always admits loopback; runtime/server.ts answers
 * `{"ok":true}` without a token). 200 is healthy; `000` means no answer.
 */
import { sh } from "../bundle.js";
import type { RoleProbe } from "../types.js";

/** The queue role's probe: record `queue HTTPCODE`. */
export const probe: RoleProbe<number> = {
  script: (fleet) => [
    sh`fk_q=$(curl -s -m 3 -o /dev/null -w '%{http_code}' ${`http://127.0.0.1:${fleet.services.queue.port}/healthz`} 2>/dev/null) || true`,
    "echo \"queue\t${fk_q:-000}\"",
  ],
  parse: (f) => (f.length === 1 && /^\d{3}$/.test(f[0]) ? Number(f[0]) : undefined),
  judge: (code) => (code !== undefined && code !== 200 ? [code === 0 ? "GET /healthz: no answer" : `GET /healthz answered ${code}`] : []),
};
