#!/usr/bin/env bash
# The main job in one command: set up this machine, start a 3-node exo cluster on loopback from
# configs/demo-3-nodes.yaml, ask the embedded model one question with curl, print the answer, stop the nodes.
# EXO_BIN=dist/exo uses the compiled executable instead of the sources; EXO_DEMO_PROMPT changes the question.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
exo=(bun src/main.ts)
[ -n "${EXO_BIN:-}" ] && exo=("$EXO_BIN")
prompt=${EXO_DEMO_PROMPT:-"count from 3 to 9"}
work=$(mktemp -d)
pids=()

stop_nodes() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stop_nodes EXIT

# Polls a shell condition for up to $1 seconds; on timeout prints the nodes' logs and fails.
wait_until() {
  local seconds=$1 what=$2; shift 2
  for _ in $(seq $((seconds * 10))); do
    if "$@"; then return 0; fi
    for i in 1 2 3; do
      if [ -n "${pids[$((i - 1))]:-}" ] && ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
        echo "node n$i exited early; its log:" >&2; cat "$work/n$i.log" >&2; exit 1
      fi
    done
    sleep 0.1
  done
  echo "timed out after ${seconds}s waiting for $what; node logs:" >&2
  for i in 1 2 3; do echo "--- n$i" >&2; cat "$work/n$i.log" >&2; done
  exit 1
}

json() { bun -e "const v = await Bun.stdin.json(); console.log($1)"; }
all_ready() { for i in 1 2 3; do grep -q '"event":"ready"' "$work/n$i.out" || return 1; done; }
all_linked() { [ "$(curl -sf http://127.0.0.1:52415/topology | json 'Object.keys(v.nodes ?? {}).length')" = 3 ]; }

echo "starting 3 nodes (node ports 50051-50053, API ports 52415-52417)"
for i in 1 2 3; do
  EXO_HOME="$work/home-n$i" "${exo[@]}" start --config configs/demo-3-nodes.yaml --node-id "n$i" \
    --api-port $((52414 + i)) >"$work/n$i.out" 2>"$work/n$i.log" &
  pids+=($!)
done
wait_until 60 "the ready lines" all_ready
wait_until 30 "the three nodes to link up" all_linked
echo "cluster up: n1, n2, n3"

echo "asking exo-tiny-chat on n1: $prompt"
body=$(printf '{"model":"exo-tiny-chat","messages":[{"role":"user","content":"%s"}],"max_tokens":48,"temperature":0}' "$prompt")
answer=$(curl -sS --fail-with-body --max-time 300 http://127.0.0.1:52415/v1/chat/completions \
  -H "Content-Type: application/json" -d "$body")
echo "answer: $(echo "$answer" | json 'v.choices[0].message.content')"
echo "stopping the nodes"
