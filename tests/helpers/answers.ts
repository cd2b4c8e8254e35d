import assert from "node:assert/strict";

/**
 * A long assistant answer for delivery tests: over 20,000 characters of Markdown with a
 * heading, 45 paragraphs, a 150-line code block and a 40-row table, ending in "The end.".
 */
export function longAnswer(): string {
  const code = Array.from({ length: 150 }, (_, i) => `const line${i} = ${i} * 2; // step ${i}`)
    .join("\n");
  const table = "| a | b |\n|---|---|\n" +
    Array.from({ length: 40 }, (_, i) => `| ${i} | ${i * i} |`).join("\n");
  const paragraphs = Array.from(
    { length: 45 },
    (_, i) => `Paragraph ${i}: ` + "lorem ipsum dolor sit amet ".repeat(12),
  ).join("\n\n");
  return `# Title\n\n${paragraphs}\n\n\`\`\`ts\n${code}\n\`\`\`\n\n${table}\n\nThe end.`;
}

/** Asserts that `text` shows all of {@link longAnswer}: first and last paragraph, code and table, in order. */
export function assertWholeLongAnswer(text: string): void {
  const markers = ["Paragraph 0:", "Paragraph 44:", "line0 =", "line149 =", "39 | 1521"];
  for (const marker of markers) assert.ok(text.includes(marker), `missing ${marker}`);
  const at = markers.map((m) => text.indexOf(m));
  assert.deepEqual(at, [...at].sort((a, b) => a - b), "the parts arrived out of order");
}
