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
<a href="/agents">Agents</a>
<a href="/charts">Charts</a>
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
{{#next}}<input type="hidden" name="next" value="{{next}}">{{/next}}
<label for="token">Your token (from the <code>peopleTokens</code> stack output)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required {{#error}}aria-invalid="true" aria-describedby="err-token"{{/error}}>
{{#error}}<p class="error" id="err-token" role="alert">{{error}}</p>{{/error}}
<button type="submit">Sign in</button>
</form>
`;

const FLEET = `<h1>Fleet</h1>
<div hx-ext="sse" sse-connect="/events">
<div hx-get="/fleet" hx-trigger="sse:task, sse:nodes" hx-select="#nodes" hx-target="#nodes" hx-swap="outerHTML"></div>
<div id="nodes">
<p id="health-summary">{{#report}}Health as <code>fleet status --report</code> judged {{checked}} node(s), latest at {{atText}} UTC: {{unhealthy}} with problems.{{/report}}{{^report}}No health report yet: run <code>fleet status --report</code> with an operator's token (for example from the drift check).{{/report}}</p>
<table>
<caption>{{online}} of {{count}} nodes online</caption>
<thead><tr><th scope="col">Node</th><th scope="col">OS / arch</th><th scope="col">Profile</th><th scope="col">Roles</th><th scope="col">Presence</th><th scope="col">Last seen</th><th scope="col">Status</th><th scope="col">Health</th><th scope="col">Spend today (UTC)</th></tr></thead>
<tbody>
{{#nodes}}
<tr data-node="{{node}}">
<th scope="row">{{node}}</th>
<td>{{os}} / {{arch}}</td>
<td class="profile">{{profile}}</td>
<td class="roles">{{rolesText}}{{#agent}} (<a href="/agents/{{node}}">agent</a>){{/agent}}</td>
<td class="presence">{{#online}}online{{/online}}{{^online}}offline{{/online}}</td>
<td>{{lastSeenText}}{{^lastSeen}}never{{/lastSeen}}</td>
<td>{{status}}{{#message}}: {{message}}{{/message}}</td>
<td class="health">{{#health}}<span title="checked at {{atText}} UTC by {{by}}">{{#healthy}}healthy{{/healthy}}{{^healthy}}problems:{{/healthy}}</span>{{^healthy}}<ul>{{#problems}}<li>{{.}}</li>{{/problems}}</ul>{{/healthy}}{{/health}}{{^health}}not checked{{/health}}</td>
<td>{{#cap}}<meter min="0" max="{{cap}}" value="{{spent}}" aria-label="{{node}} spend of budget"></meter> \${{spentText}} of \${{capText}}{{/cap}}{{^cap}}\${{spentText}} (no cap){{/cap}}</td>
</tr>
{{/nodes}}
</tbody>
</table>
</div>
</div>
`;

const TASKS = `<h1>Tasks</h1>
<form method="get" action="/tasks" class="filters">
<label>State <select name="state"><option value="">all</option>{{#states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/states}}</select></label>
<label>Node <select name="node"><option value="">all</option>{{#nodeOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/nodeOptions}}</select></label>
<label>Tag <input name="tag" type="text" value="{{tag}}" placeholder="name=value" size="14"></label>
<button type="submit">Filter</button>
</form>
{{#orphans.length}}<section id="orphans" aria-labelledby="orphans-title">
<h2 id="orphans-title">GitHub work left behind</h2>
<ul>
{{#orphans}}<li><strong>{{issue}}</strong> ({{label}}): {{#linked}}<a href="/tasks/{{task}}">task #{{task}}</a> {{/linked}}{{whyText}}</li>{{/orphans}}
</ul>
</section>{{/orphans.length}}
<div hx-ext="sse" sse-connect="/events">
<div hx-get="{{self}}" hx-trigger="sse:task" hx-select="#tasks" hx-target="#tasks" hx-swap="outerHTML"></div>
<table id="tasks">
<caption>{{count}} task(s){{#filtered}}, filtered{{/filtered}}, newest first</caption>
<thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col">Target</th><th scope="col">Tags</th><th scope="col">Node</th><th scope="col">Model</th><th scope="col">Cost</th><th scope="col">Duration</th><th scope="col">Prompt</th></tr></thead>
<tbody>
{{#tasks}}
<tr id="task-{{id}}">
<th scope="row"><a href="/tasks/{{id}}">#{{id}}</a></th>
<td class="state">{{state}}</td>
<td>{{target}}</td>
<td class="tags">{{tagsText}}</td>
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
{{#task.github}}<dt>GitHub issue</dt><dd id="github">{{owner}}/{{repo}}#{{issue}}{{#base}} from {{base}}{{/base}}{{#draft}} (draft pull request){{/draft}}</dd>{{/task.github}}
<dt>Node</dt><dd>{{task.node}}{{^task.node}}–{{/task.node}}{{#task.claimedBy}} (claimed by hand by {{task.claimedBy}}){{/task.claimedBy}}</dd>
<dt>Priority</dt><dd id="priority">{{task.priority}}</dd>
<dt>Model</dt><dd>{{modelText}}</dd>
<dt>Submitted by</dt><dd>{{task.submittedBy}} at {{task.createdAt}}</dd>
{{#task.parent}}<dt>Parent</dt><dd id="parent"><a href="/tasks/{{task.parent}}">#{{task.parent}}</a></dd>{{/task.parent}}
{{#children.length}}<dt>Children</dt><dd id="children">{{#children}}{{#comma}}, {{/comma}}<a href="/tasks/{{id}}">#{{id}}</a> {{state}}{{/children}}</dd>{{/children.length}}
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
{{#leases.length}}<h2>Lease history</h2>
<ol id="leases">
{{#leases}}<li><time>{{atText}}</time> {{#leased}}leased to {{node}}{{#worker}} ({{worker}}){{/worker}}{{/leased}}{{^leased}}{{event}}{{#node}} on {{node}}{{/node}}{{/leased}}</li>{{/leases}}
</ol>{{/leases.length}}
{{#hasNotes}}<h2>Notes</h2>
<ol id="notes" class="messages">
{{#notes}}<li><span class="who">{{author}}</span> <time>{{atText}}</time>
<pre>{{text}}</pre></li>{{/notes}}
</ol>{{/hasNotes}}
</section>
</div>
`;

const AGENTS = `<h1>Agents</h1>
<p>Claude Code sessions driven by AgentAPI on the fleet's nodes. Only this queue reaches them; the conversation goes through this page.</p>
<div hx-ext="sse" sse-connect="/events/agents">
<div hx-get="/agents" hx-trigger="sse:agents" hx-select="#agents" hx-target="#agents" hx-swap="outerHTML"></div>
<table id="agents">
<caption>{{count}} agent(s)</caption>
<thead><tr><th scope="col">Node</th><th scope="col">Status</th></tr></thead>
<tbody>
{{#agents}}
<tr data-node="{{node}}">
<th scope="row"><a href="/agents/{{node}}">{{node}}</a></th>
<td class="agent-status">{{status}}{{^status}}unreachable: {{error}}{{/status}}</td>
</tr>
{{/agents}}
</tbody>
</table>
</div>
`;

const AGENT = `<h1>Agent {{node}}</h1>
<div hx-ext="sse" sse-connect="/events/agents/{{node}}">
<div hx-get="/agents/{{node}}" hx-trigger="sse:agent" hx-select="#conversation" hx-target="#conversation" hx-swap="outerHTML"></div>
<section id="conversation" aria-label="Conversation" aria-live="polite">
<p>Status: <strong id="agent-status">{{status}}{{^status}}unreachable{{/status}}</strong></p>
{{#error}}<p class="error" id="err-agent" role="alert">{{error}}</p>{{/error}}
{{#older}}<p>{{older}} older message(s) not shown.</p>{{/older}}
<ol class="messages">
{{#messages}}
<li class="message {{role}}"><span class="who">{{who}}</span> <time>{{timeText}}</time>
<pre>{{content}}</pre></li>
{{/messages}}
</ol>
</section>
</div>
{{#canSend}}
<form method="post" action="/agents/{{node}}/message" class="stack">
<input type="hidden" name="_csrf" value="{{csrf}}">
<label for="content">Message to {{node}}</label>
<textarea id="content" name="content" rows="4"{{#sendError}} aria-invalid="true" aria-describedby="err-content"{{/sendError}}>{{draft}}</textarea>
{{#sendError}}<p class="error" id="err-content" role="alert">{{sendError}}</p>{{/sendError}}
<button type="submit">Send</button>
</form>
<form method="post" action="/agents/{{node}}/interrupt">
<input type="hidden" name="_csrf" value="{{csrf}}">
<button type="submit">Interrupt (Escape)</button>
</form>
{{/canSend}}
`;

const CHARTS = `<h1>Charts</h1>
<p>The last 24 hours, drawn with uPlot; they redraw when tasks change.</p>
<link rel="stylesheet" href="/assets/uPlot.min.css">
<script src="/assets/uPlot.iife.min.js"></script>
<script src="/assets/charts.js" defer></script>
<h2 id="tasks-title">Tasks per minute by state</h2>
<div id="chart-tasks" class="chart" role="img" aria-labelledby="tasks-title"></div>
<table id="task-totals">
<caption>Tasks in the last 24 h</caption>
<thead><tr>{{#states}}<th scope="col">{{label}}</th>{{/states}}</tr></thead>
<tbody><tr>{{#states}}<td data-state="{{label}}">{{total}}</td>{{/states}}</tr></tbody>
</table>
<h2 id="spend-title">Spend per node (USD, cumulative)</h2>
<div id="chart-spend" class="chart" role="img" aria-labelledby="spend-title"></div>
<table id="spend-totals">
<caption>Spend in the last 24 h</caption>
<thead><tr><th scope="col">Node</th><th scope="col">USD</th></tr></thead>
<tbody>{{#spend}}<tr><th scope="row">{{label}}</th><td data-node="{{label}}">{{total}}</td></tr>{{/spend}}</tbody>
</table>
`;

/**
 * The charts' script, served as `/assets/charts.js` (the CSP admits only this origin's scripts): draws both
 * charts with uPlot from `/charts.json` (runtime/dashboard.ts `chartData`) and redraws them, at most once a
 * second, when the queue's event stream reports a task change.
 */
export const CHARTS_JS = `"use strict";
(function () {
  var COLOURS = ["#1d3557", "#2a9d8f", "#a4000f", "#8d6a00", "#6a4c93", "#e76f51", "#264653", "#f4a261", "#457b9d", "#9c6644"];
  var charts = {};
  var axisLabels = { "chart-tasks": "tasks per minute", "chart-spend": "USD" };
  function draw() {
    return fetch("/charts.json", { headers: { accept: "application/json" } }).then(function (res) {
      if (!res.ok) return;
      return res.json().then(function (d) {
        [["chart-tasks", d.tasks], ["chart-spend", d.spend]].forEach(function (pair) {
          var id = pair[0], data = pair[1], el = document.getElementById(id);
          var rows = [data.x].concat(data.series.map(function (s) { return s.values; }));
          if (charts[id]) return charts[id].setData(rows);
          var width = Math.max(320, Math.min(el.clientWidth || 900, 1200));
          charts[id] = new uPlot({
            width: width,
            height: 240,
            series: [{}].concat(data.series.map(function (s, i) { return { label: s.label, stroke: COLOURS[i % COLOURS.length], width: 1.5 }; })),
            axes: [{}, { label: axisLabels[id] }]
          }, rows, el);
          el.setAttribute("data-drawn", "true");
        });
      });
    });
  }
  draw();
  var timer = null;
  var events = new EventSource("/events");
  events.addEventListener("task", function () {
    if (timer === null) timer = setTimeout(function () { timer = null; draw(); }, 1000);
  });
})();
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
td.health ul { margin: 0; padding-left: 1rem; }
ol.messages { list-style: none; padding: 0; }
ol.messages li { margin-bottom: .5rem; }
ol.messages .who { font-weight: 600; }
ol.messages li.user pre { background: #e8f0fb; }
.chart { min-height: 260px; }
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

const TEMPLATES = { login: LOGIN, fleet: FLEET, tasks: TASKS, task: TASK, submit: SUBMIT, agents: AGENTS, agent: AGENT, charts: CHARTS, error: ERROR } as const;
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
