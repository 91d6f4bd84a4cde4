/**
 * Editing a hand-kept fleet.yaml without rewriting it: new entries are rendered with the `yaml` package and
 * spliced into the text after the last entry of their map (positions from `parseDocument`), so every
 * existing byte, comment and alignment stays. (`Document.toString()` keeps comments but re-aligns them,
 * re-wraps flow lists and re-renders scalars, so it is used only for flow-style maps, where no splice
 * point exists.) Used by `fleet add-machine` and `fleet pin-artifacts`.
 */
import { chmodSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Document, isMap, LineCounter, parseDocument, type Pair, type YAMLMap } from "yaml";
import { UserError } from "../model/errors.js";

type Ranged = { range?: [number, number, number] | null };

/** Character offset of a map item's key in the source. */
export function keyStart(p: Pair): number {
  return (p.key as Ranged).range![0];
}

/**
 * Where a new last entry of the block map `map` goes: after its last content line and after any comment
 * lines indented at least `indent` columns (comments that belong to the map's end). Always at a line start.
 */
export function blockMapInsertionPoint(source: string, map: YAMLMap, indent: number): number {
  let at = (map as Ranged).range![1];
  if (at > 0 && source[at - 1] !== "\n") {
    const nl = source.indexOf("\n", at);
    at = nl < 0 ? source.length : nl + 1;
  }
  const indentedComment = new RegExp(`^ {${indent},}#[^\\n]*(\\n|$)`);
  for (let m = indentedComment.exec(source.slice(at)); m && m[0].length > 0; m = indentedComment.exec(source.slice(at))) at += m[0].length;
  return at;
}

/** The indentation step of a fleet file: how much deeper the first node's fields sit than its name (default 2). */
export function indentStep(source: string): number {
  const lc = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lc });
  const nodes = doc.get("nodes", true);
  if (!isMap(nodes) || nodes.flow || !nodes.items.length) return 2;
  const first = nodes.items[0] as Pair;
  if (!isMap(first.value) || first.value.flow || !first.value.items.length) return 2;
  return Math.max(1, lc.linePos(keyStart(first.value.items[0] as Pair)).col - lc.linePos(keyStart(first)).col);
}

/**
 * Returns `source` with `key: value` added as the last entry of the map at `path` (`[]` = the top level),
 * creating the maps on `path` that are missing the same way. Nothing else changes when the map is block
 * style or an empty `{}` on its key's line (it becomes a block); any other flow-style map (`{…}`) is
 * re-rendered through the document (see the module docstring). New
 * nested maps are indented like the map's own first entry when it has nested entries, else by `step`. Pure.
 * @throws UserError when something on `path` is not a map, or the map already has `key`.
 */
export function insertIntoMap(source: string, path: string[], key: string, value: unknown, step = indentStep(source)): string {
  const lc = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lc });
  const map = path.length ? doc.getIn(path, true) : doc.contents;
  if (map === undefined || map === null) {
    if (!path.length) return `${source}${source.endsWith("\n") || !source ? "" : "\n"}${render(key, value, step, 0)}`;
    return insertIntoMap(source, path.slice(0, -1), path.at(-1)!, { [key]: value }, step);
  }
  if (!isMap(map)) throw new UserError(`${path.join(".")} in the fleet file is not a map; fix it by hand (it should hold \`${key}:\`).`);
  if (map.has(key)) throw new UserError(`${[...path, key].join(".")} is already in the fleet file.`);
  if (map.flow && !map.items.length && path.length) {
    // `key: {}` on its own line (e.g. `sha256: {}`): the `{}` goes, the entry follows as a block.
    const [start, end] = (map as Ranged).range!;
    const lineStart = source.lastIndexOf("\n", start - 1) + 1;
    const line = source.slice(lineStart, start);
    if (/^ *[^\s#{[][^#{[]*:\s*$/.test(line)) {
      const nl = source.indexOf("\n", end);
      const lineEnd = nl < 0 ? source.length : nl + 1;
      const rest = source.slice(end, lineEnd);
      const head = source.slice(0, lineStart) + line.trimEnd() + (rest.trim() ? rest : "\n");
      return head + (head.endsWith("\n") ? "" : "\n") + render(key, value, step, /^ */.exec(line)![0].length + step) + source.slice(lineEnd);
    }
  }
  if (map.flow || !map.items.length) {
    doc.setIn([...path, key], value);
    return doc.toString({ lineWidth: 0 });
  }
  const first = map.items[0] as Pair;
  const indent = lc.linePos(keyStart(first)).col - 1;
  // The step this map's own entries use, when its first entry shows one (a nested block map).
  if (isMap(first.value) && !first.value.flow && first.value.items.length) step = lc.linePos(keyStart(first.value.items[0] as Pair)).col - 1 - indent;
  const at = blockMapInsertionPoint(source, map, indent);
  const before = source.slice(0, at);
  return before + (before.length && !before.endsWith("\n") ? "\n" : "") + render(key, value, step, indent) + source.slice(at);
}

/** `key: value` as block YAML, every line indented by `indent` spaces, ending in a newline. */
function render(key: string, value: unknown, step: number, indent: number): string {
  return (
    new Document({ [key]: value })
      .toString({ indent: step, lineWidth: 0 })
      .trimEnd()
      .split("\n")
      .map((l) => " ".repeat(indent) + l)
      .join("\n") + "\n"
  );
}

/** Writes `text` to `file` atomically: a temp file in the same folder (same mode), then rename. */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.fleet-${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text, { flag: "wx" });
    chmodSync(tmp, statSync(file).mode & 0o7777);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
