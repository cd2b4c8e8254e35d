/** The `<think>` filter: reasoning in the answer text never reaches the user. */
import assert from "node:assert/strict";
import { stripThink, ThinkFilter } from "../../src/assistant/think.ts";

/** Runs deltas through a fresh filter and returns the visible text and each step's output. */
function run(deltas: string[]): { text: string; steps: string[] } {
  const filter = new ThinkFilter();
  const steps = deltas.map((d) => filter.push(d));
  steps.push(filter.end());
  return { text: steps.join(""), steps };
}

const CASES: [string, string][] = [
  ["<think>Let me see.\nThe user wants 4.</think>\n\nThe answer is 4.", "The answer is 4."],
  ["  <think>a</think><think>b</think> Two blocks.", "Two blocks."],
  ["<think></think>Empty thoughts.", "Empty thoughts."],
  ["No reasoning here.", "No reasoning here."],
  [
    "Text first, then <think>literal</think> kept.",
    "Text first, then <think>literal</think> kept.",
  ],
  ["<thinking is fun", "<thinking is fun"],
  ["<thi", "<thi"],
  ["<think>never closed, all reasoning", ""],
  ["\n\nLeading blank lines stay.", "\n\nLeading blank lines stay."],
  ["<b>bold</b> html is not a think tag", "<b>bold</b> html is not a think tag"],
];

Deno.test("think: whole texts", () => {
  for (const [input, expected] of CASES) {
    assert.equal(stripThink(input), expected, JSON.stringify(input));
  }
});

Deno.test("think: every split of the text into two deltas gives the same result", () => {
  for (const [input, expected] of CASES) {
    for (let i = 0; i <= input.length; i++) {
      const { text } = run([input.slice(0, i), input.slice(i)]);
      assert.equal(text, expected, `${JSON.stringify(input)} split at ${i}`);
    }
  }
});

Deno.test("think: one character per delta, tags split everywhere", () => {
  for (const [input, expected] of CASES) {
    assert.equal(run([...input]).text, expected, JSON.stringify(input));
  }
});

Deno.test("think: the answer streams as soon as the block is closed, nothing of it before", () => {
  const { steps } = run(["<think>plan", " the answer</th", "ink>\n", "Hello", " world"]);
  assert.deepEqual(steps, ["", "", "", "Hello", " world", ""]);
});

Deno.test("think: text that could still be a tag is held, then released", () => {
  const { steps } = run(["<th", "e end"]);
  assert.deepEqual(steps, ["", "<the end", ""]);
});
