/**
 * The spend cap enforced by the worker, not only by Claude: the price table and the running estimate from
 * stream-json usage (runtime/spend.ts), then a real worker stopping a stand-in run that keeps spending past
 * its cap, and counting what it spent.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { modelKey, priceOf, SpendMeter, UNKNOWN_MODEL_PRICE, usageUsd, type Usage } from "../../runtime/spend.js";
import { api, startServer, startWorker, stopAll, tempDir, tokenOf, waitUntil, writeTokens } from "./harness.js";

afterAll(stopAll);

describe("price table", () => {
  it.each([
    ["claude-sonnet-4-5-20250929", "sonnet 4.5", 3, 15],
    ["claude-sonnet-4-20250514", "sonnet 4.0", 3, 15],
    ["claude-opus-4-20250514", "opus 4.0", 15, 75],
    ["claude-opus-4-1-20250805", "opus 4.1", 15, 75],
    ["claude-opus-4-5-20251101", "opus 4.5", 5, 25],
    ["claude-haiku-4-5-20251001", "haiku 4.5", 1, 5],
    ["claude-3-5-haiku-20241022", "haiku 3.5", 0.8, 4],
    ["claude-3-7-sonnet-20250219", "sonnet 3.7", 3, 15],
    ["us.anthropic.claude-sonnet-4-5-20250929-v1:0", "sonnet 4.5", 3, 15],
    ["claude-opus-5-5", "opus 5.5", 15, 75],
    ["gpt-4o", null, 15, 75],
  ])("%s → %s, $%s / $%s per million input / output tokens", (model, key, input, output) => {
    expect(modelKey(model)).toBe(key);
    expect([priceOf(model).input, priceOf(model).output]).toEqual([input, output]);
  });

  it("a model the table does not know costs its most expensive row", () => {
    expect(priceOf("claude-mystery-9")).toBe(UNKNOWN_MODEL_PRICE);
    expect(UNKNOWN_MODEL_PRICE).toEqual({ input: 15, cacheWrite5m: 18.75, cacheWrite1h: 30, cacheRead: 1.5, output: 75 });
  });

  it.each<[string, Usage, number]>([
    ["input and output", { input_tokens: 1_000_000, output_tokens: 1_000_000 }, 18],
    ["cache writes split 5m / 1h", { cache_creation_input_tokens: 3_000_000, cache_creation: { ephemeral_5m_input_tokens: 1_000_000, ephemeral_1h_input_tokens: 2_000_000 } }, 15.75],
    ["cache writes without the split, at the 1-hour rate", { cache_creation_input_tokens: 1_000_000 }, 6],
    ["cache reads", { cache_read_input_tokens: 10_000_000 }, 3],
    ["web searches at $10 per 1,000", { output_tokens: 0, server_tool_use: { web_search_requests: 3 } }, 0.03],
    ["nonsense counts are no tokens", { input_tokens: -5, output_tokens: Number.NaN } as Usage, 0],
  ])("Sonnet usage: %s → $%s", (_what, usage, usd) => {
    expect(usageUsd(usage, priceOf("claude-sonnet-4-5"))).toBeCloseTo(usd, 10);
  });

  it("the meter counts each response once (its content blocks repeat id and usage) and keeps its latest usage", () => {
    const msg = (id: string, output: number) => ({ type: "assistant", message: { id, model: "claude-sonnet-4-5-20250929", usage: { output_tokens: output } } });
    const m = new SpendMeter();
    expect([m.add(msg("a", 20_000)), m.add(msg("a", 20_000)), m.add(msg("b", 20_000)), m.usd]).toEqual([true, false, true, 0.6]);
    expect([m.add(msg("b", 40_000)), m.usd]).toEqual([true, 0.9]);
    expect([m.add({ type: "user" }), m.add({ type: "result", total_cost_usd: 9 }), m.add(null), m.usd]).toEqual([false, false, false, 0.9]);
  });
});

describe("a run that keeps spending past its cap", () => {
  it("is stopped by the worker, reported failed with what it spent, and the spend counts against the node", async () => {
    const dir = tempDir();
    const argv = join(dir, "argv");
    const server = await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { capped: { budgetUsdPerSession: 1 } }), leaseSeconds: 3, claimWaitSeconds: 2 });
    mkdirSync(argv);
    startWorker({ url: server.url, dir, node: "capped", env: { FAKE_CLAUDE_ARGV_DIR: argv } });
    // Four responses of $0.30 each, then the stand-in works on for 60 s: the fourth crosses the $1.00 cap.
    const r = await api(server.url, "POST", "/v1/tasks", { token: tokenOf("capped"), body: { target: "capped", prompt: "Refactor everything FAKE:spend=4" } });
    const t = await waitUntil("the capped task to finish", async () => {
      const x = (await api(server.url, "GET", `/v1/tasks/${r.body.id}`, { token: tokenOf("capped") })).body;
      return x.finishedAt ? x : null;
    }, 30);
    expect({ state: t.state, error: t.error, costUsd: t.costUsd }).toEqual({ state: "failed", error: "stopped at budget cap $1.00 (spent ~$1.20)", costUsd: 1.2 });
    // The stand-in (its own process group) is gone, well before its 60 s.
    const [pid] = readdirSync(argv).map(Number);
    expect(readFileSync(join(argv, String(pid)), "utf8")).toContain("--max-budget-usd\u00001.00\u0000");
    expect(() => process.kill(-pid!, 0)).toThrow(/ESRCH/);
    const me = (await api(server.url, "GET", "/v1/nodes/me", { token: tokenOf("capped") })).body;
    expect(me.spentTodayUsd).toBe(1.2);
  });
});
