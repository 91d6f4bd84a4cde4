/**
 * The dashboard's HTML: Mustache templates (`{{x}}` HTML-escapes every value, `{{{x}}}` is used only for
 * HTML this module rendered itself) and the one style sheet. Kept as TypeScript strings rather than files so
 * they reach nodes with the queue's runtime payload, which ships the import closure of `cli/queue.ts`
 * (roles/runtime-dist.ts). Live parts are htmx (`hx-*`) attributes driven by the htmx SSE extension: an
 * element re-fetches its own page and swaps in its part when the queue sends a `task` event.
 */
import Mustache from "mustache";

/** The page frame: head with the vendored scripts, navigation, who is signed in and the sign-out form. */
const LAYOUT = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}'>
<title>{{title}} · fleet</title>
<link rel="stylesheet" href="/assets/fleet.css">
<script src="/assets/htmx.min.js"></script>
<script src="/assets/sse.js"></script>
</head>
<body>
<header>
{{#user}}
<nav aria-label="Main">
<a href="/fleet">Fleet</a>
<a href="/tasks">Tasks</a>
{{#canChange}}<a href="/tasks/new">Submit a task</a>{{/canChange}}
</nav>
<form method="post" action="/logout" class="signout">
<input type="hidden" name="_csrf" value="{{csrf}}">
<span id="who">{{name}} ({{scope}})</span>
<button type="submit">Sign out</button>
</form>
{{/user}}
</header>
<main>
{{{body}}}
</main>
</body>
</html>
`;

const LOGIN = `<h1>Sign in to the fleet</h1>
<form method="post" action="/login" class="stack">
<label for="token">Your token (from the <code>peopleTokens</code> stack output)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required {{#error}}aria-invalid="true" aria-describedby="err-token"{{/error}}>
{{#error}}<p class="error" id="err-token" role="alert">{{error}}</p>{{/error}}
<button type="submit">Sign in</button>
</form>
`;

const FLEET = `<h1>Fleet</h1>
<div hx-ext="sse" sse-connect="/events">
<div hx-get="/fleet" hx-trigger="sse:task, sse:nodes" hx-select="#nodes" hx-target="#nodes" hx-swap="outerHTML"></div>
<table id="nodes">
<caption>{{online}} of {{count}} nodes online</caption>
<thead><tr><th scope="col">Node</th><th scope="col">OS / arch</th><th scope="col">Presence</th><th scope="col">Last seen</th><th scope="col">Status</th><th scope="col">Spend today (UTC)</th></tr></thead>
<tbody>
{{#nodes}}
<tr data-node="{{node}}">
<th scope="row">{{node}}</th>
<td>{{os}} / {{arch}}</td>
<td class="presence">{{#online}}online{{/online}}{{^online}}offline{{/online}}</td>
<td>{{lastSeen}}{{^lastSeen}}never{{/lastSeen}}</td>
<td>{{status}}{{#message}}: {{message}}{{/message}}</td>
<td>{{#cap}}<meter min="0" max="{{cap}}" value="{{spent}}" aria-label="{{node}} spend of budget"></meter> \${{spentText}} of \${{capText}}{{/cap}}{{^cap}}\${{spentText}} (no cap){{/cap}}</td>
</tr>
{{/nodes}}
</tbody>
</table>
</div>
`;

const TASKS = `<h1>Tasks</h1>
<form method="get" action="/tasks" class="filters">
<label>State <select name="state"><option value="">all</option>{{#states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/states}}</select></label>
<label>Node <select name="node"><option value="">all</option>{{#nodeOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/nodeOptions}}</select></label>
<button type="submit">Filter</button>
</form>
<div hx-ext="sse" sse-connect="/events">
<div hx-get="{{self}}" hx-trigger="sse:task" hx-select="#tasks" hx-target="#tasks" hx-swap="outerHTML"></div>
<table id="tasks">
<caption>{{count}} task(s){{#filtered}}, filtered{{/filtered}}, newest first</caption>
<thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col">Target</th><th scope="col">Node</th><th scope="col">Model</th><th scope="col">Cost</th><th scope="col">Duration</th><th scope="col">Prompt</th></tr></thead>
<tbody>
{{#tasks}}
<tr id="task-{{id}}">
<th scope="row"><a href="/tasks/{{id}}">#{{id}}</a></th>
<td class="state">{{state}}</td>
<td>{{target}}</td>
<td>{{node}}</td>
<td>{{modelText}}</td>
<td>{{cost}}</td>
<td>{{duration}}</td>
<td class="prompt">{{promptLine}}</td>
</tr>
{{/tasks}}
</tbody>
</table>
</div>
`;

const TASK = `<h1>Task #{{task.id}}</h1>
<div hx-ext="sse" sse-connect="/events">
<div hx-get="/tasks/{{task.id}}" hx-trigger="sse:task" hx-select="#task" hx-target="#task" hx-swap="outerHTML"></div>
<section id="task" aria-label="Task details">
<dl>
<dt>State</dt><dd id="state">{{task.state}}{{#task.cancelRequested}} (cancel requested){{/task.cancelRequested}}</dd>
<dt>Target</dt><dd>{{task.target}}{{#tagsText}} with {{tagsText}}{{/tagsText}}</dd>
<dt>Node</dt><dd>{{task.node}}{{^task.node}}–{{/task.node}}</dd>
<dt>Priority</dt><dd id="priority">{{task.priority}}</dd>
<dt>Model</dt><dd>{{modelText}}</dd>
<dt>Submitted by</dt><dd>{{task.submittedBy}} at {{task.createdAt}}</dd>
<dt>Attempts</dt><dd id="attempts">{{task.attempts}} of {{task.maxAttempts}}</dd>
<dt>Exit code</dt><dd id="exit-code">{{task.exitCode}}{{^hasExit}}–{{/hasExit}}</dd>
<dt>Duration</dt><dd>{{duration}}</dd>
<dt>Cost</dt><dd>{{cost}}</dd>
</dl>
{{#canPrioritise}}
<form method="post" action="/tasks/{{task.id}}/priority" class="filters">
<input type="hidden" name="_csrf" value="{{csrf}}">
<label>Priority <select name="priority">{{#priorities}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/priorities}}</select></label>
<button type="submit">Set priority</button>
</form>
{{/canPrioritise}}
{{#canCancel}}
<form method="post" action="/tasks/{{task.id}}/cancel">
<input type="hidden" name="_csrf" value="{{csrf}}">
<button type="submit">Cancel task</button>
</form>
{{/canCancel}}
<h2>Prompt</h2>
<pre id="prompt">{{task.prompt}}</pre>
{{#task.result}}<h2>Result</h2>
<pre id="result">{{task.result}}</pre>{{/task.result}}
{{#task.error}}<h2>Error</h2>
<pre id="error">{{task.error}}</pre>{{/task.error}}
</section>
</div>
`;

const SUBMIT = `<h1>Submit a task</h1>
{{#formError}}<p class="error" id="err-form" role="alert">{{formError}}</p>{{/formError}}
<form method="post" action="/tasks" class="stack">
<input type="hidden" name="_csrf" value="{{csrf}}">
{{#fields}}
<label for="{{name}}">{{label}}</label>
{{#select}}<select id="{{name}}" name="{{name}}"{{#error}} aria-invalid="true" aria-describedby="err-{{name}}"{{/error}}>{{#options}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/options}}</select>{{/select}}
{{#textarea}}<textarea id="{{name}}" name="{{name}}" rows="6"{{#error}} aria-invalid="true" aria-describedby="err-{{name}}"{{/error}}>{{value}}</textarea>{{/textarea}}
{{#text}}<input id="{{name}}" name="{{name}}" type="text" value="{{value}}"{{#hint}} placeholder="{{hint}}"{{/hint}}{{#error}} aria-invalid="true" aria-describedby="err-{{name}}"{{/error}}>{{/text}}
{{#error}}<p class="error" id="err-{{name}}" role="alert">{{error}}</p>{{/error}}
{{/fields}}
<button type="submit">Submit</button>
</form>
`;

const ERROR = `<h1>{{status}}</h1>
<p class="error" id="err-page" role="alert">{{message}}</p>
<p><a href="/">Back to the dashboard</a></p>
`;

/** The dashboard's one style sheet, served as `/assets/fleet.css` (CSP allows no inline style elements). */
export const DASHBOARD_CSS = `body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #111; background: #fff; }
header { display: flex; justify-content: space-between; align-items: center; padding: .5rem 1rem; background: #1d3557; color: #fff; min-height: 2rem; }
header a, header span { color: #fff; margin-right: 1rem; }
header button { margin-left: .5rem; }
main { padding: 1rem; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; padding: .25rem 0; }
th, td { border-bottom: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
td.prompt { max-width: 30rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
pre { background: #f4f4f4; padding: .5rem; white-space: pre-wrap; word-break: break-word; }
.stack { display: flex; flex-direction: column; gap: .3rem; max-width: 40rem; }
.filters { display: flex; gap: 1rem; align-items: end; margin-bottom: .5rem; }
.error { color: #a4000f; font-weight: 600; margin: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dd { margin: 0; }
`;

/** Who is signed in, as the layout shows them (absent on the sign-in and error pages before sign-in). */
export interface LayoutUser {
  name: string;
  scope: "operator" | "viewer";
  /** May submit and cancel (an operator). */
  canChange: boolean;
  /** The session's CSRF token for the sign-out form. */
  csrf: string;
}

const TEMPLATES = { login: LOGIN, fleet: FLEET, tasks: TASKS, task: TASK, submit: SUBMIT, error: ERROR } as const;
/** A page the dashboard renders. */
export type PageName = keyof typeof TEMPLATES;

/**
 * A whole HTML page: `page`'s template rendered with `view` (every value HTML-escaped by Mustache) inside
 * the layout. `title` is the document title; `user` null before sign-in.
 */
export function renderPage(page: PageName, title: string, user: LayoutUser | null, view: object): string {
  const body = Mustache.render(TEMPLATES[page], view);
  return Mustache.render(LAYOUT, { title, user, body });
}
