// Rendered by fleetkit for node {{node}}. Run before AgentAPI starts, as {{user}}, with the Claude
// credentials in the environment: pre-answers the questions an interactive Claude Code asks on its first
// run, which nobody is there to answer in a session AgentAPI drives (a prompt sent to it would land in the
// theme picker instead). Claude Code keeps those answers in $HOME/.claude.json:
//   theme                                   set to "dark" only when there is none (a user's pick stays)
//   hasCompletedOnboarding                  true: no theme / security-notes / login screens
//   customApiKeyResponses.approved          the last 20 characters of ANTHROPIC_API_KEY, Claude Code's own
//                                           record of "Do you want to use this API key?" answered yes
//   projects[<working dir>].hasTrustDialogAccepted   true: no "Do you trust the files in this folder?"
// (undocumented keys; the shape is the one Claude Code writes itself, see anthropics/claude-code#4714 and
// #8938). Every other key is kept; the file is rewritten (0600, atomically) only when something changes.
// A file that is not JSON is left alone: a warning, exit 1, and AgentAPI starts anyway (the unit ignores
// this step's failure); Claude Code then asks its questions as usual.
import { chmodSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const file = join(process.env.HOME ?? "", ".claude.json");
let text = null;
try {
  text = readFileSync(file, "utf8");
} catch (err) {
  if (err.code !== "ENOENT") {
    console.error(`fleetkit: cannot read ${file} (${err.code}); Claude Code's first-run questions are not pre-answered`);
    process.exit(1);
  }
}
let state = {};
if (text !== null) {
  try {
    state = JSON.parse(text);
  } catch (err) {
    console.error(`fleetkit: ${file} is not valid JSON (${err.message}); left as it is, so Claude Code may ask its first-run questions. Fix or remove the file, then restart AgentAPI.`);
    process.exit(1);
  }
  if (state === null || typeof state !== "object" || Array.isArray(state)) {
    console.error(`fleetkit: ${file} is not a JSON object; left as it is, so Claude Code may ask its first-run questions. Fix or remove the file, then restart AgentAPI.`);
    process.exit(1);
  }
}
const before = JSON.stringify(state);
const obj = (v) => (v !== null && typeof v === "object" && !Array.isArray(v) ? v : {});

if (typeof state.theme !== "string") state.theme = "dark";
state.hasCompletedOnboarding = true;
const key = process.env.ANTHROPIC_API_KEY ?? "";
if (key) {
  const tail = key.slice(-20);
  const responses = obj(state.customApiKeyResponses);
  const approved = Array.isArray(responses.approved) ? responses.approved : [];
  const rejected = Array.isArray(responses.rejected) ? responses.rejected : [];
  state.customApiKeyResponses = { ...responses, approved: approved.includes(tail) ? approved : [...approved, tail], rejected: rejected.filter((r) => r !== tail) };
}
const projects = obj(state.projects);
const cwd = process.cwd();
projects[cwd] = { ...obj(projects[cwd]), hasTrustDialogAccepted: true };
state.projects = projects;

if (JSON.stringify(state) !== before) {
  const tmp = `${file}.fleetkit-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  console.log(`fleetkit: ${file}: Claude Code's first-run questions pre-answered for ${cwd}`);
}
