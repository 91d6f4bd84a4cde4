/**
 * The scope checks of task tokens (runtime/auth.ts) and a child's share of its parent's budget
 * (runtime/delegation.ts), table-driven over the pure functions the queue server calls; and how `fleet task
 * show` draws a task's parent and children (cli/task.ts).
 */
import { describe, expect, it } from "vitest";
import { formatTree, type TreeNode } from "../../cli/task.js";
import type { Task } from "../../runtime/api.js";
import { ANY, CHANGE, maySee, READ_TASK, routeRefusal, seeRefusal, SUBMIT, taskPrincipal, WORKER, type Principal } from "../../runtime/auth.js";
import { childBudget } from "../../runtime/delegation.js";
import type { ChildTask } from "../../runtime/store.js";

const task12: Principal = { kind: "task", name: "alpha", taskId: 12 };
const alpha: Principal = { kind: "node", name: "alpha" };
const viewer: Principal = { kind: "person", name: "vic", scope: "viewer" };
const operator: Principal = { kind: "person", name: "ops", scope: "operator" };
const MAY = "a task's token may only submit child tasks (POST /v1/tasks) and read or wait for its own task and its children";

describe("routeRefusal: which scopes a route lets through", () => {
  it.each([
    [task12, "POST /v1/tasks", SUBMIT, null],
    [task12, "GET /v1/tasks/:id", READ_TASK, null],
    [task12, "GET /v1/tasks/:id/wait", READ_TASK, null],
    [task12, "GET /v1/tasks", ANY, `GET /v1/tasks: ${MAY}; this is task 12's token (on node alpha)`],
    [task12, "GET /v1/stats", ANY, `GET /v1/stats: ${MAY}; this is task 12's token (on node alpha)`],
    [task12, "POST /v1/tasks/:id/cancel", CHANGE, `POST /v1/tasks/:id/cancel: ${MAY}; this is task 12's token (on node alpha)`],
    [task12, "POST /v1/claim", WORKER, `POST /v1/claim: ${MAY}; this is task 12's token (on node alpha)`],
    [alpha, "POST /v1/tasks", SUBMIT, null],
    [alpha, "GET /v1/tasks", ANY, null],
    [viewer, "GET /v1/tasks/:id", READ_TASK, null],
    [viewer, "POST /v1/tasks", SUBMIT, "POST /v1/tasks needs a node or operator token; this is viewer vic's token"],
    [operator, "POST /v1/claim", WORKER, "POST /v1/claim needs a node token; this is operator ops's token (it is a worker's call)"],
    [alpha, "POST /v1/purge", ["operator"] as const, "POST /v1/purge needs an operator token; this is node alpha's token"],
  ] as const)("%o calling %s: %s", (p, route, allowed, refusal) => {
    expect(routeRefusal(p, route, allowed)).toBe(refusal);
  });
});

describe("maySee: which tasks a token reads", () => {
  const t = (id: number, parent: number | null, o: Partial<Pick<Task, "submittedBy" | "target" | "node">> = {}) => ({ id, parent, submittedBy: "ops", target: "beta", node: "beta", ...o });
  it.each([
    ["a task token, its own task", task12, t(12, null), true],
    ["a task token, its child", task12, t(13, 12), true],
    ["a task token, a grandchild", task12, t(14, 13), false],
    ["a task token, its parent", task12, t(11, null), false],
    ["a task token, a sibling (same parent)", task12, t(15, 11), false],
    ["a task token, an unrelated task on its own node", task12, t(16, null, { target: "alpha", node: "alpha", submittedBy: "alpha" }), false],
    ["a node, a task it submitted", alpha, t(17, null, { submittedBy: "alpha" }), true],
    ["a node, a task targeting it", alpha, t(18, null, { target: "alpha", node: null }), true],
    ["a node, another node's task", alpha, t(19, null), false],
    ["a viewer, any task", viewer, t(20, 3), true],
  ] as const)("%s: %s", (_what, p, task, seen) => {
    expect(maySee(p, task)).toBe(seen);
  });

  it.each([
    [task12, 19, `task 19 is not task 12 or one of its children: ${MAY}`],
    [alpha, 19, "task 19 is not node alpha's: a node token reads and changes only the tasks its node submitted, runs or that target it"],
  ] as const)("seeRefusal(%o, %i)", (p, id, line) => {
    expect(seeRefusal(p, id)).toBe(line);
  });
});

