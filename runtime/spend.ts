/**
 * A running estimate of what a Claude Code run has spent, from the usage it streams, so the worker can stop a
 * run that crosses its budget cap instead of trusting Claude to honour `--max-budget-usd` (a run reached
 * $6.18 of $5.00).
 *
 * What Claude Code reports (code.claude.com/docs/en/agent-sdk/cost-tracking; `claude -p --output-format
 * stream-json --verbose` prints the same messages as JSON lines): one `assistant` message per content block,
 * each carrying the API's `message.id`, `message.model` and `message.usage` (`input_tokens`, `output_tokens`,
 * `cache_creation_input_tokens` with the `cache_creation.ephemeral_5m_input_tokens` /
 * `ephemeral_1h_input_tokens` split, `cache_read_input_tokens`, `server_tool_use.web_search_requests`);
 * messages with the same id share one usage and are charged once. Only the final `result` message carries
 * `total_cost_usd`, Claude's own estimate from its bundled price table; there is no running cost field.
 *
 * Prices: USD per million tokens from Anthropic's pricing page (platform.claude.com/docs/en/about-claude/pricing,
 * "Model pricing": base input, 5-minute and 1-hour cache writes, cache hits, output) and $10 per 1,000 web
 * searches ("Web search tool"). A model the table does not know is priced at the table's most expensive row,
 * so an unknown model stops early rather than late. Not modelled: long-context surcharges and batch or
 * regional multipliers, so for those the estimate is low; Claude's own `total_cost_usd` is what the worker
 * reports when the run gets to print it.
 */

/** USD per million tokens of one model. */
export interface ModelPrice {
  input: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
  output: number;
}

const OPUS_4_0: ModelPrice = { input: 15, cacheWrite5m: 18.75, cacheWrite1h: 30, cacheRead: 1.5, output: 75 };
const OPUS_4_5: ModelPrice = { input: 5, cacheWrite5m: 6.25, cacheWrite1h: 10, cacheRead: 0.5, output: 25 };
const SONNET: ModelPrice = { input: 3, cacheWrite5m: 3.75, cacheWrite1h: 6, cacheRead: 0.3, output: 15 };
const HAIKU_4_5: ModelPrice = { input: 1, cacheWrite5m: 1.25, cacheWrite1h: 2, cacheRead: 0.1, output: 5 };
const HAIKU_3_5: ModelPrice = { input: 0.8, cacheWrite5m: 1, cacheWrite1h: 1.6, cacheRead: 0.08, output: 4 };
const HAIKU_3: ModelPrice = { input: 0.25, cacheWrite5m: 0.3, cacheWrite1h: 0.5, cacheRead: 0.03, output: 1.25 };

/** The price table, keyed `<family> <major>.<minor>` (see {@link modelKey}). */
export const PRICES: ReadonlyMap<string, ModelPrice> = new Map([
  ["opus 3.0", OPUS_4_0],
  ["opus 4.0", OPUS_4_0],
  ["opus 4.1", OPUS_4_0],
  ["opus 4.5", OPUS_4_5],
  ["opus 4.6", OPUS_4_5],
  ["opus 4.7", OPUS_4_5],
  ["opus 4.8", OPUS_4_5],
  ["opus 5.0", OPUS_4_5],
  ["sonnet 3.7", SONNET],
  ["sonnet 4.0", SONNET],
  ["sonnet 4.5", SONNET],
  ["sonnet 4.6", SONNET],
  ["haiku 3.0", HAIKU_3],
  ["haiku 3.5", HAIKU_3_5],
  ["haiku 4.5", HAIKU_4_5],
]);

/** The price used for a model the table does not know: its most expensive row. */
export const UNKNOWN_MODEL_PRICE: ModelPrice = OPUS_4_0;

/** USD per web search request ($10 per 1,000). */
export const WEB_SEARCH_USD = 0.01;

/**
 * `<family> <major>.<minor>` of an API model id: `claude-sonnet-4-5-20250929` → `sonnet 4.5`,
 * `claude-opus-4-20250514` → `opus 4.0`, `claude-3-5-haiku-20241022` → `haiku 3.5`, also inside provider ids
 * such as `us.anthropic.claude-sonnet-4-5-20250929-v1:0`. Null when the id names no Claude family.
 */
export function modelKey(model: string): string | null {
  const m = /claude-(opus|sonnet|haiku)-(\d+)(?:-(\d{1,2})(?!\d))?/.exec(model);
  if (m) return `${m[1]} ${m[2]}.${m[3] ?? 0}`;
  const old = /claude-(\d+)(?:-(\d))?-(opus|sonnet|haiku)/.exec(model);
  if (old) return `${old[3]} ${old[1]}.${old[2] ?? 0}`;
  return null;
}

/** The price of `model` (an API model id), or {@link UNKNOWN_MODEL_PRICE}. */
export function priceOf(model: string): ModelPrice {
  const key = modelKey(model);
  return (key && PRICES.get(key)) || UNKNOWN_MODEL_PRICE;
}

/** The usage object of one API response (the fields the estimate reads; all counts of tokens). */
export interface Usage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation?: { ephemeral_5m_input_tokens?: number; ephemeral_1h_input_tokens?: number };
  server_tool_use?: { web_search_requests?: number };
}

const n = (x: unknown) => (typeof x === "number" && Number.isFinite(x) && x > 0 ? x : 0);

/**
 * USD of one response's usage at `price`. Cache writes without the 5m/1h split are priced at the 1-hour rate
 * (the higher one).
 */
export function usageUsd(usage: Usage, price: ModelPrice): number {
  const split = usage.cache_creation;
  const write5m = n(split?.ephemeral_5m_input_tokens);
  const write1h = split ? n(split.ephemeral_1h_input_tokens) : n(usage.cache_creation_input_tokens);
  const perMTok =
    n(usage.input_tokens) * price.input + write5m * price.cacheWrite5m + write1h * price.cacheWrite1h + n(usage.cache_read_input_tokens) * price.cacheRead + n(usage.output_tokens) * price.output;
  return perMTok / 1e6 + n(usage.server_tool_use?.web_search_requests) * WEB_SEARCH_USD;
}

/**
 * Sums the spend of one run from its stream-json lines: each API response (message id) counted once, with
 * the latest usage seen for it.
 */
export class SpendMeter {
  private readonly byMessage = new Map<string, number>();
  private total = 0;

  /** Feeds one parsed stream-json message; returns true when it changed the estimate. */
  add(message: unknown): boolean {
    const m = message as { type?: unknown; message?: { id?: unknown; model?: unknown; usage?: unknown } } | null;
    if (!m || m.type !== "assistant" || !m.message || typeof m.message.usage !== "object" || m.message.usage === null) return false;
    const id = typeof m.message.id === "string" ? m.message.id : `#${this.byMessage.size}`;
    const usd = usageUsd(m.message.usage as Usage, priceOf(typeof m.message.model === "string" ? m.message.model : ""));
    const before = this.byMessage.get(id) ?? 0;
    if (usd === before) return false;
    this.byMessage.set(id, usd);
    this.total += usd - before;
    return true;
  }

  /** The estimate so far in USD, rounded to a millionth of a dollar. */
  get usd(): number {
    return Math.round(this.total * 1e6) / 1e6;
  }
}
