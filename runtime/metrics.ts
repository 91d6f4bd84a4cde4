/** The queue server's Prometheus metrics (`GET /metrics`, prom-client): counters it bumps and gauges read on scrape. */
import { Counter, Gauge, Registry } from "prom-client";
import { TASK_STATES } from "./api.js";
import { utcDayStart, type Presence } from "./presence.js";
import type { Store } from "./store.js";

/** The registry and the counters routes increment. */
export interface QueueMetrics {
  registry: Registry;
  /** Tasks accepted by POST /v1/tasks. */
  submitted: Counter;
  /** Leases granted, by node. */
  claims: Counter<"node">;
  /** Leases that expired. */
  expiries: Counter;
}

/** Creates the metrics: fleet_tasks (by state), fleet_node_online and fleet_spend_today_usd are read from `store` and `presence` on each scrape. */
export function queueMetrics(store: Store, presence: Presence, nodeNames: readonly string[]): QueueMetrics {
  const registry = new Registry();
  const submitted = new Counter({ name: "fleet_tasks_submitted_total", help: "Tasks accepted by POST /v1/tasks.", registers: [registry] });
  const claims = new Counter({ name: "fleet_claims_total", help: "Leases granted.", labelNames: ["node"], registers: [registry] });
  const expiries = new Counter({ name: "fleet_lease_expiries_total", help: "Leases that expired (task re-queued or failed).", registers: [registry] });
  new Gauge({
    name: "fleet_tasks",
    help: "Tasks by state.",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const s = store.stats(utcDayStart(Date.now()));
      for (const st of TASK_STATES) this.set({ state: st }, s.byState[st]);
    },
  });
  new Gauge({
    name: "fleet_node_online",
    help: "1 when the node's worker was seen recently or is long-polling.",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      for (const p of presence.all()) this.set({ node: p.node }, p.online ? 1 : 0);
    },
  });
  new Gauge({
    name: "fleet_spend_today_usd",
    help: "USD spent today (UTC) by the node's tasks.",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      for (const n of nodeNames) this.set({ node: n }, presence.spentToday(n));
    },
  });
  return { registry, submitted, claims, expiries };
}
