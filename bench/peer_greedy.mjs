// Greedy text from llama.cpp (node-llama-cpp) for GGUF files, to check that files written by
// `eurollm quantize` load in llama.cpp and decode as libeurollm decodes them:
//   node bench/peer_greedy.mjs "PROMPT" N FILE.gguf...
//   build/eurollm generate FILE.gguf -p "PROMPT" -n N --temp 0      # ours, for comparison
// The prompt is tokenized with BOS, as `eurollm generate` does.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [prompt, n, ...files] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
for (const file of files) {
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: 512 });
  const out = [];
  const input = [model.tokens.bos, ...model.tokenize(prompt, true)];
  for await (const t of context.getSequence().evaluate(input, { temperature: 0 })) {
    out.push(t);
    if (out.length >= Number(n)) break;
  }
  console.log(`${file}\t${JSON.stringify(model.detokenize(out))}`);
  await context.dispose();
  await model.dispose();
}
