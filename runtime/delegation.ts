/**
 * Delegation from inside a task: how much of its parent's budget a child task may have. A task's run holds a
 * task token (runtime/auth.ts) with which it submits children; each child's budget comes out of what is left
 * of the parent's, so a tree of tasks spends no more than its root was given.
 *
 * What is left = the parent's budget (its `budgetUsd`: the cap its run was given at lease)
 *   − what its run has spent so far (its worker's estimate, sent with each heartbeat; 0 before the first)
 *   − for each child not yet final, the budget it holds; for each final child, what it cost.
 * Cents are rounded down. The parent's own run keeps the `--max-budget-usd` it started with: the queue cannot
 * narrow a cap a running Claude already has, so the parent's later spend is not taken back from children
 * already given a budget.
 */
import { FINAL_STATES } from "./api.js";
import type { ChildTask } from "./store.js";

/** Smallest budget a child may get, in USD (one cent: `--max-budget-usd` takes two decimals). */
export const MIN_CHILD_BUDGET_USD = 0.01;

/**
 * The budget of a new child of task `parent` in USD, or null when the parent has no cap (then neither has
 * the child, unless it asks for one). Pure.
 * @param parent.budgetUsd the parent's cap (USD), null for none; parent.spentUsd its run's spend so far, null when not reported
 * @param children the parent's children so far (store.ts `children`)
 * @param requestedUsd the budget the child asks for (`budgetUsd` of the submit), if any
 * @returns `{ budgetUsd }`, or `{ refused }`: one line saying why (nothing left, or less than asked)
 */
export function childBudget(
  parentId: number,
  parent: { budgetUsd: number | null; spentUsd: number | null },
  children: readonly ChildTask[],
  requestedUsd: number | undefined,
): { budgetUsd: number | null } | { refused: string } {
  if (parent.budgetUsd === null) return { budgetUsd: requestedUsd ?? null };
  const spent = parent.spentUsd ?? 0;
  const given = children.reduce((sum, c) => sum + (FINAL_STATES.includes(c.state) ? (c.costUsd ?? 0) : (c.budgetUsd ?? 0)), 0);
  // Rounded to cents first, so 0.1 + 0.2 of floating point cannot take a cent away.
  const left = Math.floor(Math.round((parent.budgetUsd - spent - given) * 1e6) / 1e4) / 100;
  const account = `budget $${parent.budgetUsd.toFixed(2)}, spent so far ~$${spent.toFixed(2)}, held or spent by ${children.length} child task(s) $${given.toFixed(2)}`;
  if (left < MIN_CHILD_BUDGET_USD) return { refused: `task ${parentId} has no budget left for a child task (${account})` };
  if (requestedUsd !== undefined && requestedUsd > left) {
    return { refused: `field "budgetUsd": task ${parentId} has $${left.toFixed(2)} left for a child task, not $${requestedUsd.toFixed(2)} (${account})` };
  }
  return { budgetUsd: requestedUsd ?? left };
}
