// The official OpenAI SDK (npm `openai`) as a client of `kotsu serve`: lists the models and asks for
// completions and chat completions, whole and streamed, and prints what the SDK parsed as one JSON
// object. Usage: node openai_sdk.js SDK_DIR BASE_URL MODEL
const [sdkDir, baseURL, model] = process.argv.slice(2);
const sdk = require(sdkDir);
const OpenAI = sdk.OpenAI || sdk.default || sdk;

async function main() {
  const client = new OpenAI({ apiKey: "unused", baseURL, maxRetries: 0, timeout: 60000 });
  const out = {};
  const list = await client.models.list();
  out.models = [];
  for await (const m of list) out.models.push({ id: m.id, object: m.object, owned_by: m.owned_by });
  const one = await client.models.retrieve(model);
  out.retrieved = one.id;

  const c = await client.completions.create({ model, prompt: "hello world", max_tokens: 8, temperature: 0 });
  out.completion = { text: c.choices[0].text, finish_reason: c.choices[0].finish_reason, usage: c.usage };
  let streamed = "", streamedFinish = null;
  for await (const chunk of await client.completions.create({ model, prompt: "hello world", max_tokens: 8, temperature: 0, stream: true })) {
    streamed += chunk.choices[0].text || "";
    if (chunk.choices[0].finish_reason) streamedFinish = chunk.choices[0].finish_reason;
  }
  out.completion_stream = { text: streamed, finish_reason: streamedFinish };

  const messages = [{ role: "user", content: "hi" }];
  const chat = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 });
  out.chat = { content: chat.choices[0].message.content, role: chat.choices[0].message.role, finish_reason: chat.choices[0].finish_reason };
  let chatStreamed = "", chatFinish = null;
  for await (const chunk of await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0, stream: true })) {
    chatStreamed += (chunk.choices[0].delta && chunk.choices[0].delta.content) || "";
    if (chunk.choices[0].finish_reason) chatFinish = chunk.choices[0].finish_reason;
  }
  out.chat_stream = { content: chatStreamed, finish_reason: chatFinish };
  try {
    await client.completions.create({ model: "no-such-model", prompt: "x", max_tokens: 2 });
    out.error = null;
  } catch (e) {
    out.error = { status: e.status, message: e.message };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write(`openai_sdk.js: ${e.stack || e}\n`);
  process.exit(1);
});
