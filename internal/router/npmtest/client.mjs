// client.mjs calls a Crucible router or model server with the official
// openai npm client and prints one JSON line per step; npm_test.go checks
// the lines.
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

// 6. A streamed text completion: the SDK must yield the text, then usage.
const cstream = await client.completions.create({
  model, prompt: prompt + "\nAnswer:", max_tokens: 1, stream: true, stream_options: { include_usage: true },
});
let ctext = "";
let cusage = null;
for await (const chunk of cstream) {
  ctext += chunk.choices[0]?.text ?? "";
  cusage = chunk.usage ?? cusage;
}
print({ step: "completion_stream", text: ctext, completion_tokens: cusage?.completion_tokens ?? null });

// 7. A streamed chat completion with include_usage.
const ustream = await client.chat.completions.create({
  model, messages: [{ role: "user", content: prompt }], stream: true, stream_options: { include_usage: true },
});
let ucontent = "";
let uusage = null;
for await (const chunk of ustream) {
  ucontent += chunk.choices[0]?.delta?.content ?? "";
  uusage = chunk.usage ?? uusage;
}
print({ step: "chat_usage", content: ucontent, has_usage: uusage !== null && uusage.total_tokens > 0 });

// 8. models.retrieve, for a served and an unknown model.
const got = await client.models.retrieve(model);
print({ step: "retrieve", id: got.id, object: got.object });
try {
  await client.models.retrieve("no-such-model");
  print({ step: "retrieve_missing", status: 200 });
} catch (err) {
  print({ step: "retrieve_missing", status: err.status ?? 0, code: err.code ?? null });
}

// 9. n choices.
const many = await client.chat.completions.create({ model, messages: [{ role: "user", content: prompt }], n: 3 });
print({ step: "n", choices: many.choices.length, same: many.choices.every((c) => c.message.content === chat.choices[0].message.content) });

// 10. Chat logprobs with top_logprobs.
const lp = await client.chat.completions.create({
  model, messages: [{ role: "user", content: prompt }], logprobs: true, top_logprobs: 2,
});
const content_lp = lp.choices[0].logprobs?.content ?? [];
print({
  step: "logprobs",
  tokens_join: content_lp.map((t) => t.token).join(""),
  tops: [...new Set(content_lp.map((t) => t.top_logprobs.length))],
});

// 11. Embeddings (the SDK asks for base64 and decodes it).
const emb = await client.embeddings.create({ model, input: ["the cat sat", "a dog ran"] });
print({ step: "embeddings", count: emb.data.length, dims: emb.data[0].embedding.length, head: emb.data[0].embedding.slice(0, 4) });

// 12. /healthz beside the API root.
const hz = await fetch(new URL("/healthz", baseURL));
print({ step: "healthz", status: hz.status });
