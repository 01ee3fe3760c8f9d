// The llama.cpp side of the benchmark, through node-llama-cpp's prebuilt CPU libraries.
//   node bench/peer_llama_cpp.mjs MODEL.gguf [--prompt-tokens P] [--gen-tokens G] [--threads T] [--reps R]
//                                            [--embed-texts E --embed-tokens L]
// Mirrors `eurollm bench --format json`: load_s, prefill_tok_s (P tokens in one batch from an empty
// cache), decode_tok_s (G tokens one at a time, greedy), peak_rss_mb, embed_tok_s (E token lists of
// L tokens through an embedding context, one list per call as node-llama-cpp offers it); medians
// over R repetitions.
import process from "node:process";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const args = process.argv.slice(2);
const modelPath = args[0];
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const P = opt("--prompt-tokens", 512), G = opt("--gen-tokens", 128), T = opt("--threads", 2), R = opt("--reps", 3);
const E = opt("--embed-texts", 0), L = opt("--embed-tokens", 0);
const median = (v) => { const s = [...v].sort((a, b) => a - b); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
const now = () => Number(process.hrtime.bigint()) / 1e9;

const llama = await getLlama({ gpu: false, build: "never", maxThreads: T, logLevel: LlamaLogLevel.error });
const t0 = now();
const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
const load_s = now() - t0;
const context = await model.createContext({ contextSize: P + G + 16, batchSize: P, threads: { ideal: T, min: T }, sequences: 1 });
const seq = context.getSequence();
const span = Math.min(model.tokens ? 250 : 250, 250);
const tokens = Array.from({ length: P }, (_, i) => 3 + ((i * 7919) % span));

const prefill = [], decode = [];
for (let r = 0; r < R; ++r) {
  await seq.clearHistory();
  const p0 = now();
  await seq.evaluateWithoutGeneratingNewTokens(tokens);
  prefill.push(P / (now() - p0));
  if (G > 0) {
    let n = 0;
    const d0 = now();
    for await (const tok of seq.evaluate([3], { temperature: 0 })) {
      if (++n >= G) break;
    }
    decode.push(n / (now() - d0));
  }
}
await context.dispose();
const embed = [];
if (E > 0 && L > 0) {
  const ectx = await model.createEmbeddingContext({ contextSize: L + 16, batchSize: L, threads: T });
  const lists = Array.from({ length: E }, (_, t) => Array.from({ length: L }, (_, i) => 3 + ((i * 7919 + t * 13) % span)));
  for (let r = 0; r < R; ++r) {
    const e0 = now();
    for (const l of lists) await ectx.getEmbeddingFor(l);
    embed.push((E * L) / (now() - e0));
  }
  await ectx.dispose();
}
const peak_rss_mb = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify({
  engine: "llama.cpp (node-llama-cpp)", model: modelPath, threads: T, prompt_tokens: P, gen_tokens: G, reps: R,
  load_s, prefill_tok_s: median(prefill), decode_tok_s: G > 0 ? median(decode) : 0, peak_rss_mb,
  prefill_tok_s_all: prefill, decode_tok_s_all: decode, embed_texts: E, embed_tokens: L,
  embed_tok_s: embed.length ? median(embed) : 0,
}));
await model.dispose();
