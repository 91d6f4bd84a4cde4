/**
 * fleet.yaml `people:`: the people who use the task queue with their own token, each with one scope
 * (operator or viewer). Kept in its own file beside the loader's table (cases.ts).
 */
import { describe, expect, it } from "vitest";
import { FleetError, parseFleet } from "../../model/load.js";
import { VALID } from "./cases.js";

const problems = (text: string): string[] => {
  try {
    parseFleet(text, "F");
  } catch (err) {
    expect(err).toBeInstanceOf(FleetError);
    return (err as FleetError).message.split("\n").slice(0, -1);
  }
  throw new Error("expected the fleet to be rejected");
};

describe("fleet model: people", () => {
  it("are read by name, sorted, each with a scope; none by default", () => {
    expect(parseFleet(`${VALID}people:\n  bob: viewer\n  alice: operator\n`, "F").people).toEqual({ alice: "operator", bob: "viewer" });
    expect(Object.keys(parseFleet(`${VALID}people:\n  bob: viewer\n  alice: operator\n`, "F").people)).toEqual(["alice", "bob"]);
    expect(parseFleet(VALID, "F").people).toEqual({});
  });

  it.each([
    ["an unknown scope", "people:\n  alice: admin\n", ['F:20:10 people.alice: expected one of operator|viewer, got "admin"']],
    ["a name that is not a hostname label", "people:\n  Alice: viewer\n", ["F:20:3 people.Alice: invalid name \"Alice\": expected a lower-case hostname label (a-z, 0-9, '-')"]],
    ["a person named like a node", "people:\n  pi: viewer\n", ['F:20:3 people.pi: "pi" is also a node\'s name; a person and a node need different names (rename the person)']],
  ])("refuses %s", (_n, text, expected) => {
    expect(problems(`${VALID}${text}`)).toEqual(expected);
  });
});
