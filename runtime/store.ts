/**
 * The queue's store: every SQL statement of the worker runtime lives in this module, so a PostgreSQL store
 * can follow by implementing the same class shape. SQLite through better-sqlite3 in WAL mode; each public
 * method is one transaction, or a savepoint inside a group commit ({@link Store.grouped}: the server's
 * submits and reports that arrive together share one commit). Times are epoch milliseconds inside, ISO
 * strings in {@link Task}.
 *
 * Pending tasks are indexed per node in the `ready` table (node, priority, task id): a claim is one indexed
 * lookup whatever the queue length, and FIFO within a priority falls out of the task id order.
 */
import Database from "better-sqlite3";
import { randomUUID } from "node:crypto";
import { FINAL_STATES, MAX_NOTES, PRIORITIES, type CompleteBody, type GitHubIssue, type Priority, type SubmitBody, type Task, type TaskNote, type TaskState, type TASK_STATES } from "./api.js";

/** Returns the nodes that may run a task with this target and required tags (the server's fleet view). */
export type EligibleNodes = (target: string, tags: Record<string, string>) => string[];

/** Options for {@link Store}. */
export interface StoreOptions {
  /**
   * SQLite `synchronous` in WAL mode. `normal` (default, SQLite's advice for WAL): a committed task survives a
   * crash or kill -9 of the queue process, but the last commits may be lost if the machine loses power.
   * `full`: every commit is fsynced (survives power loss) at several times the cost per write.
   */
  synchronous?: "full" | "normal";
}

/** Result of {@link Store.complete}. */
export type CompleteOutcome =
  | { kind: "ok"; task: Task }
  /** The task is (or was last) leased to another node: nothing changed. */
  | { kind: "forbidden"; task: Task }
  /** The same lease already reported (a retried request): nothing changed. */
  | { kind: "duplicate"; task: Task }
  /** The lease is gone (expired and re-queued, or another worker holds the task). */
  | { kind: "lost"; task: Task };

/** Result of {@link Store.claimTask} (an interactive session taking one task by id). */
export type TakeOutcome =
  | { kind: "ok"; task: Task; leaseId: string }
  /** The task is not pending (running, or final): nothing changed. */
  | { kind: "not-pending"; task: Task };

/** Result of {@link Store.finishClaimed}. */
export type FinishOutcome =
  | { kind: "ok"; task: Task }
  /** The task is not running under an interactive claim (pending, final, or run by a worker): nothing changed. */
  | { kind: "not-claimed"; task: Task };

/** Result of {@link Store.addNote}. */
export type NoteOutcome = { kind: "ok"; task: Task } | { kind: "full"; task: Task };

/** Filter for {@link Store.list}. */
export interface ListFilter {
  state?: TaskState;
  /** Tasks targeted at or run by this node. */
  node?: string;
  /** Only the tasks this node submitted, runs (or ran) or that target it (a node token's view). */
  visibleTo?: string;
  /** Only tasks that require this tag: `[name, value]` (a task's `tags`, exact match). */
  tag?: [string, string];
  /** Most recent first, at most this many (default 100, max 10,000). */
  limit?: number;
}

