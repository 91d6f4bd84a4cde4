/**
 * Target resolution for the `fleet` verbs: each word on the command line is a node name, a profile name
 * (every node whose `profile:` is that profile) or `all`. Words are resolved in order and the union is
 * returned in fleet file order, each node once.
 */
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import { didYouMean } from "../model/suggest.js";
import { UserError } from "../model/errors.js";

/**
 * The nodes named by `words` (node | profile | `all`); no words = every node.
 * A word that is both a node and a profile name means the node.
 * @throws UserError (exit 2) for a word that is none of these, naming the choices and the closest one.
 */
export function resolveTargets(fleet: Fleet, words: readonly string[]): FleetNode[] {
  if (words.length === 0) return [...fleet.nodes];
  const chosen = new Set<string>();
  for (const word of words) {
    if (word === "all") {
      fleet.nodes.forEach((n) => chosen.add(n.name));
      continue;
    }
    const node = fleet.nodes.find((n) => n.name === word);
    if (node) {
      chosen.add(node.name);
      continue;
    }
    if (Object.hasOwn(fleet.profiles, word)) {
      const members = fleet.nodes.filter((n) => n.profile === word);
      if (members.length === 0) {
        throw new UserError(`fleet: profile "${word}" is defined in ${fleet.file} but no node uses it (no node has \`profile: ${word}\`); name a node or another profile.`);
      }
      members.forEach((n) => chosen.add(n.name));
      continue;
    }
    const names = [...fleet.nodes.map((n) => n.name), ...Object.keys(fleet.profiles), "all"];
    throw new UserError(
      `fleet: "${word}" is not a node or profile of fleet ${fleet.name} (${fleet.file})${didYouMean(word, names)}. ` +
        `Nodes: ${fleet.nodes.map((n) => n.name).join(", ")}; profiles: ${Object.keys(fleet.profiles).join(", ") || "(none)"}; or \`all\`.`,
    );
  }
  return fleet.nodes.filter((n) => chosen.has(n.name));
}

/** The one node named `word` (a profile or `all` is refused). @throws UserError (exit 2). */
export function resolveNode(fleet: Fleet, word: string | undefined, verb: string): FleetNode {
  if (!word) throw new UserError(`fleet ${verb}: name a node (one of ${fleet.nodes.map((n) => n.name).join(", ")}).`);
  const node = fleet.nodes.find((n) => n.name === word);
  if (!node) {
    throw new UserError(
      `fleet ${verb}: "${word}" is not a node of fleet ${fleet.name} (${fleet.file})${didYouMean(word, fleet.nodes.map((n) => n.name))}; ` +
        `${verb} works on one node: ${fleet.nodes.map((n) => n.name).join(", ")}.`,
    );
  }
  return node;
}

/** Checks that `node` runs `word` as a role. @throws UserError (exit 2) naming the node's roles. */
export function resolveRole(node: FleetNode, word: string | undefined, verb: string): RoleName {
  const roles = node.roles as readonly string[];
  if (!word || !roles.includes(word)) {
    const what = word ? `"${word}" is not a role of node ${node.name}${didYouMean(word, roles)}` : `name a role of node ${node.name}`;
    throw new UserError(`fleet ${verb}: ${what}; its roles are ${node.roles.join(", ")}.`);
  }
  return word as RoleName;
}
