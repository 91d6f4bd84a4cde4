/**
 * Publishing task notifications to the fleet's ntfy server (docs.ntfy.sh "Publishing": POST the message to
 * `<url>/<topic>` with `Title`, `Priority`, `Tags`, `Click` headers and `Authorization: Bearer <tk_…>`).
 * Never throws: ntfy being down or slow must not fail or lose a task.
 */
import type { NtfySettings } from "./config.js";

/** One notification. `priority` is ntfy's 1 (min) … 5 (max); `tags` are emoji short codes or words. */
export interface Notification {
  title: string;
  message: string;
  priority: 1 | 2 | 3 | 4 | 5;
  tags: string[];
  click?: string;
}

/**
 * Publishes a notification; resolves `{ ok: false, error }` instead of throwing when ntfy is unreachable,
 * answers non-2xx, or takes longer than `timeoutSeconds` (default 5).
 */
export async function publish(ntfy: NtfySettings, n: Notification, timeoutSeconds = 5): Promise<{ ok: true } | { ok: false; error: string }> {
  const headers: Record<string, string> = {
    // HTTP headers are Latin-1; ntfy documents RFC 2047 for others, so keep titles ASCII-safe.
    Title: n.title.replace(/[^\x20-\x7e]/g, "?"),
    Priority: String(n.priority),
    Tags: n.tags.join(","),
  };
  if (n.click) headers.Click = n.click;
  if (ntfy.token) headers.Authorization = `Bearer ${ntfy.token}`;
  try {
    const res = await fetch(`${ntfy.url.replace(/\/+$/, "")}/${ntfy.topic}`, { method: "POST", headers, body: n.message, signal: AbortSignal.timeout(timeoutSeconds * 1000) });
    await res.arrayBuffer();
    return res.ok ? { ok: true } : { ok: false, error: `ntfy answered HTTP ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    return { ok: false, error: `ntfy unreachable: ${e.cause?.code ?? e.cause?.message ?? `${e.name}: ${e.message}`}` };
  }
}