describe("taskPrincipal: a task token is good only while its lease lasts", () => {
  const running = { id: 12, state: "running", node: "alpha" } as Task;
  it.each([
    ["live", { taskId: 12, task: running, live: true }, { kind: "task", name: "alpha", taskId: 12 }],
    ["unknown", undefined, undefined],
  ] as const)("%s", (_what, record, principal) => {
    expect(taskPrincipal(record)).toEqual(principal);
  });
  it.each([
    ["completed", { taskId: 12, task: { ...running, state: "completed" } as Task, live: false }, "task 12's token expired with its lease (the task is completed); a task token works only while its task runs"],
    ["failed", { taskId: 12, task: { ...running, state: "failed" } as Task, live: false }, "task 12's token expired with its lease (the task is failed); a task token works only while its task runs"],
    ["expired or released", { taskId: 12, task: { ...running, state: "pending" } as Task, live: false }, "task 12's token expired with its lease (the task is pending); a task token works only while its task runs"],
    ["leased again", { taskId: 12, task: running, live: false }, "task 12's token expired with its lease (its lease ended and the task was leased again); a task token works only while its task runs"],
    ["purged", { taskId: 12, task: null, live: false }, "task 12's token expired with its lease (the task was purged); a task token works only while its task runs"],
  ] as const)("401 once %s", (_what, record, message) => {
    expect(() => taskPrincipal(record)).toThrow(expect.objectContaining({ statusCode: 401, message }));
  });
});

describe("childBudget: a child's share of what is left of its parent's budget", () => {
  const child = (state: ChildTask["state"], budgetUsd: number | null, costUsd: number | null = null): ChildTask => ({ id: 0, state, budgetUsd, costUsd });
  it.each([
    ["no cap on the parent, none asked", { budgetUsd: null, spentUsd: null }, [], undefined, { budgetUsd: null }],
    ["no cap on the parent, one asked", { budgetUsd: null, spentUsd: 3 }, [], 2.5, { budgetUsd: 2.5 }],
    ["the whole budget to a first child", { budgetUsd: 1, spentUsd: null }, [], undefined, { budgetUsd: 1 }],
    ["the parent's spend so far is left out", { budgetUsd: 1, spentUsd: 0.25 }, [], undefined, { budgetUsd: 0.75 }],
    ["a live child holds its budget", { budgetUsd: 1, spentUsd: 0 }, [child("running", 0.6)], undefined, { budgetUsd: 0.4 }],
    ["a pending child holds its budget", { budgetUsd: 1, spentUsd: 0 }, [child("pending", 0.3)], 0.7, { budgetUsd: 0.7 }],
    ["a final child counts what it cost", { budgetUsd: 1, spentUsd: 0 }, [child("completed", 0.6, 0.1), child("failed", 0.2, null)], undefined, { budgetUsd: 0.9 }],
    ["0.1 + 0.2 leaves 0.70, not 0.69", { budgetUsd: 1, spentUsd: 0 }, [child("pending", 0.1), child("pending", 0.2)], undefined, { budgetUsd: 0.7 }],
    ["cents round down", { budgetUsd: 1, spentUsd: 0.3333 }, [], undefined, { budgetUsd: 0.66 }],
    ["asked for exactly what is left", { budgetUsd: 1, spentUsd: 0.5 }, [], 0.5, { budgetUsd: 0.5 }],
    [
      "asked for more than is left",
      { budgetUsd: 1, spentUsd: 0.25 },
      [child("running", 0.6)],
      0.2,
      { refused: 'field "budgetUsd": task 7 has $0.15 left for a child task, not $0.20 (budget $1.00, spent so far ~$0.25, held or spent by 1 child task(s) $0.60)' },
    ],
    ["nothing left", { budgetUsd: 1, spentUsd: 0 }, [child("pending", 1)], undefined, { refused: "task 7 has no budget left for a child task (budget $1.00, spent so far ~$0.00, held or spent by 1 child task(s) $1.00)" }],
    ["less than a cent left", { budgetUsd: 1, spentUsd: 0.995 }, [], undefined, { refused: "task 7 has no budget left for a child task (budget $1.00, spent so far ~$0.99, held or spent by 0 child task(s) $0.00)" }],
    ["overspent", { budgetUsd: 1, spentUsd: 1.4 }, [], 0.01, { refused: "task 7 has no budget left for a child task (budget $1.00, spent so far ~$1.40, held or spent by 0 child task(s) $0.00)" }],
  ] as const)("%s", (_what, parent, children, requested, answer) => {
    expect(childBudget(7, parent, children as readonly ChildTask[], requested)).toEqual(answer);
  });
});

describe("formatTree: `fleet task show`'s parent and children", () => {
  const n = (id: number, state: Task["state"] | null) => ({ id, state }) as TreeNode;
  it.each([
    ["neither parent nor children", null, [], []],
    ["children only", null, [n(5, "completed"), n(6, null)], ["  tree       #4 running (this task)", "             ├ #5 completed", "             └ #6 ?"]],
    ["a parent only", n(3, "running"), [], ["  tree       #3 running (parent)", "             └ #4 running (this task)"]],
    ["a parent and a child", n(3, null), [n(5, "pending")], ["  tree       #3 ? (parent)", "             └ #4 running (this task)", "               └ #5 pending"]],
    ["more children than shown", null, [n(5, "failed"), n(6, "cancelled"), n(7, "pending")], ["  tree       #4 running (this task)", "             ├ #5 failed", "             ├ #6 cancelled", "             └ … 1 more"]],
  ] as const)("%s", (_what, parent, children, lines) => {
    expect(formatTree({ id: 4, state: "running" }, parent, [...children], 2)).toEqual(lines);
  });
});
