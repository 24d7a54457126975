// The 429 retry path of the openai npm SDK (CONFORMANCE.md §4.2 O17). tests/test_conformance_node.py
// holds every pool account before running this file and frees them when the first retry arrives.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

const expect = JSON.parse(process.env.DS2API_EXPECT ?? '{}');

test('429 with Retry-After is retried and then succeeds', async () => {
  const client = new OpenAI({
    baseURL: process.env.DS2API_BASE_URL,
    apiKey: process.env.DS2API_KEY,
    maxRetries: 2,
    timeout: 60_000,
  });
  const { data, response } = await client.chat.completions
    .create({ model: 'deepseek-chat', messages: [{ role: 'user', content: expect.retry.prompt }] })
    .withResponse();
  assert.equal(response.status, 200);
  assert.ok(response.headers.get('x-request-id'));
  assert.equal(data.choices[0].message.content, expect.retry.content);
});
