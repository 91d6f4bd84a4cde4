/**
 * What the queue server knows about each node besides its tasks: when its worker was last seen and what it
 * said (idle, busy, over-budget), how many claims it has open, and what its tasks spent today (UTC) against
 * its budget cap. Presence lives in memory and is persisted on change or every 15 s per node; spend is read
 * from the store once per node and day, then kept up to date as tasks complete.
 */
import type { NodePresence } from "./api.js";
import type { TokensFile } from "./config.js";
import type { Store } from "./store.js";

/** Start of the current UTC day in epoch ms (daily budgets reset at 00:00 UTC). */
export function utcDayStart(nowMs: number): number {
  const d = new Date(nowMs);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}

/** Presence and spend of the tokens file's nodes. */
export class Presence {
  private readonly seenAt = new Map<string, { lastSeen: number; status: string | null; message: string | null; persisted: number }>();
  /** Long-polling claims per node (a node with one open counts as online). */
  readonly openClaims = new Map<string, number>();
  private spendDay = utcDayStart(Date.now());
  private readonly spend = new Map<string, number>();

  /**
   * @param nodes the tokens file's nodes, by name
   * @param presenceMs how long after it was last seen a node still counts as online (milliseconds)
   */
  constructor(
    private readonly store: Store,
    private readonly nodes: Map<string, TokensFile["nodes"][string]>,
    private readonly presenceMs: number,
  ) {
    for (const n of store.nodes()) if (n.lastSeen !== null) this.seenAt.set(n.name, { lastSeen: n.lastSeen, status: n.status, message: n.message, persisted: n.lastSeen });
  }

  /** Records that `node`'s worker called now, with its status and message when it gave one. */
  seen(node: string, status: string | null = null, message: string | null = null): void {
    const now = Date.now();
    const p = this.seenAt.get(node);
    const changed = status !== null && (p?.status !== status || p?.message !== message);
    const next = { lastSeen: now, status: status ?? p?.status ?? null, message: status !== null ? message : (p?.message ?? null), persisted: p?.persisted ?? 0 };
    if (changed || now - next.persisted > 15_000) {
      this.store.touchNode(node, now, next.status, next.message);
      next.persisted = now;
    }
    this.seenAt.set(node, next);
  }

  /** USD spent today (UTC) by `node`'s tasks. */
  spentToday(node: string): number {
    const day = utcDayStart(Date.now());
    if (day !== this.spendDay) {
      this.spendDay = day;
      this.spend.clear();
    }
    let s = this.spend.get(node);
    if (s === undefined) this.spend.set(node, (s = this.store.spentSince(node, day)));
    return s;
  }

  /** Adds a completed task's cost to `node`'s cached day total (an uncached total is read from the store, which already has it). */
  addSpend(node: string, costUsd: number): void {
    const cached = this.spend.get(node);
    if (cached !== undefined && utcDayStart(Date.now()) === this.spendDay) this.spend.set(node, cached + costUsd);
  }

  /** The node's spend and cap (USD) when it reached its daily cap, else null (no cap, or under it). */
  overBudget(node: string): { spent: number; cap: number } | null {
    const cap = this.nodes.get(node)?.budgetUsdPerSession ?? null;
    if (cap === null) return null;
    const spent = this.spentToday(node);
    return spent >= cap ? { spent, cap } : null;
  }

  /** Every node's presence, in tokens-file order (`GET /v1/nodes`). */
  all(): NodePresence[] {
    const now = Date.now();
    return [...this.nodes.keys()].map((n) => {
      const p = this.seenAt.get(n);
      const node = this.nodes.get(n)!;
      const over = this.overBudget(n);
      return {
        node: n,
        os: node.os,
        arch: node.arch,
        online: (this.openClaims.get(n) ?? 0) > 0 || (p !== undefined && now - p.lastSeen < this.presenceMs),
        lastSeen: p ? new Date(p.lastSeen).toISOString() : null,
        status: over ? "over-budget" : (p?.status ?? null),
        message: over ? `spent $${over.spent.toFixed(2)} of $${over.cap.toFixed(2)} today (UTC)` : (p?.message ?? null),
        budgetUsdPerSession: node.budgetUsdPerSession ?? null,
        spentTodayUsd: this.spentToday(n),
        profile: node.profile ?? null,
        tags: node.tags,
        roles: node.roles,
      };
    });
  }
}
