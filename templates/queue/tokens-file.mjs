// Rendered by fleetkit (role queue): builds the queue server's tokens file from the public facts in the JSON file
// named by argv[2] and the secrets on stdin, printing the result on stdout. Line 1: queueTokens, the stack's
// `node:token` pairs separated by spaces (stacks/secrets.ts formatQueueTokens; one per node that runs a worker);
// line 2: the ntfy access token, or an empty line. Nodes without a token are left out (they cannot use the
// queue). Errors name nodes, never values.
import { readFileSync } from "node:fs";

const die = (msg) => {
  process.stderr.write(`fleetkit: error: ${msg}\n`);
  process.exit(1);
};
const facts = JSON.parse(readFileSync(process.argv[2], "utf8"));
const [tokensLine = "", ntfyToken = ""] = readFileSync(0, "utf8").split("\n");
const tokens = new Map();
for (const pair of tokensLine.split(" ").filter(Boolean)) {
  const i = pair.indexOf(":");
  const name = i < 0 ? "" : pair.slice(0, i);
  if (!/^[a-z0-9-]+$/.test(name)) die("secret queueTokens must be node:token pairs separated by spaces; set it with pulumi config set --secret");
  if (!(name in facts.nodes)) die(`secret queueTokens names node "${name}", which is not in the fleet; remove it`);
  if (tokens.has(name)) die(`secret queueTokens names node ${name} twice`);
  if (!/^[A-Za-z0-9_-]{16,256}$/.test(pair.slice(i + 1))) die(`secret queueTokens has no valid token for node ${name} (16-256 letters, digits, _ or -)`);
  tokens.set(name, pair.slice(i + 1));
}
if (tokens.size === 0) die("secret queueTokens holds no node:token pair; the stack mints one per worker node");
const seen = new Set();
for (const name of Object.keys(facts.nodes)) {
  const token = tokens.get(name);
  if (token === undefined) {
    delete facts.nodes[name];
    continue;
  }
  if (seen.has(token)) die(`secret queueTokens gives node ${name} the same token as another node; every node needs its own`);
  seen.add(token);
  facts.nodes[name].token = token;
}
if (facts.ntfy) {
  if (!/^tk_[a-z0-9]{29}$/.test(ntfyToken)) die("secret ntfyToken must be an ntfy access token: tk_ and 29 lower-case letters or digits");
  facts.ntfy.token = ntfyToken;
}
process.stdout.write(`${JSON.stringify(facts, null, 2)}\n`);
