/**
 * What `fleet status` asks a node about iceccd: how many TCP connections it holds to the scheduler port
 * (iceccd keeps one open while registered; icecream iceccd(1)). `ss` on Linux, `netstat` on macOS.
 */
import { ICECC_SCHEDULER_PORT } from "../reach.js";
import type { RoleProbe } from "../types.js";

/** The iceccd role's probe: record `icecc CONNECTIONS`. */
export const probe: RoleProbe<number> = {
  record: "icecc",
  script: () => [
    "if command -v ss >/dev/null 2>&1; then",
    `  fk_ic=$(ss -Htn state established '( dport = :${ICECC_SCHEDULER_PORT} )' 2>/dev/null | wc -l | tr -d ' ')`,
    "else",
    `  fk_ic=$(netstat -an -p tcp 2>/dev/null | grep -c '[.:]${ICECC_SCHEDULER_PORT}[[:space:]].*ESTABLISHED')`,
    "fi",
    "echo \"icecc\t$fk_ic\"",
  ],
  parse: (f) => (f.length === 1 && /^\d+$/.test(f[0]) ? Number(f[0]) : undefined),
  judge: (connections) => (connections === 0 ? ["not connected to the icecc scheduler"] : []),
};
