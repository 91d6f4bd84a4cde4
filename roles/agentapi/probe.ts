/**
 * What `fleet status` asks a node about AgentAPI: `GET /status` on its port from the node itself (AgentAPI's
 * OpenAPI: `{ "status": "stable" | "running" }`); 200 is healthy, `000` means no answer.
 */
import { sh } from "../bundle.js";
import type { RoleProbe } from "../types.js";

/** AgentAPI's answer: HTTP code (0 = no answer) and its `status` field. */
export interface AgentapiFact {
  httpCode: number;
  status: string | null;
}

/** The agentapi role's probe: record `agentapi HTTPCODE STATUS`. */
export const probe: RoleProbe<AgentapiFact> = {
  script: (fleet) => {
    const url = `http://127.0.0.1:${fleet.services.agentapi.port}/status`;
    return [
      sh`fk_body=$(curl -s -m 3 -w '\\n%{http_code}' ${url} 2>/dev/null) || true`,
      "fk_code=$(printf '%s\\n' \"$fk_body\" | tail -n1)",
      "fk_st=$(printf '%s\\n' \"$fk_body\" | sed -n 's/.*\"status\"[[:space:]]*:[[:space:]]*\"\\([a-z]*\\)\".*/\\1/p' | head -n1)",
      "echo \"agentapi\t${fk_code:-000}\t${fk_st:--}\"",
    ];
  },
  parse: (f) => (f.length === 2 && /^\d{3}$/.test(f[0]) ? { httpCode: Number(f[0]), status: f[1] === "-" || f[1] === "" ? null : f[1] } : undefined),
  judge: (fact) => (fact && fact.httpCode !== 200 ? [fact.httpCode === 0 ? "GET /status: no answer" : `GET /status answered ${fact.httpCode}`] : []),
};
