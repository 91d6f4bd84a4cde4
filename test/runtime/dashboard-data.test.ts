/**
 * The dashboard's data on a real SQLite store: `Store.activity` (tasks submitted and finished per minute,
 * spend per node per hour) through real submit, claim and complete calls at chosen times, and `chartData`
 * turning it into uPlot's buckets (every minute and hour of the day present); the tag filter of `list`;
 * where sign-in may send a person back to (never another origin).
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CompleteBodySchema, SubmitBodySchema } from "../../runtime/schemas.js";
import { chartData, nextPage, submitBodyOf } from "../../runtime/dashboard.js";
import { Store } from "../../runtime/store.js";
import { tempDir } from "./harness.js";

const NOW = Date.UTC(2026, 11, 7, 12, 0, 30); // 12:00:30 UTC
const MIN = 60_000;
const HOUR = 3_600_000;

/** A store with tasks submitted, run and finished at fixed times (ms before NOW). */
function storeWith(runs: Array<{ node: string; at: number; outcome: "completed" | "failed" | "cancelled" | null; cost?: number; tags?: Record<string, string> }>): Store {
  const store = new Store(join(tempDir("fleet-dash-data-"), "q.db"), (target) => [target]);
  for (const r of runs) {
    const t = store.submit(SubmitBodySchema.parse({ target: r.node, prompt: "x", tags: r.tags ?? {} }), "ann", [r.node], NOW - r.at);
    if (r.outcome === null) continue;
    const claim = store.claim(r.node, `${r.node}/w/0`, 60_000, NOW - r.at)!;
    expect(claim.task.id).toBe(t.id);
    store.complete(t.id, r.node, CompleteBodySchema.parse({ leaseId: claim.leaseId, outcome: r.outcome, costUsd: r.cost ?? null }), NOW - r.at + 5_000);
  }
  return store;
}

describe("dashboard charts' data", () => {
  const store = storeWith([
    { node: "rpi1", at: 30 * HOUR, outcome: "completed", cost: 9 }, // older than 24 h: not shown
    { node: "rpi1", at: 2 * HOUR + 10 * MIN, outcome: "completed", cost: 0.25 },
    { node: "rpi1", at: 2 * HOUR + 10 * MIN, outcome: "failed", cost: 0.5 },
    { node: "imac", at: 90 * MIN, outcome: "completed", cost: 1 },
    { node: "imac", at: 20 * MIN, outcome: "cancelled" },
    { node: "imac", at: 20_000, outcome: null, tags: { gpu: "gtx980" } }, // still pending
  ]);

  it("counts tasks per minute and spend per node per hour since a time", () => {
    const a = store.activity(NOW - 24 * HOUR);
    const m = (ms: number) => Math.floor((NOW - ms) / MIN) * MIN;
    expect(a.submitted).toEqual([
      { minute: m(2 * HOUR + 10 * MIN), n: 2 },
      { minute: m(90 * MIN), n: 1 },
      { minute: m(20 * MIN), n: 1 },
      { minute: m(20_000), n: 1 },
    ]);
    expect(a.finished).toEqual([
      { minute: m(2 * HOUR + 10 * MIN - 5_000), state: "completed", n: 1 },
      { minute: m(2 * HOUR + 10 * MIN - 5_000), state: "failed", n: 1 },
      { minute: m(90 * MIN - 5_000), state: "completed", n: 1 },
      { minute: m(20 * MIN - 5_000), state: "cancelled", n: 1 },
    ]);
    expect(a.spend).toEqual([
      { hour: Date.UTC(2026, 11, 7, 9), node: "rpi1", usd: 0.75 },
      { hour: Date.UTC(2026, 11, 7, 10), node: "imac", usd: 1 },
    ]);
  });

  it("turns it into uPlot's buckets: every minute and hour of the last 24 h, spend cumulative per node", () => {
    const d = chartData(store.activity(NOW - 24 * HOUR), ["imac", "rpi1", "rpi2"], NOW);
    expect(d.tasks.x.length).toBe(24 * 60 + 1);
    expect([d.tasks.x[0], d.tasks.x.at(-1)]).toEqual([Date.UTC(2026, 11, 6, 12, 0) / 1000, Date.UTC(2026, 11, 7, 12, 0) / 1000]);
    expect(d.tasks.series.map((s) => [s.label, s.values.reduce((x, y) => x + y, 0)])).toEqual([
      ["submitted", 5],
      ["completed", 2],
      ["failed", 1],
      ["cancelled", 1],
    ]);
    const at = (iso: string) => d.tasks.x.indexOf(Date.parse(iso) / 1000);
    expect(d.tasks.series[0]!.values[at("2026-12-07T09:50:00Z")]).toBe(2);
    expect(d.tasks.series[2]!.values[at("2026-12-07T09:50:00Z")]).toBe(1);
    expect(d.spend.x.length).toBe(25);
    expect(d.spend.series.map((s) => [s.label, s.values[8], s.values[21], s.values[22], s.values.at(-1)])).toEqual([
      ["imac", 0, 0, 1, 1],
      ["rpi1", 0, 0.75, 0.75, 0.75],
      ["rpi2", 0, 0, 0, 0],
    ]);
  });

  it.each([
    [["gpu", "gtx980"], 1],
    [["gpu", "GTX980"], 0],
    [["gpu", ""], 0],
    [["storage", "nvme"], 0],
    [['"gpu', "gtx980"], 0],
  ] as Array<[[string, string], number]>)("lists only the tasks requiring tag %j", (tag, n) => {
    expect(store.list({ tag }).length).toBe(n);
  });
});