interface TaskRow {
  id: number;
  target: string;
  tags: string;
  prompt: string;
  priority: number;
  model: string;
  chosen_model: string | null;
  model_reason: string | null;
  cwd: string | null;
  repo: string | null;
  timeout_seconds: number;
  max_attempts: number;
  state: string;
  attempts: number;
  submitted_by: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  node: string | null;
  worker: string | null;
  lease_id: string | null;
  lease_expires_at: number | null;
  cancel_requested: number;
  claim_seq: number | null;
  result: string | null;
  error: string | null;
  exit_code: number | null;
  duration_seconds: number | null;
  cost_usd: number | null;
  notes: string;
  claimed_by: string | null;
  github: string | null;
  parent: number | null;
  budget_usd: number | null;
  spent_usd: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  target TEXT NOT NULL,
  tags TEXT NOT NULL,
  prompt TEXT NOT NULL,
  priority INTEGER NOT NULL,
  model TEXT NOT NULL,
  chosen_model TEXT,
  model_reason TEXT,
  cwd TEXT,
  repo TEXT,
  timeout_seconds REAL NOT NULL,
  max_attempts INTEGER NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  submitted_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  node TEXT,
  worker TEXT,
  lease_id TEXT,
  lease_expires_at INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  claim_seq INTEGER,
  result TEXT,
  error TEXT,
  exit_code INTEGER,
  duration_seconds REAL,
  cost_usd REAL
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state, id);
CREATE INDEX IF NOT EXISTS tasks_lease ON tasks(lease_expires_at) WHERE state = 'running';
-- Spend per node and day is kept in the spend table below (it replaced these indexes).
DROP INDEX IF EXISTS tasks_node_finished;
DROP INDEX IF EXISTS tasks_spend;
-- The dashboard's charts (Store.activity: tasks submitted and finished per minute over the last 24 h) and
-- purges (finished before a time).
CREATE INDEX IF NOT EXISTS tasks_created ON tasks(created_at);
CREATE INDEX IF NOT EXISTS tasks_finished ON tasks(finished_at, state) WHERE finished_at IS NOT NULL;
-- Columns added after the first release: a database made before them gets them at open (see MIGRATIONS).
CREATE TABLE IF NOT EXISTS ready (
  node TEXT NOT NULL,
  priority INTEGER NOT NULL,
  task_id INTEGER NOT NULL,
  PRIMARY KEY (node, priority, task_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ready_task ON ready(task_id);
-- Task counts by node (COALESCE(node, target), as stats report them) and state, kept by triggers in the same
-- transaction as every insert and state change, so stats read a few rows instead of the whole table. A purge
-- deletes tasks without counting them down: the counts stay those of every task the queue has had.
CREATE TABLE IF NOT EXISTS counts (
  node TEXT NOT NULL,
  state TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (node, state)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS counts_insert AFTER INSERT ON tasks BEGIN
  INSERT INTO counts (node, state, n) VALUES (COALESCE(NEW.node, NEW.target), NEW.state, 1)
    ON CONFLICT (node, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS counts_update AFTER UPDATE OF state, node ON tasks
  WHEN OLD.state IS NOT NEW.state OR COALESCE(OLD.node, OLD.target) IS NOT COALESCE(NEW.node, NEW.target) BEGIN
  UPDATE counts SET n = n - 1 WHERE node = COALESCE(OLD.node, OLD.target) AND state = OLD.state;
  INSERT INTO counts (node, state, n) VALUES (COALESCE(NEW.node, NEW.target), NEW.state, 1)
    ON CONFLICT (node, state) DO UPDATE SET n = n + 1;
END;
-- USD spent per node and UTC day (day = finished_at / 86,400,000), added when a finished task gets its cost.
CREATE TABLE IF NOT EXISTS spend (
  day INTEGER NOT NULL,
  node TEXT NOT NULL,
  usd REAL NOT NULL,
  PRIMARY KEY (day, node)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS spend_update AFTER UPDATE OF cost_usd ON tasks
  WHEN NEW.cost_usd IS NOT NULL AND OLD.cost_usd IS NULL AND NEW.node IS NOT NULL AND NEW.finished_at IS NOT NULL BEGIN
  INSERT INTO spend (day, node, usd) VALUES (NEW.finished_at / 86400000, NEW.node, NEW.cost_usd)
    ON CONFLICT (day, node) DO UPDATE SET usd = usd + NEW.cost_usd;
END;
-- Lease history (the dashboard's task page): a row when a lease is taken and when it ends, written by
-- triggers in the same transaction as the change (at = the server's clock, ms); removed with its task.
CREATE TABLE IF NOT EXISTS lease_events (
  id INTEGER PRIMARY KEY,
  task_id INTEGER NOT NULL,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  node TEXT,
  worker TEXT
);
CREATE INDEX IF NOT EXISTS lease_events_task ON lease_events(task_id, id);
CREATE TRIGGER IF NOT EXISTS lease_taken AFTER UPDATE OF lease_id ON tasks
  WHEN NEW.lease_id IS NOT NULL AND OLD.lease_id IS NOT NEW.lease_id BEGIN
  INSERT INTO lease_events (task_id, at, event, node, worker) VALUES (NEW.id, CAST(unixepoch('subsec') * 1000 AS INTEGER), 'leased', NEW.node, NEW.worker);
END;
CREATE TRIGGER IF NOT EXISTS lease_ended AFTER UPDATE OF state ON tasks
  WHEN OLD.state = 'running' AND NEW.state <> 'running' BEGIN
  INSERT INTO lease_events (task_id, at, event, node, worker) VALUES (NEW.id, CAST(unixepoch('subsec') * 1000 AS INTEGER),
    CASE WHEN NEW.state <> 'pending' THEN NEW.state WHEN NEW.attempts < OLD.attempts THEN 'released' ELSE 'expired' END, OLD.node, OLD.worker);
END;
CREATE TRIGGER IF NOT EXISTS lease_events_purge AFTER DELETE ON tasks BEGIN
  DELETE FROM lease_events WHERE task_id = OLD.id;
END;
-- Totals that outlive the rows they count (key "purged": tasks removed by purges).
CREATE TABLE IF NOT EXISTS totals (key TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
-- Task tokens (a task's own token for one lease, handed to its run): only the SHA-256 is kept. A token is good
-- while its task is running under that lease (checked on use), so it ends with the lease; rows go with the task.
CREATE TABLE IF NOT EXISTS task_tokens (
  token_sha256 TEXT PRIMARY KEY,
  task_id INTEGER NOT NULL,
  lease_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_tokens_task ON task_tokens(task_id);
CREATE TRIGGER IF NOT EXISTS task_tokens_purge AFTER DELETE ON tasks BEGIN
  DELETE FROM task_tokens WHERE task_id = OLD.id;
END;
CREATE TABLE IF NOT EXISTS github_deliveries (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes (
  name TEXT PRIMARY KEY,
  last_seen INTEGER,
  status TEXT,
  message TEXT
);
`;

/**
 * Columns added to `tasks` after the first release, added at open when missing (ALTER TABLE ADD COLUMN keeps
 * the rows): `notes` is a JSON array of {@link TaskNote} as stored (`at` in epoch ms), `claimed_by` the
 * token name of an interactive claim (null for a worker's), `github` the JSON {@link GitHubIssue} of a
 * `github-issue` task (null for a plain one), `parent` the id of the task whose token submitted it (null for
 * one submitted by a node or a person), `budget_usd` its budget cap in USD (null: none) and `spent_usd` what
 * its current run has spent so far by its worker's heartbeats (null: not reported). Indexes on new columns
 * follow in {@link MIGRATED_INDEXES}, once the columns exist.
 */
const MIGRATIONS: Array<[column: string, ddl: string]> = [
  ["notes", "ALTER TABLE tasks ADD COLUMN notes TEXT NOT NULL DEFAULT '[]'"],
  ["claimed_by", "ALTER TABLE tasks ADD COLUMN claimed_by TEXT"],
  ["github", "ALTER TABLE tasks ADD COLUMN github TEXT"],
  ["parent", "ALTER TABLE tasks ADD COLUMN parent INTEGER"],
  ["budget_usd", "ALTER TABLE tasks ADD COLUMN budget_usd REAL"],
  ["spent_usd", "ALTER TABLE tasks ADD COLUMN spent_usd REAL"],
];

/**
 * The key of a `github-issue` task's issue, `owner/repo#n` in lower case (GitHub ignores case in names), as an
 * SQL expression over the `github` column: the index `tasks_github_issue` is on exactly this text.
 */
const ISSUE_KEY = "(lower(json_extract(github, '$.owner') || '/' || json_extract(github, '$.repo')) || '#' || json_extract(github, '$.issue'))";

/** Indexes over {@link MIGRATIONS}' columns (a task's children, by parent). */
const MIGRATED_INDEXES = "CREATE INDEX IF NOT EXISTS tasks_parent ON tasks(parent, id) WHERE parent IS NOT NULL;";

/** A child task as its parent's budget sees it (see {@link Store.children}). */
export interface ChildTask {
  id: number;
  state: TaskState;
  /** Its budget cap in USD (what it holds of the parent's budget while it is not final), or null. */
  budgetUsd: number | null;
  /** What it cost once final, or null. */
  costUsd: number | null;
}

/** What a task token's SHA-256 stands for (see {@link Store.taskToken}). */
export interface TaskTokenRecord {
  taskId: number;
  /** The task as it is now, or null once purged. */
  task: Task | null;
  /** True while the task is running under the lease the token was minted for. */
  live: boolean;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function toTask(r: TaskRow): Task {
  return {
    id: r.id,
    target: r.target,
    tags: JSON.parse(r.tags) as Record<string, string>,
    prompt: r.prompt,
    priority: PRIORITIES[r.priority]!,
    model: r.model as Task["model"],
    chosenModel: r.chosen_model as Task["chosenModel"],
    modelReason: r.model_reason,
    cwd: r.cwd,
    repo: r.repo,
    github: r.github === null ? null : (JSON.parse(r.github) as GitHubIssue),
    timeoutSeconds: r.timeout_seconds,
    maxAttempts: r.max_attempts,
    state: r.state as TaskState,
    attempts: r.attempts,
    submittedBy: r.submitted_by,
    createdAt: iso(r.created_at)!,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    node: r.node,
    worker: r.worker,
    leaseExpiresAt: iso(r.lease_expires_at),
    cancelRequested: r.cancel_requested === 1,
    result: r.result,
    error: r.error,
    exitCode: r.exit_code,
    durationSeconds: r.duration_seconds,
    costUsd: r.cost_usd,
    claimedBy: r.claimed_by,
    notes: (JSON.parse(r.notes) as Array<{ author: string; at: number; text: string }>).map((n): TaskNote => ({ author: n.author, at: iso(n.at)!, text: n.text })),
    parent: r.parent,
    budgetUsd: r.budget_usd,
  };
}

/**
 * The SQLite task store. Not safe for two server processes on one file (one queue server per fleet);
 * better-sqlite3 is synchronous, so each method runs to completion on the event loop.
 */
export class Store {
  private readonly db: Database.Database;
  private claimSeq: number;
  private readonly st;
  /**
   * Runs a function as a transaction, or as a savepoint inside one (better-sqlite3's wrapper, made once: making
   * one per call costs several times the empty transaction).
   */
  private readonly atomic: <T>(fn: () => T) => T;

  /**
   * Opens (creating if needed) the database file and prepares statements.
   * @param file path of the SQLite file (`:memory:` works for unit use)
   * @param eligible the fleet view: which nodes may run a task (used to (re)build the ready index)
   */
  constructor(file: string, private readonly eligible: EligibleNodes, opts: StoreOptions = {}) {
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${opts.synchronous === "full" ? "FULL" : "NORMAL"}`);
    this.db.pragma("busy_timeout = 5000");
    // A database made before the counts and spend tables gets them filled from its tasks, once, as it opens.
    const had = new Set((this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name));
    this.db.exec("BEGIN IMMEDIATE");
    this.db.exec(SCHEMA);
    if (had.has("tasks") && !had.has("counts")) this.db.exec("INSERT INTO counts (node, state, n) SELECT COALESCE(node, target), state, COUNT(*) FROM tasks GROUP BY 1, 2");
    if (had.has("tasks") && !had.has("spend")) {
      this.db.exec("INSERT INTO spend (day, node, usd) SELECT finished_at / 86400000, node, SUM(cost_usd) FROM tasks WHERE cost_usd IS NOT NULL AND node IS NOT NULL AND finished_at IS NOT NULL GROUP BY 1, 2");
    }
    this.db.exec("COMMIT");
    const columns = new Set((this.db.prepare("SELECT name FROM pragma_table_info('tasks')").all() as Array<{ name: string }>).map((c) => c.name));
    for (const [column, ddl] of MIGRATIONS) if (!columns.has(column)) this.db.exec(ddl);
    // After the migrations (the column may be new): the GitHub queries below read this index, not the rows.
    this.db.exec(`CREATE INDEX IF NOT EXISTS tasks_github_issue ON tasks(${ISSUE_KEY}, id) WHERE github IS NOT NULL`);
    this.db.exec(MIGRATED_INDEXES);
    this.atomic = this.db.transaction((fn: () => unknown) => fn()) as <T>(fn: () => T) => T;
    this.claimSeq = (this.db.prepare("SELECT COALESCE(MAX(claim_seq), 0) AS m FROM tasks").get() as { m: number }).m;
    this.st = {
      insertTask: this.db.prepare(
        `INSERT INTO tasks (target, tags, prompt, priority, model, cwd, repo, github, timeout_seconds, max_attempts, state, submitted_by, created_at, parent, budget_usd)
         VALUES (@target, @tags, @prompt, @priority, @model, @cwd, @repo, @github, @timeout, @maxAttempts, 'pending', @submittedBy, @now, @parent, @budget) RETURNING *`,
      ),
      insertReady: this.db.prepare("INSERT OR IGNORE INTO ready (node, priority, task_id) VALUES (?, ?, ?)"),
      deleteReady: this.db.prepare("DELETE FROM ready WHERE task_id = ?"),
      get: this.db.prepare("SELECT * FROM tasks WHERE id = ?"),
      // The node's first ready task leaves the index (with its entries for other nodes, if it targets any).
      takeReady: this.db.prepare(
        "DELETE FROM ready WHERE task_id = (SELECT task_id FROM ready WHERE node = ? ORDER BY priority, task_id LIMIT 1) RETURNING task_id",
      ),
      lease: this.db.prepare(
        `UPDATE tasks SET state = 'running', attempts = attempts + 1, node = @node, worker = @worker, lease_id = @leaseId,
           lease_expires_at = @expires, started_at = @now, claim_seq = @seq, claimed_by = @claimedBy, spent_usd = NULL,
           budget_usd = CASE WHEN @cap IS NULL THEN budget_usd WHEN budget_usd IS NULL THEN @cap ELSE MIN(budget_usd, @cap) END
         WHERE id = @id AND state = 'pending' RETURNING *`,
      ),
      // The next task a node would be given (what claim takes), without taking it.
      peekReady: this.db.prepare(
        `SELECT t.* FROM ready r JOIN tasks t ON t.id = r.task_id AND t.state = 'pending' WHERE r.node = ? ORDER BY r.priority, r.task_id LIMIT 1`,
      ),
      // An interactive claim's end: the claimant's outcome (cancelled instead of failed when a cancel was requested).
      finishClaimed: this.db.prepare(
        `UPDATE tasks SET state = CASE WHEN cancel_requested = 1 AND @outcome <> 'completed' THEN 'cancelled' ELSE @outcome END,
           finished_at = @now, lease_expires_at = NULL, result = @result, error = @error,
           duration_seconds = MAX(0, @now - started_at) / 1000.0,
           notes = CASE WHEN @note IS NULL THEN notes ELSE json_insert(notes, '$[#]', json(@note)) END
         WHERE id = @id AND state = 'running' AND claimed_by IS NOT NULL RETURNING *`,
      ),
      addNote: this.db.prepare(
        `UPDATE tasks SET notes = json_insert(notes, '$[#]', json(@note)) WHERE id = @id AND json_array_length(notes) < @max RETURNING *`,
      ),
      renew: this.db.prepare("UPDATE tasks SET lease_expires_at = ?, spent_usd = COALESCE(?, spent_usd) WHERE id = ? AND state = 'running' AND lease_id = ?"),
      children: this.db.prepare("SELECT id, state, budget_usd AS budgetUsd, cost_usd AS costUsd FROM tasks WHERE parent = ? ORDER BY id"),
      spent: this.db.prepare("SELECT spent_usd FROM tasks WHERE id = ?"),
      insertTaskToken: this.db.prepare("INSERT INTO task_tokens (token_sha256, task_id, lease_id) VALUES (?, ?, ?)"),
      taskToken: this.db.prepare("SELECT task_id, lease_id FROM task_tokens WHERE token_sha256 = ?"),
      finish: this.db.prepare(
        `UPDATE tasks SET state = @state, finished_at = @now, lease_expires_at = NULL, result = @result, error = @error,
           exit_code = @exitCode, duration_seconds = @durationSeconds, cost_usd = @costUsd,
           chosen_model = COALESCE(@chosenModel, chosen_model), model_reason = COALESCE(@modelReason, model_reason)
         WHERE id = @id`,
      ),
      // A worker's report: only the current lease holder's running task changes.
      report: this.db.prepare(
        `UPDATE tasks SET state = CASE WHEN cancel_requested = 1 AND @outcome <> 'completed' THEN 'cancelled' ELSE @outcome END,
           finished_at = @now, lease_expires_at = NULL, result = @result, error = @error,
           exit_code = @exitCode, duration_seconds = @durationSeconds, cost_usd = @costUsd,
           chosen_model = COALESCE(@chosenModel, chosen_model), model_reason = COALESCE(@modelReason, model_reason)
         WHERE id = @id AND state = 'running' AND lease_id = @leaseId AND node = @node RETURNING *`,
      ),
      requeue: this.db.prepare(
        "UPDATE tasks SET state = 'pending', lease_id = NULL, lease_expires_at = NULL, claimed_by = NULL, error = ? WHERE id = ?",
      ),
      release: this.db.prepare(
        "UPDATE tasks SET state = 'pending', lease_id = NULL, lease_expires_at = NULL, claimed_by = NULL, attempts = attempts - 1 WHERE id = ?",
      ),
      expired: this.db.prepare("SELECT * FROM tasks WHERE state = 'running' AND lease_expires_at < ?"),
      cancelPending: this.db.prepare("UPDATE tasks SET state = 'cancelled', finished_at = ? WHERE id = ?"),
      requestCancel: this.db.prepare("UPDATE tasks SET cancel_requested = 1 WHERE id = ?"),
      setPriority: this.db.prepare("UPDATE tasks SET priority = ? WHERE id = ?"),
      setReadyPriority: this.db.prepare("UPDATE ready SET priority = ? WHERE task_id = ?"),
      leaseHistory: this.db.prepare("SELECT at, event, node, worker FROM lease_events WHERE task_id = ? ORDER BY id"),
      submittedPerMinute: this.db.prepare("SELECT created_at / 60000 * 60000 AS minute, COUNT(*) AS n FROM tasks WHERE created_at >= ? GROUP BY 1 ORDER BY 1"),
      finishedPerMinute: this.db.prepare(
        "SELECT finished_at / 60000 * 60000 AS minute, state, COUNT(*) AS n FROM tasks WHERE finished_at >= ? GROUP BY 1, 2 ORDER BY 1, 2",
      ),
      spendPerHour: this.db.prepare(
        "SELECT finished_at / 3600000 * 3600000 AS hour, node, SUM(cost_usd) AS usd FROM tasks WHERE finished_at >= ? AND node IS NOT NULL AND cost_usd IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
      ),
      spentFromDay: this.db.prepare("SELECT COALESCE(SUM(usd), 0) AS s FROM spend WHERE node = ? AND day >= ?"),
      counts: this.db.prepare("SELECT node, state, n FROM counts WHERE n <> 0"),
      spendByNodeFromDay: this.db.prepare("SELECT node, SUM(usd) AS s FROM spend WHERE day >= ? GROUP BY node"),
      purge: this.db.prepare("DELETE FROM tasks WHERE finished_at < ? AND state IN ('completed', 'failed', 'cancelled')"),
      addTotal: this.db.prepare("INSERT INTO totals (key, n) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET n = n + excluded.n"),
      total: this.db.prepare("SELECT n FROM totals WHERE key = ?"),
      touchNode: this.db.prepare(
        `INSERT INTO nodes (name, last_seen, status, message) VALUES (@name, @now, @status, @message)
         ON CONFLICT(name) DO UPDATE SET last_seen = @now, status = COALESCE(@status, status),
           message = CASE WHEN @status IS NULL THEN message ELSE @message END`,
      ),
      nodes: this.db.prepare("SELECT name, last_seen, status, message FROM nodes"),
      extendLeases: this.db.prepare("UPDATE tasks SET lease_expires_at = ? WHERE state = 'running' AND lease_expires_at < ?"),
      pendingIds: this.db.prepare("SELECT id, target, tags, priority FROM tasks WHERE state = 'pending'"),
      clearReady: this.db.prepare("DELETE FROM ready"),
    };
  }

  /** Commits the calls still waiting for a group commit, then closes the database (checkpointing the WAL). */
  close(): void {
    this.commitGroup();
    this.db.close();
  }

  /**
   * Rebuilds the ready index from the pending tasks and the current fleet view (call at start: the tokens
   * file may have changed which nodes match). Returns the number of pending tasks.
   */
  rebuildReady(): number {
    return this.atomic(() => {
      this.st.clearReady.run();
      const rows = this.st.pendingIds.all() as Array<{ id: number; target: string; tags: string; priority: number }>;
      for (const r of rows) for (const n of this.eligible(r.target, JSON.parse(r.tags))) this.st.insertReady.run(n, r.priority, r.id);
      return rows.length;
    });
  }

  /**
   * Gives every running lease that would expire before `untilMs` that much time (call at start, so workers
   * that outlived a server restart can heartbeat again before their tasks are re-queued). Returns the count.
   */
  extendRunningLeases(untilMs: number): number {
    return this.st.extendLeases.run(untilMs, untilMs).changes;
  }

  /**
   * Runs `fn` in the next group commit and resolves with its result once that commit is done, or rejects
   * with what `fn` threw. The calls made in one event-loop turn (e.g. the submits and reports that arrived
   * together) run one after another in one transaction, at the end of the turn (`setImmediate`): one WAL
   * write and one commit for all of them instead of one each. Each call runs in its own savepoint (store
   * methods called inside join it), so one that throws rolls back only its own changes. Nothing resolves
   * before the commit, so an answer sent after it is durable; if the commit fails, every call rejects.
   */
  grouped<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.group.length === 0) setImmediate(() => this.commitGroup());
      this.group.push({ fn, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  private group: Array<{ fn: () => unknown; resolve: (v: unknown) => void; reject: (err: unknown) => void }> = [];

  /** Runs the queued {@link grouped} calls in one transaction, then settles their promises. */
  private commitGroup(): void {
    const calls = this.group;
    this.group = [];
    if (calls.length === 0) return;
    let outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }>;
    try {
      outcomes = this.atomic(() =>
        calls.map((c) => {
          try {
            return { ok: true as const, value: this.atomic(c.fn) };
          } catch (err) {
            return { ok: false as const, err };
          }
        }),
      );
    } catch (err) {
      for (const c of calls) c.reject(err);
      return;
    }
    outcomes.forEach((o, i) => (o.ok ? calls[i]!.resolve(o.value) : calls[i]!.reject(o.err)));
  }

  /**
   * Stores a new pending task and indexes it for the given nodes. Returns the task.
   * @param nodes the nodes that may run it (non-empty; the server rejects a task no node can run)
   * @param family.parent the task whose token submitted it; family.budgetUsd its budget cap in USD when the
   *   caller decided it (a child's share), else the body's `budgetUsd`
   */
  submit(body: SubmitBody, submittedBy: string, nodes: string[], now: number, family: { parent?: number; budgetUsd?: number | null } = {}): Task {
    return this.atomic(() => {
      const priority = PRIORITIES.indexOf(body.priority);
      const row = this.st.insertTask.get({
        target: body.target,
        tags: JSON.stringify(body.tags),
        prompt: body.prompt,
        priority,
        model: body.model,
        cwd: body.cwd ?? null,
        repo: body.repo ?? null,
        github: body.github ? JSON.stringify(body.github) : null,
        timeout: body.timeoutSeconds,
        maxAttempts: body.maxAttempts,
        submittedBy,
        now,
        parent: family.parent ?? null,
        budget: family.budgetUsd ?? body.budgetUsd ?? null,
      }) as TaskRow;
      for (const n of nodes) this.st.insertReady.run(n, priority, row.id);
      return toTask(row);
    });
  }

  /**
   * Leases the first ready task for `node` (highest priority, then oldest), or returns null.
   * @param leaseMs lease length in milliseconds from `now`
   * @param capUsd the node's budget left today (USD), or null for none: the task's `budgetUsd` becomes the
   *   smaller of the two
   * @param taskTokenSha256 the SHA-256 of the task token minted for this lease, recorded with the lease (the token itself is never stored); it is good while the task runs under this lease ({@link taskToken})
   */
  claim(node: string, worker: string, leaseMs: number, now: number, capUsd: number | null = null, taskTokenSha256?: string): { task: Task; leaseId: string } | null {
    return this.atomic(() => {
      for (;;) {
        const ready = this.st.takeReady.get(node) as { task_id: number } | undefined;
        if (!ready) return null;
        const leaseId = randomUUID();
        const row = this.st.lease.get({ id: ready.task_id, node, worker, leaseId, expires: now + leaseMs, now, seq: this.claimSeq + 1, claimedBy: null, cap: capUsd }) as TaskRow | undefined;
        if (!row) continue; // an index entry of a task that is no longer pending: dropped, try the next
        this.claimSeq++;
        if (taskTokenSha256 !== undefined) this.st.insertTaskToken.run(taskTokenSha256, row.id, leaseId);
        return { task: toTask(row), leaseId };
      }
    });
  }

  /**
   * The task {@link claim} would lease to `node` now (highest priority, then oldest), without changing
   * anything; null when none is ready. The budget cap is the caller's to check.
   */
  peek(node: string): Task | null {
    const row = this.st.peekReady.get(node) as TaskRow | undefined;
    return row ? toTask(row) : null;
  }

  /**
   * Leases one pending task by id to an interactive session (a person or a node's Claude taking it by
   * hand): it leaves the ready index, counts an attempt, and holds a lease of `leaseMs` from `now` that the
   * session renews with {@link heartbeat}. Returns undefined for an unknown id.
   * @param by.node the claiming node, or null for a person (the task then runs on no node)
   * @param by.worker the session's label, shown as the task's worker (one printable line)
   * @param by.claimedBy the name of the token that claimed (who may renew, release and finish it)
   */
  claimTask(id: number, by: { node: string | null; worker: string; claimedBy: string }, leaseMs: number, now: number): TakeOutcome | undefined {
    return this.atomic((): TakeOutcome | undefined => {
      const leaseId = randomUUID();
      const row = this.st.lease.get({ id, node: by.node, worker: by.worker, leaseId, expires: now + leaseMs, now, seq: this.claimSeq + 1, claimedBy: by.claimedBy, cap: null }) as TaskRow | undefined;
      if (!row) {
        const t = this.getRow(id);
        return t ? { kind: "not-pending", task: t } : undefined;
      }
      this.claimSeq++;
      this.st.deleteReady.run(id);
      return { kind: "ok", task: toTask(row), leaseId };
    });
  }

  /**
   * Ends an interactive claim with the claimant's outcome: `completed` records `text` as the result, `failed`
   * as the error (cancelled instead when a cancel was requested); `text` is also appended as `author`'s note.
   * The caller checks who may. Returns undefined for an unknown id.
   * @param text the claimant's notes, or null
   */
  finishClaimed(id: number, outcome: "completed" | "failed", text: string | null, author: string, now: number): FinishOutcome | undefined {
    return this.atomic((): FinishOutcome | undefined => {
      const note = text === null ? null : JSON.stringify({ author, at: now, text });
      const row = this.st.finishClaimed.get({ id, outcome, now, result: outcome === "completed" ? text : null, error: outcome === "failed" ? text : null, note }) as TaskRow | undefined;
      if (row) return { kind: "ok", task: toTask(row) };
      const t = this.getRow(id);
      return t ? { kind: "not-claimed", task: t } : undefined;
    });
  }

  /**
   * Appends a note (`author`, `now`, `text`) to a task in any state; `full` when it already has
   * {@link MAX_NOTES}. Returns undefined for an unknown id.
   */
  addNote(id: number, author: string, text: string, now: number): NoteOutcome | undefined {
    return this.atomic((): NoteOutcome | undefined => {
      const row = this.st.addNote.get({ id, note: JSON.stringify({ author, at: now, text }), max: MAX_NOTES }) as TaskRow | undefined;
      if (row) return { kind: "ok", task: toTask(row) };
      const t = this.getRow(id);
      return t ? { kind: "full", task: t } : undefined;
    });
  }

  /**
   * Renews a lease to `now + leaseMs`. Returns the task (its `cancelRequested` tells the worker to stop), or
   * null when the lease is no longer this worker's.
   * @param spentUsd what the run has spent so far (USD, the worker's estimate), kept for its children's budget
   */
  heartbeat(id: number, leaseId: string, leaseMs: number, now: number, spentUsd: number | null = null): Task | null {
    return this.atomic(() => {
      if (this.st.renew.run(now + leaseMs, spentUsd, id, leaseId).changes === 0) return null;
      return this.getRow(id);
    });
  }

  /**
   * Records a worker's report from `node`. Exactly-once: only the current lease holder of a running task moves
   * it to a final state (cancelled instead of failed when a cancel was requested); a task leased to another
   * node is `forbidden`; the same report again is a `duplicate`; any other lease is `lost`. Returns undefined
   * for an unknown id.
   */
  complete(id: number, node: string, body: CompleteBody, now: number): CompleteOutcome | undefined {
    return this.atomic((): CompleteOutcome | undefined => {
      const done = this.st.report.get({
        id,
        node,
        leaseId: body.leaseId,
        outcome: body.outcome,
        now,
        result: body.result,
        error: body.error,
        exitCode: body.exitCode,
        durationSeconds: body.durationSeconds,
        costUsd: body.costUsd,
        chosenModel: body.chosenModel,
        modelReason: body.modelReason,
      }) as TaskRow | undefined;
      if (done) return { kind: "ok", task: toTask(done) };
      // Nothing changed: say why.
      const row = this.st.get.get(id) as TaskRow | undefined;
      if (!row) return undefined;
      if (row.node !== node) return { kind: "forbidden", task: toTask(row) };
      if (row.lease_id !== body.leaseId) return { kind: "lost", task: toTask(row) };
      return { kind: FINAL_STATES.includes(row.state as TaskState) ? "duplicate" : "lost", task: toTask(row) };
    });
  }

  /**
   * Puts a running task back to pending without counting the attempt (a worker shutting down). Returns the
   * task, or null when the lease is not current.
   */
  release(id: number, leaseId: string): Task | null {
    return this.atomic(() => {
      const row = this.st.get.get(id) as TaskRow | undefined;
      if (!row || row.state !== "running" || row.lease_id !== leaseId) return null;
      this.st.release.run(id);
      for (const n of this.eligible(row.target, JSON.parse(row.tags))) this.st.insertReady.run(n, row.priority, id);
      return this.getRow(id);
    });
  }

  /**
   * Handles leases that expired before `now`: a task whose cancel was requested becomes cancelled, one that
   * used all its attempts fails, the rest go back to pending. Returns the changed tasks.
   */
  expireLeases(now: number): { requeued: Task[]; finished: Task[] } {
    return this.atomic(() => {
      const requeued: Task[] = [];
      const finished: Task[] = [];
      for (const row of this.st.expired.all(now) as TaskRow[]) {
        const holder = row.claimed_by === null ? `lease of worker ${row.worker} on node ${row.node}` : `claim by ${row.claimed_by} (session ${row.worker})`;
        const lost = `${holder} expired at ${iso(row.lease_expires_at)} (attempt ${row.attempts} of ${row.max_attempts})`;
        if (row.cancel_requested === 1 || row.attempts >= row.max_attempts) {
          const state = row.cancel_requested === 1 ? "cancelled" : "failed";
          this.st.finish.run({ id: row.id, state, now, result: null, error: lost, exitCode: null, durationSeconds: null, costUsd: null, chosenModel: null, modelReason: null });
          finished.push(this.getRow(row.id)!);
        } else {
          this.st.requeue.run(lost, row.id);
          for (const n of this.eligible(row.target, JSON.parse(row.tags))) this.st.insertReady.run(n, row.priority, row.id);
          requeued.push(this.getRow(row.id)!);
        }
      }
      return { requeued, finished };
    });
  }

  /**
   * Cancels a task: a pending one at once, a running one by flagging it (its worker stops at its next
   * heartbeat). Returns the task, or undefined for an unknown id; a final task is returned unchanged.
   */
  cancel(id: number, now: number): Task | undefined {
    return this.atomic(() => {
      const row = this.st.get.get(id) as TaskRow | undefined;
      if (!row) return undefined;
      if (row.state === "pending") {
        this.st.deleteReady.run(id);
        this.st.cancelPending.run(now, id);
      } else if (row.state === "running") {
        this.st.requestCancel.run(id);
      }
      return this.getRow(id)!;
    });
  }

  /** Changes a task's priority (re-ordering it among the pending). Returns the task or undefined. */
  setPriority(id: number, priority: Priority): Task | undefined {
    return this.atomic(() => {
      const p = PRIORITIES.indexOf(priority);
      if (this.st.setPriority.run(p, id).changes === 0) return undefined;
      this.st.setReadyPriority.run(p, id);
      return this.getRow(id)!;
    });
  }

  /** One task, or undefined. */
  get(id: number): Task | undefined {
    return this.getRow(id) ?? undefined;
  }

  /**
   * Task `id`'s lease history, oldest first: `leased` (to node and worker, or an interactive session) and how
   * each lease ended — `completed`, `failed`, `cancelled`, `expired` (back to pending, attempt counted) or
   * `released` (given back, not counted). `at` is the server's ISO time. Empty for an unknown task.
   */
  leaseHistory(id: number): Array<{ at: string; event: string; node: string | null; worker: string | null }> {
    return (this.st.leaseHistory.all(id) as Array<{ at: number; event: string; node: string | null; worker: string | null }>).map((r) => ({ ...r, at: iso(r.at)! }));
  }

  /** Task `id`'s children (the tasks its token submitted), oldest first; empty for none or an unknown task. */
  children(id: number): ChildTask[] {
    return this.st.children.all(id) as ChildTask[];
  }

  /** What task `id`'s current run has spent so far by its worker's last heartbeat (USD), or null when not reported. */
  spentSoFar(id: number): number | null {
    return (this.st.spent.get(id) as { spent_usd: number | null } | undefined)?.spent_usd ?? null;
  }

  /** The task token with this SHA-256: its task and whether its lease still holds; undefined for an unknown token. */
  taskToken(tokenSha256: string): TaskTokenRecord | undefined {
    const r = this.st.taskToken.get(tokenSha256) as { task_id: number; lease_id: string } | undefined;
    if (!r) return undefined;
    const row = this.st.get.get(r.task_id) as TaskRow | undefined;
    return { taskId: r.task_id, task: row ? toTask(row) : null, live: row?.state === "running" && row.lease_id === r.lease_id };
  }

  private getRow(id: number): Task | null {
    const row = this.st.get.get(id) as TaskRow | undefined;
    return row ? toTask(row) : null;
  }

  /** Tasks matching the filter, newest first. */
  list(filter: ListFilter): Task[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.state) {
      where.push("state = ?");
      args.push(filter.state);
    }
    if (filter.node) {
      where.push("(node = ? OR target = ?)");
      args.push(filter.node, filter.node);
    }
    if (filter.visibleTo) {
      where.push("(submitted_by = ? OR target = ? OR node = ?)");
      args.push(filter.visibleTo, filter.visibleTo, filter.visibleTo);
    }
    if (filter.tag) {
      where.push("EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE json_each.key = ? AND json_each.value = ?)");
      args.push(filter.tag[0], filter.tag[1]);
    }
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 10_000);
    const sql = `SELECT * FROM tasks ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY id DESC LIMIT ${limit}`;
    return (this.db.prepare(sql).all(...args) as TaskRow[]).map(toTask);
  }

  /** The order in which tasks were claimed (claim sequence number), for tests and audits: `[taskId, seq, node]`. */
  claimOrder(): Array<{ id: number; seq: number; node: string; priority: Priority }> {
    return (this.db.prepare("SELECT id, claim_seq AS seq, node, priority FROM tasks WHERE claim_seq IS NOT NULL ORDER BY claim_seq").all() as Array<{ id: number; seq: number; node: string; priority: number }>).map(
      (r) => ({ ...r, priority: PRIORITIES[r.priority]! }),
    );
  }

  /** USD spent by a node on tasks finished from the UTC day of `sinceMs` (the start of a day, epoch ms) on. */
  spentSince(node: string, sinceMs: number): number {
    return (this.st.spentFromDay.get(node, Math.floor(sinceMs / 86_400_000)) as { s: number }).s;
  }

  /**
   * Task counts by state and by node (a task's node, else its target) of every task the queue has had, purged
   * ones included (`purged` says how many were purged), and USD spent from the UTC day of `sinceMs` on (total
   * and by node). Reads the counts and spend tables the triggers keep: a few rows per node, whatever the
   * number of tasks.
   * @param sinceMs the start of a UTC day (epoch ms); spend is kept per UTC day
   */
  stats(sinceMs: number): {
    byState: Record<(typeof TASK_STATES)[number], number>;
    byNode: Record<string, Partial<Record<TaskState, number>>>;
    spentByNode: Record<string, number>;
    purged: number;
  } {
    const byState = { pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    // Node names are user-named keys: collected in a Map, then made own properties (never looked up on {}).
    const byNode = new Map<string, Partial<Record<TaskState, number>>>();
    for (const r of this.st.counts.all() as Array<{ node: string; state: TaskState; n: number }>) {
      byState[r.state] += r.n;
      byNode.set(r.node, { ...byNode.get(r.node), [r.state]: r.n });
    }
    const spent = (this.st.spendByNodeFromDay.all(Math.floor(sinceMs / 86_400_000)) as Array<{ node: string; s: number }>).map((r) => [r.node, r.s] as const);
    return { byState, byNode: Object.fromEntries(byNode), spentByNode: Object.fromEntries(spent), purged: this.purgedCount() };
  }

  /** How many tasks purges have removed, ever. */
  purgedCount(): number {
    return (this.st.total.get("purged") as { n: number } | undefined)?.n ?? 0;
  }

  /**
   * Deletes the completed, failed and cancelled tasks that finished before `beforeMs` (epoch ms), in one
   * transaction, and adds their number to the purged total. The counts of {@link stats} keep them. Returns
   * the number deleted.
   */
  purge(beforeMs: number): number {
    return this.atomic(() => {
      const n = this.st.purge.run(beforeMs).changes;
      if (n > 0) this.st.addTotal.run("purged", n);
      return n;
    });
  }

  /**
   * Records a GitHub webhook delivery id (`X-GitHub-Delivery`, a GUID GitHub keeps when it redelivers) and
   * forgets those older than 30 days. True the first time an id is seen, false for a replay.
   */
  firstDelivery(id: string, now: number): boolean {
    return this.atomic(() => {
      this.db.prepare("DELETE FROM github_deliveries WHERE at < ?").run(now - 30 * 86_400_000);
      return this.db.prepare("INSERT OR IGNORE INTO github_deliveries (id, at) VALUES (?, ?)").run(id, now).changes === 1;
    });
  }

  /**
   * The `github-issue` tasks the orphan list (runtime/api.ts `githubOrphans`) may name: of each issue's tasks
   * the newest (owner and repository compared as GitHub does, ignoring case), when it failed or went back to
   * pending after a lease, newest first. The newest per issue comes from the index `tasks_github_issue`
   * (issue key, id) alone; only those candidate rows are read, so the dashboard can ask on every render.
   */
  githubOrphanCandidates(): Task[] {
    return (
      this.db
        .prepare(
          `SELECT t.* FROM tasks t JOIN (SELECT MAX(id) AS id FROM tasks WHERE github IS NOT NULL GROUP BY ${ISSUE_KEY}) n ON t.id = n.id
           WHERE t.node IS NOT NULL AND (t.state = 'failed' OR (t.state = 'pending' AND t.attempts > 0))
           ORDER BY t.id DESC`,
        )
        .all() as TaskRow[]
    ).map(toTask);
  }

  /** The repositories of the `github-issue` tasks kept (each once, ignoring case), for the poller's pull request scan. */
  githubRepos(): Array<{ owner: string; repo: string }> {
    return this.db
      .prepare(
        `SELECT json_extract(github, '$.owner') AS owner, json_extract(github, '$.repo') AS repo FROM tasks WHERE github IS NOT NULL
         GROUP BY lower(json_extract(github, '$.owner') || '/' || json_extract(github, '$.repo')) ORDER BY MIN(id)`,
      )
      .all() as Array<{ owner: string; repo: string }>;
  }

  /**
   * The newest pending or running `github-issue` task of `owner/repo#issue` (owner and repository ignoring
   * case), or null: the dispatch dedupe of the webhook and the poller (runtime/server.ts). An index lookup.
   */
  liveGithubTask(ref: { owner: string; repo: string; issue: number }): Task | null {
    const row = this.db
      .prepare(`SELECT * FROM tasks WHERE github IS NOT NULL AND ${ISSUE_KEY} = lower(? || '/' || ?) || '#' || ? AND state IN ('pending', 'running') ORDER BY id DESC LIMIT 1`)
      .get(ref.owner, ref.repo, String(ref.issue)) as TaskRow | undefined; // text: a bound JS number is a REAL, '1.0'
    return row ? toTask(row) : null;
  }

  /**
   * Records that a node was seen now; `status` (idle, busy, over-budget, stopping) and `message` replace the
   * stored ones when status is given.
   */
  touchNode(name: string, now: number, status: string | null = null, message: string | null = null): void {
    this.st.touchNode.run({ name, now, status, message });
  }

  /**
   * What happened since `sinceMs`, for the dashboard's charts: tasks submitted per minute, tasks that reached
   * a final state per minute (by state), and USD spent per hour by node. Minutes and hours are bucket start
   * times in milliseconds since the epoch (UTC), ascending; empty buckets are left out.
   */
  activity(sinceMs: number): {
    submitted: Array<{ minute: number; n: number }>;
    finished: Array<{ minute: number; state: TaskState; n: number }>;
    spend: Array<{ hour: number; node: string; usd: number }>;
  } {
    return {
      submitted: this.st.submittedPerMinute.all(sinceMs) as Array<{ minute: number; n: number }>,
      finished: this.st.finishedPerMinute.all(sinceMs) as Array<{ minute: number; state: TaskState; n: number }>,
      spend: this.st.spendPerHour.all(sinceMs) as Array<{ hour: number; node: string; usd: number }>,
    };
  }

  /** Every node ever seen: last-seen time (ms), last status and message. */
  nodes(): Array<{ name: string; lastSeen: number | null; status: string | null; message: string | null }> {
    return (this.st.nodes.all() as Array<{ name: string; last_seen: number | null; status: string | null; message: string | null }>).map((r) => ({
      name: r.name,
      lastSeen: r.last_seen,
      status: r.status,
      message: r.message,
    }));
  }
}
