// The Vercel AI SDK's OpenAI provider against the gateway, as an app would use it: the Responses API with
// `store` on (the provider's default), so from the second step on earlier answers go back as
// `item_reference`s. Driven by tests/test_responses_ai_sdk.py; prints one JSON line of what it saw.
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, isStepCount, tool } from 'ai';
import { z } from 'zod';

const sent = [];
const recordingFetch = async (url, init) => {
  if (init && typeof init.body === 'string') sent.push(JSON.parse(init.body));
  return fetch(url, init);
};
const recorded = createOpenAI({
  baseURL: process.env.DS2API_BASE_URL, apiKey: process.env.DS2API_KEY, fetch: recordingFetch,
}).responses('deepseek-chat');

// 1. a tool over several steps: the pre-call text and the call come back by reference
const withTool = await generateText({
  model: recorded,
  tools: {
    lookup_weather: tool({
      description: 'The weather in a city',
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => `SUNNY-IN-${city.toUpperCase()}-21C`,
    }),
  },
  stopWhen: isStepCount(4),
  // the simulator calls the tool named in the prompt, and once more after the first result
  prompt: 'What is the weather? Use lookup_weather please. [sim:after1=lookup_weather args={"city":"Bergen"}]',
});

// 2. a two-turn chat: the first answer goes back as a reference in the second turn
const first = await generateText({ model: recorded, prompt: 'Remember the word HERON-88 for me.' });
const second = await generateText({
  model: recorded,
  messages: [
    { role: 'user', content: 'Remember the word HERON-88 for me.' },
    ...first.response.messages,
    { role: 'user', content: 'SECOND-TURN: which word was it?' },
  ],
});

console.log(JSON.stringify({
  steps: withTool.steps.map((step) => ({
    text: step.text,
    toolCalls: step.toolCalls.map((c) => c.toolName),
    toolResults: step.toolResults.map((r) => r.output),
  })),
  finalText: withTool.text,
  firstAnswer: first.text,
  secondAnswer: second.text,
  inputTypes: sent.map((body) => (body.input || []).map((item) => item.type ?? item.role)),
}));
