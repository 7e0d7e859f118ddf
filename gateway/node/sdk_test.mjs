// sdk_test.mjs -- the official OpenAI and Anthropic Node.js SDKs against
// lane-gateway: a normal and a streaming request each, one of each pair
// crossing formats, then tool calls across formats, whole and streamed,
// read with each SDK's own helpers. Prints one JSON object:
// {name: {text, model, how}}.
// Run by ../t_gateway.py as: node sdk_test.mjs http://127.0.0.1:PORT
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const base = process.argv[2];
const out = {};
const free = { 'x-lane-field-tier': 'free' };
const code = { 'x-lane-field-tier': 'enterprise', 'x-lane-field-task': 'code' };

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-client-key-not-forwarded',
                            maxRetries: 0, timeout: 20000 });
const anthropic = new Anthropic({ baseURL: base, apiKey: 'sk-ant-client-key-not-forwarded',
                                  maxRetries: 0, timeout: 20000 });

async function run(name, how, fn) {
  try {
    out[name] = { how, ...(await fn()) };
  } catch (e) {
    out[name] = { how, error: String(e) };
  }
}

await run('openai', 'chat.completions.create (OpenAI model)', async () => {
  const { data, response } = await openai.chat.completions
    .create({ model: 'gpt-4o', max_tokens: 100,
              messages: [{ role: 'user', content: 'sdk1 hello' }] }, { headers: free })
    .withResponse();
  return { text: data.choices[0].message.content, model: response.headers.get('x-lane-model') };
});

await run('openai_stream', 'chat.completions.create stream (Anthropic model)', async () => {
  const { data: stream, response } = await openai.chat.completions
    .create({ model: 'gpt-4o', max_tokens: 100, stream: true,
              messages: [{ role: 'system', content: 'Be brief.' },
                         { role: 'user', content: 'sdk2 hello' }] }, { headers: code })
    .withResponse();
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  return { text, model: response.headers.get('x-lane-model') };
});

await run('anthropic', 'messages.create (Anthropic model)', async () => {
  const { data, response } = await anthropic.messages
    .create({ model: 'claude-sonnet-4-5', max_tokens: 100, system: 'Be brief.',
              messages: [{ role: 'user', content: 'sdk3 hello' }] }, { headers: code })
    .withResponse();
  return { text: data.content.map((b) => b.text).join(''),
           model: response.headers.get('x-lane-model') };
});

await run('anthropic_stream', 'messages.create stream (OpenAI model)', async () => {
  const { data: stream, response } = await anthropic.messages
    .create({ model: 'claude-haiku-4-5', max_tokens: 100, stream: true,
              messages: [{ role: 'user', content: 'sdk4 hello' }] }, { headers: free })
    .withResponse();
  let text = '';
  for await (const ev of stream)
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
  return { text, model: response.headers.get('x-lane-model') };
});

// What the gateway says of an answer: the model, and the candidates given up.
const lane = (response) => ({ model: response.headers.get('x-lane-model'),
                              fallbacks: response.headers.get('x-lane-fallbacks'),
                              attempts: response.headers.get('x-lane-attempts'),
                              cost: response.headers.get('x-lane-cost') });

// Tool calls across formats: each SDK's own helpers read the tool call the
// other format's model made (the fake answers 'call:get_weather' with one).
const weather = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };

await run('openai_tools', 'chat.completions.create with tools (Anthropic model)', async () => {
  const { data, response } = await openai.chat.completions
    .create({ model: 'gpt-4o', max_tokens: 100,
              tools: [{ type: 'function',
                        function: { name: 'get_weather', parameters: weather } }],
              messages: [{ role: 'user', content: 'sdk5 weather? call:get_weather' }] },
            { headers: code })
    .withResponse();
  const call = data.choices[0].message.tool_calls[0];
  return { text: `${call.function.name} ${JSON.parse(call.function.arguments).city}`,
           ...lane(response) };
});

await run('openai_tools_stream', 'chat.completions.stream with tools (Anthropic model)', async () => {
  const runner = openai.chat.completions.stream(
    { model: 'gpt-4o', max_tokens: 100,
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: weather } }],
      messages: [{ role: 'user', content: 'sdk6 weather? call:get_weather' }] },
    { headers: code });
  const done = await runner.finalChatCompletion();
  const call = done.choices[0].message.tool_calls[0];
  return { text: `${call.function.name} ${JSON.parse(call.function.arguments).city}`,
           model: 'stream' };
});

await run('anthropic_tools', 'messages.create with tools (OpenAI model)', async () => {
  const { data, response } = await anthropic.messages
    .create({ model: 'claude-haiku-4-5', max_tokens: 100,
              tools: [{ name: 'get_weather', input_schema: weather }],
              messages: [{ role: 'user', content: 'sdk7 weather? call:get_weather' }] },
            { headers: free })
    .withResponse();
  const use = data.content.find((b) => b.type === 'tool_use');
  return { text: `${use.name} ${use.input.city} ${data.stop_reason}`, ...lane(response) };
});

await run('anthropic_tools_stream', 'messages.stream with tools (OpenAI model)', async () => {
  const { data: stream, response } = await anthropic.messages.stream(
    { model: 'claude-haiku-4-5', max_tokens: 100,
      tools: [{ name: 'get_weather', input_schema: weather }],
      messages: [{ role: 'user', content: 'sdk8 weather? call:get_weather' }] },
    { headers: free }).withResponse();
  const msg = await stream.finalMessage();
  const use = msg.content.find((b) => b.type === 'tool_use');
  return { text: `${use.name} ${use.input.city} ${msg.stop_reason}`, ...lane(response) };
});

console.log(JSON.stringify(out));
