import { describe, expect, it } from "vitest";
import { chooseModel, resolveModel } from "../../runtime/model-choice.js";

describe("chooseModel (remote-tasks.md's 3-tier heuristic)", () => {
  it.each([
    // The three examples of remote-tasks.md.
    ["Run uptime", "haiku", "no complexity keyword, 2 words"],
    ["Refactor authentication module", "sonnet", 'keyword "refactor"'],
    ["Security audit of API endpoints", "opus", 'keyword "security"'],
    // Every opus keyword, case-insensitive, whole words.
    ["review the ARCHITECTURE", "opus", 'keyword "architecture"'],
    ["pick an algorithm for dedup", "opus", 'keyword "algorithm"'],
    ["apply the observer design pattern", "opus", 'keyword "design pattern"'],
    ["audit the sudoers file", "opus", 'keyword "audit"'],
    ["fix the critical crash", "opus", 'keyword "critical"'],
    ["rotate sensitive credentials", "opus", 'keyword "sensitive"'],
    // Opus wins over sonnet keywords in the same prompt.
    ["refactor and test the security layer", "opus", 'keyword "security"'],
    // Sonnet keywords, including word stems and implement…feature across words.
    ["refactoring the parser", "sonnet", 'keyword "refactor"'],
    ["run the tests", "sonnet", 'keyword "test"'],
    ["debug the flaky job", "sonnet", 'keyword "debug"'],
    ["document the CLI", "sonnet", 'keyword "document"'],
    ["migrate the db to v2", "sonnet", 'keyword "migrate"'],
    ["a complex rename", "sonnet", 'keyword "complex"'],
    ["design the page", "sonnet", 'keyword "design"'],
    ["implement the export feature", "sonnet", 'keyword "implement … feature"'],
    ["optimise the build", "sonnet", 'keyword "optimize"'],
    // Not keywords: substrings inside other words, feature without implement.
    ["check the contest results", "haiku", "no complexity keyword, 4 words"],
    ["list feature flags", "haiku", "no complexity keyword, 3 words"],
    // Word count: 20 words stay haiku, 21 words go to sonnet.
    [Array(20).fill("word").join(" "), "haiku", "no complexity keyword, 20 words"],
    [Array(21).fill("word").join(" "), "sonnet", "21 words (more than 20)"],
    // Edge cases: empty and whitespace-only prompts.
    ["", "haiku", "no complexity keyword, 0 words"],
    ["   \n\t ", "haiku", "no complexity keyword, 0 words"],
    ["uptime", "haiku", "no complexity keyword, 1 word"],
  ] as const)("%j → %s", (prompt, model, reason) => {
    expect(chooseModel(prompt)).toEqual({ model, reason });
  });

  it.each([
    ["auto", "Run uptime", { model: "haiku", reason: "no complexity keyword, 2 words" }],
    ["opus", "Run uptime", { model: "opus", reason: "requested" }],
    ["haiku", "Security audit", { model: "haiku", reason: "requested" }],
  ] as const)("resolveModel(%s, %j)", (requested, prompt, want) => {
    expect(resolveModel(requested, prompt)).toEqual(want);
  });
});
