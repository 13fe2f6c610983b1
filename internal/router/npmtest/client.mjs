// client.mjs calls the Crucible router with the official openai npm client
// and prints one JSON line per step; npm_test.go checks the lines.
//
//   CRUCIBLE_BASE_URL=http://127.0.0.1:8090/v1 CRUCIBLE_MODEL=baseline-oracle \
//   CRUCIBLE_PROMPT="..." node client.mjs
import OpenAI from "openai";

const baseURL = process.env.CRUCIBLE_BASE_URL;
const model = process.env.CRUCIBLE_MODEL;
const prompt = process.env.CRUCIBLE_PROMPT;
if (!baseURL || !model || !prompt) {
  console.error("client.mjs: set CRUCIBLE_BASE_URL, CRUCIBLE_MODEL and CRUCIBLE_PROMPT");
  process.exit(2);
}
const client = new OpenAI({ baseURL, apiKey: "sk-crucible-test", maxRetries: 0, timeout: 30_000 });
const print = (obj) => console.log(JSON.stringify(obj));

// 1. List the models.
const ids = [];
for await (const m of client.models.list()) {
  ids.push(m.id);
}
print({ step: "models", ids });

// 2. A chat completion.
const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: prompt }],
});
print({ step: "chat", model: chat.model, object: chat.object, content: chat.choices[0].message.content, finish: chat.choices[0].finish_reason });

// 3. The same chat completion, streamed.
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: prompt }],
  stream: true,
});
let content = "";
let chunks = 0;
let finish = null;
for await (const chunk of stream) {
  chunks++;
  content += chunk.choices[0]?.delta?.content ?? "";
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
print({ step: "stream", content, chunks, finish });

// 4. A legacy text completion.
const completion = await client.completions.create({ model, prompt: prompt + "\nAnswer:", max_tokens: 1 });
print({ step: "completion", text: completion.choices[0].text });

// 5. An unknown model is an API error, not a success.
try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
  print({ step: "error", status: 200 });
} catch (err) {
  print({ step: "error", status: err.status ?? 0, code: err.code ?? null, name: err.constructor.name });
}
