// Streaming tool calls with the openai npm SDK (6.x) against the gateway + simulator: issue 11.
// Run by tests/test_tools_clients.py, which starts the stack and passes the base URL and key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

const baseURL = process.env.DS2API_BASE_URL;
const apiKey = process.env.DS2API_KEY;

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather for a city.',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'search',
      description: 'Search the docs.',
      parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
    },
  },
];

test('raw stream: each call once per index, arguments join into JSON', async () => {
  const stream = await client.chat.completions.create({
    model: 'deepseek-chat',
    messages: [{ role: 'user', content: '[sim:tool=get_weather,search markup=v4] [sim:split=1]' }],
    tools,
    stream: true,
  });
  const calls = [];
  let finish = null;
  let content = '';
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    content += choice.delta.content ?? '';
    if (choice.finish_reason) finish = choice.finish_reason;
    for (const delta of choice.delta.tool_calls ?? []) {
      if (!calls[delta.index]) {
        assert.ok(delta.id && delta.type === 'function' && delta.function.name, 'first delta carries id/type/name');
        calls[delta.index] = { id: delta.id, name: delta.function.name, args: delta.function.arguments ?? '' };
      } else {
        assert.equal(delta.id, undefined);
        assert.equal(delta.function.name, undefined);
        calls[delta.index].args += delta.function.arguments ?? '';
      }
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(content, 'I will call get_weather, search (simulated).');
  assert.deepEqual(calls.map((c) => c.name), ['get_weather', 'search']);
  assert.deepEqual(JSON.parse(calls[0].args), { city: 'simulated value' });
  assert.deepEqual(JSON.parse(calls[1].args), { query: 'simulated value' });
  assert.notEqual(calls[0].id, calls[1].id);
});

test('stream helper: finalChatCompletion has the calls; the result round trip ends in prose', async () => {
  const messages = [{ role: 'user', content: 'weather please, use get_weather [sim:split=3]' }];
  const runner = client.chat.completions.stream({ model: 'deepseek-chat', messages, tools });
  const first = await runner.finalChatCompletion();
  const message = first.choices[0].message;
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  assert.equal(message.tool_calls.length, 1);
  assert.equal(message.tool_calls[0].function.name, 'get_weather');
  messages.push(message, { role: 'tool', tool_call_id: message.tool_calls[0].id, content: 'cloudy' });
  const second = await client.chat.completions.create({ model: 'deepseek-chat', messages, tools });
  assert.equal(second.choices[0].finish_reason, 'stop');
  assert.equal(second.choices[0].message.content, 'The tool get_weather returned: "cloudy". That is the answer (simulated).');
});
