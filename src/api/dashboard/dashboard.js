// exo's dashboard, in the browser: polls the node's API for nodes, placements and downloads, and streams chat
// answers from /v1/chat/completions. Plain script (no modules, no CDN); every text from the cluster goes in
// through textContent, never as markup. With EXO_API_KEY set, a 401 asks for the key (kept for this tab).
(() => {
  const POLL_MS = 1000;
  const COLORS = ["#3b82f6", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"];
  const $ = (id) => document.getElementById(id);
  let key = sessionStorage.getItem("exo-api-key") ?? "";
  let locked = false;
  const seen = new Set();
  const history = [];

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (k === "style") node.style.cssText = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  async function api(path, init = {}) {
    const headers = { ...(init.headers ?? {}), ...(key ? { authorization: `Bearer ${key}` } : {}) };
    const res = await fetch(path, { ...init, headers });
    if (res.status === 401) {
      locked = true;
      $("keyform").style.display = "flex";
      throw new Error("this node needs its API key");
    }
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
    }
    return res;
  }
  const json = async (path) => (await api(path)).json();

  const gb = (mb) => `${(mb / 1024).toFixed(1)} GB`;

  function renderNodes(topology, net) {
    const box = $("nodes");
    const up = new Set(Object.keys(topology.nodes));
    for (const p of net?.peers ?? []) if (p.up) up.add(p.nodeId);
    for (const id of up) seen.add(id);
    for (const p of net?.peers ?? []) seen.add(p.nodeId);
    box.className = "";
    box.replaceChildren(
      ...[...seen].sort().map((id) => {
        const caps = topology.nodes[id];
        const links = (topology.peer_graph[id] ?? []).map((l) => l.to_id);
        const isUp = up.has(id);
        const name = el(
          "div",
          {},
          el("b", {}, id),
          id === net?.nodeId ? el("span", { class: "muted" }, " (this node)") : "",
        );
        const info = caps ? `${caps.chip} · ${gb(caps.memory)}` : "unknown";
        return el(
          "div",
          { class: "node", "data-node": id },
          el(
            "div",
            {},
            name,
            el("div", { class: "muted" }, info, links.length ? ` · links → ${links.join(", ")}` : ""),
          ),
          el("span", { class: isUp ? "up" : "down" }, isUp ? "up" : "down"),
        );
      }),
    );
  }

  function renderPlacements(list) {
    const box = $("models");
    box.className = list.length ? "" : "muted";
    if (!list.length) return box.replaceChildren("No model placed yet: send a chat message to place one.");
    box.replaceChildren(
      ...list.map((p) => {
        const split = el(
          "div",
          { class: "split" },
          ...p.stages.map((s, i) => {
            const n = s.layer_end - s.layer_start;
            const style = `flex:${n};background:${COLORS[i % COLORS.length]}`;
            return el("div", { style, title: `${s.node_id}: layers ${s.layer_start}–${s.layer_end - 1}` }, s.node_id);
          }),
        );
        const rows = p.stages.map((s) => {
          const state =
            s.phase === null ? "placed" : s.phase === "ready" ? "ready" : `${s.phase} ${Math.round(s.fraction * 100)}%`;
          const layers = `layers ${s.layer_start}–${s.layer_end - 1} (${s.layer_end - s.layer_start} of ${p.n_layers})`;
          return el("div", { class: "stage", "data-node": s.node_id }, `${s.node_id}: ${layers} · ${state}`);
        });
        const busy = p.requests_in_flight ? ` · ${p.requests_in_flight} request(s) in flight` : "";
        // ready, degraded or re-placing (issue 17), with why when it is not ready.
        const why = p.reason ? ` (${p.reason})` : "";
        const state = el("span", { class: `model-state ${p.state}`, "data-state": p.state }, ` · ${p.state}${why}`);
        return el(
          "div",
          { class: "placement", "data-model": p.model },
          el("b", {}, p.model),
          state,
          busy,
          split,
          ...rows,
        );
      }),
    );
  }

  function renderDownloads(progress) {
    const rows = Object.entries(progress ?? {}).map(([node, p]) => {
      const done = p.downloaded_bytes ?? 0;
      const total = p.total_bytes ?? 0;
      const pct = total > 0 ? Math.round((100 * done) / total) : 0;
      return el(
        "div",
        {},
        el("div", { class: "muted" }, `${node} downloading ${p.repo_id ?? "a model"}: ${pct}%`),
        el("div", { class: "bar" }, el("div", { style: `width:${pct}%` })),
      );
    });
    $("downloads").replaceChildren(...rows);
  }

  async function refreshModels() {
    const select = $("model");
    if (select.options.length) return;
    const models = (await json("/v1/models")).data;
    for (const m of models) select.append(el("option", { value: m.id }, m.id));
    const tiny = models.find((m) => m.id === "exo-tiny-chat");
    if (tiny) select.value = tiny.id;
  }

  async function poll() {
    if (!locked) {
      try {
        const [topology, placements, progress, net] = await Promise.all([
          json("/topology"),
          json("/v1/placements"),
          json("/v1/download/progress"),
          json("/debug/net").catch(() => null),
        ]);
        if (net?.nodeId) $("self").textContent = `node ${net.nodeId}`;
        renderNodes(topology, net);
        renderPlacements(placements.placements);
        renderDownloads(progress);
        await refreshModels();
        $("status").textContent = "";
      } catch (err) {
        $("status").textContent = err.message;
      }
    }
    setTimeout(poll, POLL_MS);
  }

  function addMessage(who, text) {
    const body = el("span", {}, text);
    const row = el("div", { class: `msg ${who}` }, el("b", {}, who === "user" ? "you" : "exo"), body);
    $("messages").append(row);
    return body;
  }

  /** Reads an SSE body and calls onData with each `data:` payload. */
  async function readEvents(res, onData) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut = buffer.indexOf("\n\n");
      while (cut >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of frame.split("\n")) if (line.startsWith("data: ")) onData(line.slice(6));
        cut = buffer.indexOf("\n\n");
      }
    }
  }

  async function send(text) {
    history.push({ role: "user", content: text });
    addMessage("user", text);
    const answer = addMessage("assistant", "");
    answer.classList.add("streaming");
    $("send").disabled = true;
    let reply = "";
    try {
      const res = await api("/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: $("model").value, messages: history, stream: true, temperature: 0 }),
      });
      await readEvents(res, (data) => {
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        reply += chunk.choices?.[0]?.delta?.content ?? "";
        answer.textContent = reply;
      });
      history.push({ role: "assistant", content: reply });
    } catch (err) {
      answer.classList.add("error");
      answer.textContent = `${reply}${reply ? " " : ""}[${err.message}]`;
      history.pop();
    } finally {
      answer.classList.remove("streaming");
      answer.classList.add("done");
      $("send").disabled = false;
    }
  }

  $("chatform").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("prompt").value.trim();
    if (!text) return;
    $("prompt").value = "";
    void send(text);
  });
  $("keyform").addEventListener("submit", (event) => {
    event.preventDefault();
    key = $("key").value.trim();
    sessionStorage.setItem("exo-api-key", key);
    locked = false;
    $("keyform").style.display = "none";
    $("status").textContent = "";
  });
  void poll();
})();
