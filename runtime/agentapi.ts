/**
 * A small client of one AgentAPI server (coder/agentapi), shared by the worker's `agentapi` executor and the
 * dashboard's agent panel. Endpoints and shapes from coder/agentapi's openapi.json: `GET /status`
 * (`{"status":"stable"|"running"}`), `GET /messages` (`{"messages":[{id, role: "agent"|"user", content,
 * time}]}`), `POST /message` (`{"content", "type":"user"|"raw"}` → `{"ok": boolean}`; a `user` message while
 * the agent is `running` is refused with a problem document, HTTP 4xx).
 *
 * Every answer is checked against its documented shape: anything else (an HTML page, other JSON, an unknown
 * status) throws at once, naming the endpoint, so a wrong service on AgentAPI's port is never taken for an
 * agent.
 */
import { z } from "zod";

/** `GET /status`. */
export const AgentApiStatusSchema = z.object({ status: z.enum(["stable", "running"]) });
/** One message of `GET /messages`; `time` is RFC 3339 (absent in older releases). */
export const AgentApiMessageSchema = z.object({ id: z.number(), role: z.enum(["agent", "user"]), content: z.string(), time: z.string().optional() });
/** `GET /messages`. */
export const AgentApiMessagesSchema = z.object({ messages: z.array(AgentApiMessageSchema) });
/** `POST /message`. */
export const AgentApiSentSchema = z.object({ ok: z.boolean() });

/** An agent's status: `stable` (waiting for a message) or `running` (working on one). */
export type AgentStatus = z.infer<typeof AgentApiStatusSchema>["status"];
/** One message of an agent's conversation. */
export type AgentMessage = z.infer<typeof AgentApiMessageSchema>;

/** An AgentAPI call that failed; `status` is the HTTP status AgentAPI answered, or null for no answer or a wrong shape. */
export class AgentApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = "AgentApiError";
  }
}

const tail = (s: string, n: number) => (s.length > n ? "…" + s.slice(-n) : s);

/** The one-line reason of a problem document (`{"title", "detail"}`, AgentAPI's error shape), else the text's tail. */
function problemText(text: string): string {
  try {
    const p = JSON.parse(text) as { detail?: unknown; title?: unknown };
    if (typeof p.detail === "string" && p.detail) return p.detail;
    if (typeof p.title === "string" && p.title) return p.title;
  } catch {
    // not JSON: the text itself
  }
  return tail(text.replace(/\s+/g, " ").trim(), 300);
}

/** Calls one AgentAPI server. */
export class AgentApiClient {
  private readonly base: string;

  /**
   * @param baseUrl e.g. `http://127.0.0.1:3284` (a trailing `/` is dropped)
   * @param timeoutSeconds per call (default 30)
   */
  constructor(
    baseUrl: string,
    private readonly timeoutSeconds = 30,
  ) {
    this.base = baseUrl.replace(/\/+$/, "");
  }

  /**
   * One call, its answer checked against `schema`.
   * @throws AgentApiError for no answer (status null), an HTTP error (its status and AgentAPI's detail), or
   *   an answer that is not JSON of the documented shape (status null).
   */
  private async call<T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutSeconds * 1000),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === "TimeoutError" ? `no answer within ${this.timeoutSeconds} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new AgentApiError(`AgentAPI ${method} ${path}: ${why}`, null);
    }
    const text = await res.text();
    if (!res.ok) throw new AgentApiError(`AgentAPI ${method} ${path}: HTTP ${res.status} ${problemText(text)}`, res.status);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AgentApiError(`AgentAPI ${method} ${path} answered something that is not JSON: ${JSON.stringify(tail(text, 100))}`, null);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new AgentApiError(`AgentAPI ${method} ${path} answered JSON that is not its documented shape (${issue.path.join(".") || "answer"}: ${issue.message}): ${tail(text, 100)}`, null);
    }
    return parsed.data;
  }

  /** `GET /status`. @throws AgentApiError */
  async status(): Promise<AgentStatus> {
    return (await this.call("GET", "/status", AgentApiStatusSchema)).status;
  }

  /** `GET /messages`, oldest first. @throws AgentApiError */
  async messages(): Promise<AgentMessage[]> {
    return (await this.call("GET", "/messages", AgentApiMessagesSchema)).messages;
  }

  /**
   * `POST /message`: `user` is a message to the agent (refused while it is `running`); `raw` is keystrokes
   * (`"\u001b"`, Escape, interrupts Claude).
   * @throws AgentApiError; also when AgentAPI answers `{"ok": false}`.
   */
  async send(content: string, type: "user" | "raw"): Promise<void> {
    const sent = await this.call("POST", "/message", AgentApiSentSchema, { content, type });
    if (!sent.ok) throw new AgentApiError("AgentAPI did not accept the message (ok: false)", null);
  }
}
