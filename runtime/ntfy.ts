/**
 * Publishing task notifications to the fleet's ntfy server (docs.ntfy.sh "Publishing": POST the message to
 * `<url>/<topic>` with `Title`, `Priority`, `Tags`, `Click` headers and `Authorization: Bearer <tk_…>`).
 * Never throws: ntfy being down or slow must not fail or lose a task.
 */
import type { Task } from "./api.js";
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

/** Longest notification body sent, in characters (ntfy keeps 4,096 bytes; longer text becomes an attachment). */
const MAX_MESSAGE_CHARS = 1000;
const clip = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

/**
 * A task's notes as notification text, oldest first: `alice (2025-01-02 10:00Z): text` per note, each cut to
 * 300 characters; "" when it has none.
 */
export function notesText(t: Pick<Task, "notes">): string {
  return t.notes.map((n) => `${n.author} (${n.at.slice(0, 16).replace("T", " ")}Z): ${clip(n.text, 300)}`).join("\n");
}

/**
 * The low-priority (2) notification of an interactive claim, as the Discord queue's "Task #5 claimed by
 * MacBook-Claude": title `Task #<id> claimed by <session>` (with the token's name when the session has
 * another label), the prompt as the message, a click link to the task's page under `base` (the queue's
 * public URL).
 */
export function claimNotification(t: Task, base: string): Notification {
  const who = t.worker && t.worker !== t.claimedBy ? `${t.worker} (${t.claimedBy})` : `${t.claimedBy}`;
  return {
    title: `Task #${t.id} claimed by ${who}`,
    message: clip(t.prompt, MAX_MESSAGE_CHARS),
    priority: 2,
    tags: ["raising_hand", ...(t.node ? [`node-${t.node}`] : [])],
    click: `${base}/tasks/${t.id}`,
  };
}

/**
 * The notification of an interactive claim's end: `Task #<id> completed by <claimant>` (priority 3) or
 * failed/cancelled (4); the message is the task's notes ({@link notesText}), else its result or error.
 */
export function finishNotification(t: Task, base: string): Notification {
  const ok = t.state === "completed";
  const text = notesText(t) || ((ok ? t.result : t.error) ?? "") || `(no notes)`;
  return {
    title: `Task #${t.id} ${t.state} by ${t.claimedBy}`,
    message: clip(text, MAX_MESSAGE_CHARS),
    priority: ok ? 3 : 4,
    tags: [ok ? "white_check_mark" : t.state === "cancelled" ? "no_entry_sign" : "x", ...(t.node ? [`node-${t.node}`] : [])],
    click: `${base}/tasks/${t.id}`,
  };
}
