/**
 * Keeps the benchmark from rotting: its arithmetic on hand-made records, its fake
 * answers, and one `--smoke` run of `bench/main.ts` (5 users × 2 messages, realistic
 * and short answers, bursts of 10 with the short ones, both stores) against the real
 * bot. Not a timed test: it checks that every figure is produced, never how fast
 * anything was.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { analyzePhase } from "../bench/analyze.ts";
import {
  answerText,
  endMarker,
  modelTokens,
  realisticAnswer,
  startMarker,
} from "../bench/fakes.ts";
import { percentile, unionLength } from "../bench/stats.ts";
import type { RecordedCall } from "./fakes/telegram.ts";
import { Lexer, type Tokens } from "marked";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

Deno.test("bench: percentiles are nearest-rank; overlapping waits count once", () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile([7], 99), 7);
  assert.equal(percentile([], 50), undefined);
  const window = { start: 0, end: 100 };
  assert.equal(unionLength([{ start: 10, end: 30 }, { start: 20, end: 40 }], window), 30);
  assert.equal(unionLength([{ start: -50, end: 10 }, { start: 90, end: 150 }], window), 20);
  assert.equal(unionLength([{ start: 10, end: 20 }, { start: 12, end: 15 }], window), 10);
});

Deno.test("bench: an answer has the asked number of tokens, markers first and last", () => {
  const text = answerText(42, 40);
  assert.equal(text.match(/\s*\S+|\s+$/g)?.length, 40);
  assert.ok(text.startsWith(startMarker(42)));
  assert.ok(text.endsWith(endMarker(42)));
  assert.match(text, /\n- /);
});

Deno.test("bench: a realistic answer is Markdown with every block kind, in model-sized tokens", () => {
  for (const tokens of [2, 40, 150, 500, 800, 2000]) {
    const deltas = realisticAnswer(42, tokens);
    assert.equal(deltas.length, tokens);
    assert.equal(deltas[0], startMarker(42));
    assert.equal(deltas.at(-1), ` ${endMarker(42)}`);
    assert.ok(deltas.every((d) => d.length > 0));
  }
  const text = realisticAnswer(42, 500).join("");
  // Every block kind an answer usually has, as a Markdown parser sees them.
  const blocks = new Lexer({ gfm: true }).lex(text).filter((t) => t.type !== "space");
  const kinds = new Set(
    blocks.map((t) => t.type === "list" && t.ordered ? "ordered list" : t.type),
  );
  assert.deepEqual(
    [...kinds].sort(),
    ["blockquote", "code", "heading", "list", "ordered list", "paragraph", "table"],
  );
  const table = blocks.find((t) => t.type === "table") as Tokens.Table;
  assert.equal(table.header.length, 4);
  assert.equal(table.rows.length, 3);
  // About four characters a token, like a real model's.
  assert.ok(text.length / 500 > 3.5 && text.length / 500 < 4.5, `${text.length} characters`);
  // Block by block, never cut inside a code block or table: its fences come in pairs.
  assert.equal((realisticAnswer(42, 150).join("").match(/```/g) ?? []).length % 2, 0);
  assert.equal(modelTokens("a  b\n\n`c`").join(""), "a  b\n\n`c`");
});

Deno.test("bench: bot-added latency is the window minus the waits on the fakes", () => {
  const latency = 20;
  const user = 7;
  const call = (
    method: string,
    at: number,
    params: Record<string, unknown>,
    result?: unknown,
  ): RecordedCall => ({ method, at, params, ok: true, result });
  // Queued at 1000; a held poll answers at once (1000–1020); the bot checks the
  // subscription at 1025 (–1045), streams from OpenAI 1050–1500, shows a draft at
  // 1352 (first token at 1350) and sends the final message at 1510.
  const calls = [
    call("getUpdates", 900, {}, [{ update_id: 5 }]),
    call("getChatMember", 1025, { chat_id: "@c", user_id: user }),
    call("sendRichMessageDraft", 1352, {
      chat_id: user,
      rich_message: { markdown: startMarker(1) },
    }),
    call("sendRichMessage", 1510, { chat_id: user, rich_message: { markdown: answerText(1, 4) } }),
  ];
  const result = analyzePhase({
    name: "t",
    users: 1,
    messages: [{ id: 1, userId: user, updateId: 5, pushedAt: 1000, answered: true }],
    calls,
    openaiExchanges: [{
      method: "POST",
      path: "/v1/responses",
      arrivedAt: 1050,
      respondedAt: 1051,
      firstChunkAt: 1350,
      firstChunkText: `data: {"delta":"${startMarker(1)}"}`,
      endedAt: 1500,
    }],
    telegramLatencyMs: latency,
    botCpuSeconds: 0.01,
    cpuWallMs: 1000,
    benchCpuSeconds: 0,
    redisCpuSeconds: 0,
    benchLagMs: [],
  });
  assert.equal(result.answered, 1);
  assert.equal(result.endToEndMs.p50, 510);
  // Waits: poll 1000–1020, getChatMember 1025–1045, stream 1050–1500 (the draft's
  // round trip falls inside the stream): 20 + 20 + 450 = 490.
  assert.equal(result.fakeWaitMs.p50, 490);
  assert.equal(result.botAddedMs.p50, 20);
  assert.equal(result.botBeforeStreamMs.p50, 10); // 1020–1025 and 1045–1050
  assert.equal(result.botAfterStreamMs.p50, 10); // 1500–1510
  assert.equal(result.firstVisibleMs.p50, 2);
  assert.equal(result.cpuMsPerAnswer, 10);
  assert.equal(result.callsPerAnswer.getChatMember, 1);
  assert.equal(result.getChatMemberPer1000Messages, 1000);
});

Deno.test("bench: a --smoke run drives the real bot with both stores and answer kinds, and reports every figure", async () => {
  const out = await Deno.makeTempDir({ prefix: "bench-smoke-" });
  try {
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "bench/main.ts", "--smoke", "--store=both", `--out=${out}`],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(90_000),
    }).output();
    const stdout = new TextDecoder().decode(run.stdout);
    const stderr = new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, `bench failed:\n${stdout}\n${stderr}`);
    assert.match(stdout, /answers\/s at the ceiling/);
    assert.match(stdout, /bot-added latency p99/);
    assert.match(stdout, /CPU ms \/ 1k tokens/);
    assert.match(stdout, /Realistic answers \(500 tokens\)/);
    assert.match(stdout, /Short answers \(40 tokens\)/);
    assert.match(stdout, /ms per 1,000 tokens \(line through both answer lengths\)/);
    const files = [...Deno.readDirSync(out)].map((e) => e.name);
    assert.equal(files.length, 1, `one JSON file, no latest.json: ${files}`);
    const report = JSON.parse(await Deno.readTextFile(`${out}/${files[0]}`));
    assert.ok(report.machine.cores > 0);
    assert.match(report.revision.commit, /^[0-9a-f]{40}$|^unknown$/);
    assert.deepEqual(
      report.scenarios.map((s: { label: string }) => s.label),
      [
        "current kv realistic",
        "current kv short",
        "current redis realistic",
        "current redis short",
      ],
    );
    for (const s of report.scenarios) {
      assert.equal(s.exitCode, 0);
      assert.ok(s.startupMs.median > 0);
      assert.ok(s.memory.idleRssMb > 0 && s.memory.burstPeakRssMb >= s.memory.idleRssMb);
      assert.ok(s.memory.idleRssAnonMb > 0 && s.memory.idleRssFileMb > 0);
      assert.equal(s.answerTokens, s.answers === "realistic" ? 500 : 40);
      assert.deepEqual(
        s.phases.map((p: { name: string }) => p.name),
        s.answers === "realistic" ? ["paced"] : ["paced", "burst, new users", "burst, same users"],
      );
      for (const p of s.phases) {
        assert.equal(p.answered, p.messages, `${s.label} ${p.name}: every message answered`);
        assert.ok(p.answersPerSecond > 0);
        assert.ok(p.botAddedMs.p50 !== undefined && p.firstVisibleMs.p50 !== undefined);
        assert.ok(p.botAddedMs.p50 >= 0 && p.botAddedMs.p50 <= p.endToEndMs.p50);
        const finals = ["sendMessage", "sendRichMessage", "editMessageText"]
          .reduce((n, m) => n + (p.callsPerAnswer[m] ?? 0), 0);
        assert.ok(finals >= 1, `${s.label} ${p.name}: a final message per answer`);
      }
      assert.equal(s.maxGetChatMemberPerUser, 1);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("bench: a --smoke run with voice notes and OPENAI_API=chat answers every note", async () => {
  const out = await Deno.makeTempDir({ prefix: "bench-smoke-voice-" });
  try {
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "bench/main.ts",
        "--smoke",
        "--store=kv",
        "--answers=short",
        "--burst=0",
        "--input=voice",
        "--api=chat",
        `--out=${out}`,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(90_000),
    }).output();
    const stdout = new TextDecoder().decode(run.stdout);
    const stderr = new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, `bench failed:\n${stdout}\n${stderr}`);
    assert.match(stdout, /users send voice notes; OPENAI_API=chat/);
    const [file] = [...Deno.readDirSync(out)].map((e) => e.name);
    const report = JSON.parse(await Deno.readTextFile(`${out}/${file}`));
    for (const p of report.scenarios[0].phases) {
      assert.equal(p.answered, p.messages, `${p.name}: every voice note answered`);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
