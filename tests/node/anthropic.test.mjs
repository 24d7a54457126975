// The @anthropic-ai/sdk npm package (1.x) against the gateway's Messages API: a streamed tool call
// (the SDK's own accumulator parses the joined input_json_delta), the tool_result round trip, thinking.
// Run by tests/test_anthropic_node.py, which starts the stack and passes the base URL and key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.env.DS2API_ANTHROPIC_URL;
const apiKey = process.env.DS2API_KEY;

function client() {
  return new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
}

const tools = [{
  name: 'get_weather',
  description: 'Current weather for a city.',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city', 'unit'],
  },
}];

test('stream with tools: events in order, a tool_use block with an object input', async () => {
  const messages = [{ role: 'user', content: 'Weather in Lima? [sim:tool=get_weather args={"city": "Lima"}]' }];
  const stream = client().messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 64000, tools, messages });
  const kinds = [];
  let jsonPieces = '';
  stream.on('streamEvent', (event) => {
    kinds.push(event.type);
    if (event.type === 'content_block_delta' && event.delta.type === 'input_json_delta') {
      jsonPieces += event.delta.partial_json;
    }
  });
  const message = await stream.finalMessage();
  assert.equal(kinds[0], 'message_start');
  assert.deepEqual(kinds.slice(-2), ['message_delta', 'message_stop']);
  assert.equal(message.stop_reason, 'tool_use');
  assert.deepEqual(message.content.map((b) => b.type), ['thinking', 'text', 'tool_use']);
  const call = message.content[2];
  assert.match(call.id, /^toolu_/);
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(call.input, { city: 'Lima', unit: 'celsius' });
  assert.deepEqual(JSON.parse(jsonPieces), call.input);
  assert.ok(message.content[0].signature);
  assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0);

  messages.push({ role: 'assistant', content: message.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'Lima: 19 C' }] });
  const answer = await client().messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 64000, tools, messages })
    .finalMessage();
  assert.equal(answer.stop_reason, 'end_turn');
  assert.match(answer.content.at(-1).text, /Lima: 19 C/);
});

test('a wrong key is an AuthenticationError with the request id', async () => {
  const bad = new Anthropic({ baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(
    bad.messages.create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
    (error) => error instanceof Anthropic.AuthenticationError && error.error.error.type === 'authentication_error'
      && typeof error.requestID === 'string',
  );
});
