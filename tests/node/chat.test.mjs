// The openai npm SDK (6.x, the line that runs on Node 20) against the gateway: CONFORMANCE.md §4.2 O17.
// Run by tests/test_conformance_node.py, which starts the stack and passes, in environment variables,
// the base URL, the key and the exact replies the simulator will give (DS2API_EXPECT, JSON).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

const baseURL = process.env.DS2API_BASE_URL;
const apiKey = process.env.DS2API_KEY;
const expect = JSON.parse(process.env.DS2API_EXPECT ?? '{}');

function client(options = {}) {
  return new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000, ...options });
}

test('non-stream chat completion', async () => {
  const { prompt, content } = expect.plain;
  const completion = await client().chat.completions.create({
    model: 'deepseek-chat',
    messages: [{ role: 'user', content: prompt }],
  });
  assert.equal(completion.object, 'chat.completion');
  assert.ok(completion.id);
  assert.equal(typeof completion.created, 'number');
  assert.equal(completion.choices[0].index, 0);
  assert.equal(completion.choices[0].message.role, 'assistant');
  assert.equal(completion.choices[0].message.content, content);
  assert.equal(completion.choices[0].finish_reason, 'stop');
  const { prompt_tokens, completion_tokens, total_tokens } = completion.usage;
  assert.equal(total_tokens, prompt_tokens + completion_tokens);
});

test('stream with usage and reasoning_content', async () => {
  const { prompt, content, reasoning } = expect.thinking;
  const stream = await client().chat.completions.create({
    model: 'deepseek-reasoner',
    messages: [{ role: 'user', content: prompt }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length > 1);
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const deltas = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta);
  assert.equal(deltas.map((d) => d.content ?? '').join(''), content);
  assert.equal(deltas.map((d) => d.reasoning_content ?? '').join(''), reasoning);
  const finishes = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
  assert.deepEqual(finishes.map((c) => c.choices[0].finish_reason), ['stop']);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.total_tokens > 0);
  assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
});

test('401 is an AuthenticationError with the error envelope', async () => {
  await assert.rejects(
    client({ apiKey: 'sk-wrong', maxRetries: 2 }).chat.completions.create({
      model: 'deepseek-chat',
      messages: [{ role: 'user', content: 'bad key' }],
    }),
    (error) => {
      assert.ok(error instanceof OpenAI.AuthenticationError, String(error));
      assert.equal(error.status, 401);
      assert.equal(error.code, 'invalid_api_key');
      assert.deepEqual(Object.keys(error.error).sort(), ['code', 'message', 'param', 'type']);
      assert.ok(error.requestID);
      return true;
    },
  );
});

test('mid-stream failure rejects the iteration', async () => {
  const stream = await client().chat.completions.create({
    model: 'deepseek-chat',
    messages: [{ role: 'user', content: expect.cut.prompt }],
    stream: true,
  });
  let received = '';
  await assert.rejects(async () => {
    for await (const chunk of stream) received += chunk.choices[0]?.delta?.content ?? '';
  }, OpenAI.APIError);
  assert.ok(received.length > 0);
});
