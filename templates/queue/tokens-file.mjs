// Rendered by fleetkit (role queue): builds the queue server's tokens file from the public facts in the JSON file
// named by argv[2] and the secrets on stdin (line 1: the queueTokens JSON object {"<node>": "<token>"}; line 2:
// the ntfy access token or an empty line), printing the result on stdout. Errors name nodes, never values.
import { readFileSync } from "node:fs";

const die = (msg) => {
  process.stderr.write(`fleetkit: error: ${msg}\n`);
  process.exit(1);
};
const facts = JSON.parse(readFileSync(process.argv[2], "utf8"));
const [tokensLine = "", ntfyToken = ""] = readFileSync(0, "utf8").split("\n");
let tokens;
try {
  tokens = JSON.parse(tokensLine);
} catch {
  die("secret queueTokens is not a JSON object of node name to token; set it with pulumi config set --secret");
}
if (tokens === null || typeof tokens !== "object" || Array.isArray(tokens)) die("secret queueTokens must be a JSON object of node name to token");
const token = /^[A-Za-z0-9_-]{16,256}$/;
for (const name of Object.keys(tokens)) {
  if (!(name in facts.nodes)) die(`secret queueTokens names node "${name}", which is not in the fleet; remove it`);
}
for (const [name, node] of Object.entries(facts.nodes)) {
  const value = tokens[name];
  if (typeof value !== "string" || !token.test(value)) die(`secret queueTokens has no valid token for node ${name} (16-256 letters, digits, _ or -)`);
  node.token = value;
}
const seen = new Set();
for (const [name, node] of Object.entries(facts.nodes)) {
  if (seen.has(node.token)) die(`secret queueTokens gives node ${name} the same token as another node; every node needs its own`);
  seen.add(node.token);
}
if (facts.ntfy) {
  if (!/^tk_[a-z0-9]{29}$/.test(ntfyToken)) die("secret ntfyToken must be an ntfy access token: tk_ and 29 lower-case letters or digits");
  facts.ntfy.token = ntfyToken;
}
process.stdout.write(`${JSON.stringify(facts, null, 2)}\n`);
