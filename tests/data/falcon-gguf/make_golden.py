#!/usr/bin/env python3
"""Writes llama_cpp_greedy.json: what llama.cpp computes on the exported tiny Falcon GGUF.

Usage (see README.md):
  make_golden.py LLAMA_CPP_BIN_DIR FALCON_GGUF GGUF_XXH3 [MULTIPLIER] > llama_cpp_greedy.json
GGUF_XXH3: the GGUF's XXH3-64 as llama_cpp_golden_test.cc prints it. The prompt is the ids
(i * MULTIPLIER + 7) % 1257 (default 89): llama-server reports no probabilities for a token that
ends inside a UTF-8 character, so a prompt whose greedy tokens never do is chosen.
Runs llama-server (for token ids and log-probabilities) and llama-cli (for greedy text), both on
one thread; only the Python standard library.
"""
import json, os, shlex, subprocess, sys, time, urllib.request

bin_dir, gguf, digest = sys.argv[1], sys.argv[2], sys.argv[3]
multiplier = int(sys.argv[4]) if len(sys.argv) > 4 else 89
name = os.path.basename(gguf)
PORT = 18931
PROMPT = [(i * multiplier + 7) % 1257 for i in range(24)]  # ids of real pieces (the vocabulary pads to 1264)
TOP = 5
CLI_PROMPT = "Hello, world! How are you?"
CLI_N = 16
SERVER = [f"{bin_dir}/llama-server", "-m", gguf, "-t", "1", "--port", str(PORT), "-c", "64",
          "-np", "1", "--no-warmup"]
CLI = [f"{bin_dir}/llama-cli", "-m", gguf, "-p", CLI_PROMPT, "-n", str(CLI_N), "--temp", "0",
       "-t", "1", "-no-cnv", "--no-warmup", "--simple-io"]


def completion(prompt, n):
    body = json.dumps({"prompt": prompt, "n_predict": n, "temperature": 0, "n_probs": TOP,
                       "cache_prompt": False, "ignore_eos": True}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/completion", body,
                                 {"Content-Type": "application/json"})
    probabilities = json.load(urllib.request.urlopen(req)).get("completion_probabilities", [])
    if len(probabilities) != n:
        sys.exit(f"llama-server left out probabilities (a token inside a UTF-8 character?) for "
                 f"{prompt}: try another MULTIPLIER")
    return probabilities


def step(p):
    return {"id": p["id"],
            "top": [{"id": t["id"], "prob": round(2.718281828459045 ** t["logprob"], 6)}
                    for t in p["top_logprobs"]]}


server = subprocess.Popen(SERVER, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health")
            break
        except Exception:
            time.sleep(0.2)
    # The next-token distribution after every prefix of the prompt, then 16 greedy steps.
    prefixes = [step(completion(PROMPT[:k], 1)[0]) for k in range(1, len(PROMPT) + 1)]
    greedy = [step(p) for p in completion(PROMPT, 16)]
finally:
    server.terminate()
    server.wait()
cli = subprocess.run(CLI, capture_output=True, check=True).stdout  # bytes: maybe not UTF-8
json.dump({
    "provenance": "llama.cpp c392e5094 (Release, GGML_NATIVE, CPU), one thread: "
                  + shlex.join(["llama-server", "-m", name] + SERVER[3:])
                  + " then POST /completion {prompt: ids, n_predict, temperature 0, n_probs "
                  + str(TOP) + ", cache_prompt false, ignore_eos true} per prefix and for 16 steps; "
                  + shlex.join(["llama-cli", "-m", name] + CLI[3:]),
    "gguf_xxh3": digest,
    "prompt_ids": PROMPT,
    "prefix_steps": prefixes,
    "steps": greedy,
    "prob_tolerance": 0.003,  # observed: 1e-3 (llama.cpp: tanh GELU via an f16 table, f16 KV)
    "cli_prompt": CLI_PROMPT,
    "cli_n_predict": CLI_N,
    "cli_output_bytes": list(cli),
}, sys.stdout, indent=1)