describe("lease history", () => {
  it("records each lease taken and how it ended: expired, released, completed; removed with its task", () => {
    const s = storeWith([]);
    const t = s.submit(SubmitBodySchema.parse({ target: "rpi1", prompt: "x" }), "ann", ["rpi1"], NOW);
    s.claim("rpi1", "rpi1/w/0", 1_000, NOW);
    expect(s.expireLeases(NOW + 5_000).requeued.map((r) => r.id)).toEqual([t.id]);
    const second = s.claim("rpi1", "rpi1/w/1", 60_000, NOW + 6_000)!;
    expect(s.release(t.id, second.leaseId)?.state).toBe("pending");
    const third = s.claim("rpi1", "rpi1/w/0", 60_000, NOW + 7_000)!;
    s.complete(t.id, "rpi1", CompleteBodySchema.parse({ leaseId: third.leaseId, outcome: "completed" }), NOW + 8_000);
    const history = s.leaseHistory(t.id);
    expect(history.map((e) => `${e.event} ${e.node} ${e.worker}`)).toEqual([
      "leased rpi1 rpi1/w/0",
      "expired rpi1 rpi1/w/0",
      "leased rpi1 rpi1/w/1",
      "released rpi1 rpi1/w/1",
      "leased rpi1 rpi1/w/0",
      "completed rpi1 rpi1/w/0",
    ]);
    expect(history.every((e) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.at))).toBe(true);
    expect(s.leaseHistory(999)).toEqual([]);
    expect(s.purge(NOW + 9_000)).toBe(1);
    expect(s.leaseHistory(t.id)).toEqual([]);
  });
});

describe("after sign-in, back to the page that asked (never elsewhere)", () => {
  it.each([
    ["/tasks/5", "/tasks/5"],
    ["/tasks?state=pending&tag=gpu%3Dgtx980", "/tasks?state=pending&tag=gpu%3Dgtx980"],
    ["/agents/rpi1", "/agents/rpi1"],
    ["//evil.example/x", null],
    ["/\\evil.example", null],
    ["/a\\b", null],
    ["https://evil.example/", null],
    ["javascript:alert(1)", null],
    ["tasks/5", null],
    ["/tasks/5\nSet-Cookie: x=1", null],
    ["/tasks/ 5", null],
    ["/login", null],
    ["/login?next=//evil.example", null],
    ["/" + "a".repeat(600), null],
    ["", null],
    [undefined, null],
    [["/tasks/1", "/tasks/2"], null],
  ] as Array<[unknown, string | null]>)("%j → %j", (raw, want) => {
    expect(nextPage(raw)).toBe(want);
  });
});

describe("the submit form's body (submitBodyOf)", () => {
  it.each([
    [{ target: "any", prompt: "hi" }, { target: "any", prompt: "hi" }],
    [{ target: "rpi1", prompt: "hi", tags: " gpu=gtx980  os=debian ", priority: "high", model: "", timeoutSeconds: "90" }, { target: "rpi1", prompt: "hi", tags: { gpu: "gtx980", os: "debian" }, priority: "high", timeoutSeconds: 90 }],
    [{ target: "any", prompt: "", github: " acme/widgets#12 " }, { target: "any", prompt: "Resolve GitHub issue acme/widgets#12.", github: { owner: "acme", repo: "widgets", issue: 12 } }],
    [{ target: "any", prompt: "Keep it small.", github: "acme/widgets#12" }, { target: "any", prompt: "Keep it small.", github: { owner: "acme", repo: "widgets", issue: 12 } }],
    [{ target: "any", prompt: "x", timeoutSeconds: "soon" }, { target: "any", prompt: "x", timeoutSeconds: "soon" }],
  ])("%j → %j", (form, body) => {
    expect(submitBodyOf(form)).toEqual(body);
  });

  it.each([
    [{ tags: "gpu" }, 'field "tags": expected name=value pairs separated by spaces, got "gpu"'],
    [{ github: "acme/widgets" }, 'field "github": expected <owner>/<repo>#<issue number>, e.g. acme/widgets#12, got "acme/widgets"'],
    [{ github: "-acme/widgets#1" }, 'field "github": "-acme" is not a GitHub owner: 1-39 letters, digits or single hyphens, not at either end'],
    [{ github: "acme/widgets#0" }, 'field "github": expected <owner>/<repo>#<issue number>, e.g. acme/widgets#12, got "acme/widgets#0"'],
  ])("%j → 400 %s", (form, message) => {
    expect(() => submitBodyOf({ target: "any", prompt: "x", ...form })).toThrow(message);
  });
});
