// Rendered by fleetkit (role queue): builds the queue server's tokens file from the public facts in the JSON file
// named by argv[2] and the secrets on stdin, printing the result on stdout. Line 1: queueTokens, the stack's
// `node:sha256` pairs separated by spaces (stacks/secrets.ts formatQueueTokens: the SHA-256 of each node's token,
// 64 lower-case hex digits; one per node that has a token); line 2: the ntfy access token, or an empty line;
// line 3: peopleTokens, `person:sha256` pairs for the people in the facts, or an empty line. The file keeps
// hashes only: the queue node holds no usable token of a node or a person. Nodes without a token are left out
// (they cannot use the queue). Errors name nodes and people, never values.
import { readFileSync } from "node:fs";

const die = (msg) => {
  process.stderr.write(`fleetkit: error: ${msg}\n`);
  process.exit(1);
};
const facts = JSON.parse(readFileSync(process.argv[2], "utf8"));
const [tokensLine = "", ntfyToken = "", peopleLine = ""] = readFileSync(0, "utf8").split("\n");
const people = facts.people ?? {};

/** `name:sha256` pairs of one secret line, each name one of `known` (an object of names), each once. */
function pairs(secret, line, known, what) {
  const out = new Map();
  for (const pair of line.split(" ").filter(Boolean)) {
    const i = pair.indexOf(":");
    const name = i < 0 ? "" : pair.slice(0, i);
    if (!/^[a-z0-9-]+$/.test(name)) die(`secret ${secret} must be ${what}:sha256 pairs separated by spaces; the stack writes it (stacks/secrets.ts)`);
    if (!Object.hasOwn(known, name)) die(`secret ${secret} names ${what} "${name}", which is not in the fleet; remove it`);
    if (out.has(name)) die(`secret ${secret} names ${what} ${name} twice`);
    if (!/^[0-9a-f]{64}$/.test(pair.slice(i + 1))) die(`secret ${secret} has no valid SHA-256 for ${what} ${name} (64 lower-case hex digits)`);
    out.set(name, pair.slice(i + 1));
  }
  return out;
}

const nodeHashes = pairs("queueTokens", tokensLine, facts.nodes, "node");
if (nodeHashes.size === 0) die("secret queueTokens holds no node:sha256 pair; the stack mints one token per node");
const personHashes = pairs("peopleTokens", peopleLine, people, "person");
// Every token has one scope: a hash seen twice would make two holders one.
const seen = new Set();
const use = (hash, what) => {
  if (seen.has(hash)) die(`secrets queueTokens and peopleTokens give ${what} the same token as another; every token needs its own`);
  seen.add(hash);
  return hash;
};
for (const name of Object.keys(facts.nodes)) {
  const hash = nodeHashes.get(name);
  if (hash === undefined) delete facts.nodes[name];
  else facts.nodes[name].tokenSha256 = use(hash, `node ${name}`);
}
for (const name of Object.keys(people)) {
  const hash = personHashes.get(name);
  if (hash === undefined) die(`secret peopleTokens has no token for person ${name}; the stack mints one per person in people:`);
  people[name].tokenSha256 = use(hash, `person ${name}`);
}
facts.people = people;
if (facts.ntfy) {
  if (!/^tk_[a-z0-9]{29}$/.test(ntfyToken)) die("secret ntfyToken must be an ntfy access token: tk_ and 29 lower-case letters or digits");
  facts.ntfy.token = ntfyToken;
}
process.stdout.write(`${JSON.stringify(facts, null, 2)}\n`);
