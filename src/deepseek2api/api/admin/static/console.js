/* DeepSeek2API console. Plain JS, no build step, no third-party code.
 *
 * The admin key lives in sessionStorage (this tab only) and goes out as an Authorization header on
 * every call: no cookie, so no request can carry it without this script (no CSRF). Everything shown
 * comes from /admin/api and is put on the page with textContent, never as HTML.
 */
"use strict";

(function () {
  const PREFIX = document.body.dataset.prefix || "/admin";
  const API = PREFIX + "/api";
  const KEY_STORE = "deepseek2api.admin.key";
  const REFRESH_MS = 2000;
  const TAIL_ROWS = 200;
  const TIMED = new Set(["cooling", "muted", "recovering"]);

  let key = sessionStorage.getItem(KEY_STORE);
  let clockOffset = 0; // server time - local time, seconds
  let refreshTimer = null;
  let tickTimer = null;
  let tailAbort = null;
  let lastAccounts = "";
  let lastProxies = "";
  let accountIds = [];

  const $ = (id) => document.getElementById(id);

  // ---- small helpers --------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("data-")) node.setAttribute(name, String(value));
      else node[name] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function now() { return Date.now() / 1000 + clockOffset; }

  function clock(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(s).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    seconds = Math.max(0, seconds);
    if (seconds < 60) return `${Math.round(seconds)}s`;
    if (seconds < 3600) return `${Math.round(seconds / 60)}m`;
    if (seconds < 86400) return `${(seconds / 3600).toFixed(1)}h`;
    return `${(seconds / 86400).toFixed(1)}d`;
  }

  function ago(when) { return when ? `${age(now() - when)} ago` : "never"; }
  function secs(value) { return value === null || value === undefined ? "–" : `${value.toFixed(2)}s`; }

  function toast(message, bad) {
    const node = $("toast");
    node.textContent = message;
    node.classList.toggle("bad", !!bad);
  }

  class Refused extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, options) {
    const opts = Object.assign({ method: "GET" }, options || {});
    const headers = { Authorization: `Bearer ${key}` };
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.body);
    }
    opts.headers = headers;
    opts.cache = "no-store";
    opts.credentials = "omit";
    const response = await fetch(API + path, opts);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.status === 401 || response.status === 403) {
      const message = data && data.error ? data.error.message : "not allowed";
      logout(message);
      throw new Refused(response.status, message);
    }
    if (!response.ok) {
      throw new Refused(response.status, data && data.error ? data.error.message : `HTTP ${response.status}`);
    }
    return data;
  }

  // ---- login ----------------------------------------------------------------------------

  async function login(candidate) {
    key = candidate;
    try {
      const me = await api("/whoami");
      sessionStorage.setItem(KEY_STORE, key);
      $("s-key").textContent = me.key_name;
      start();
    } catch (error) {
      if (!(error instanceof Refused)) logout("The gateway did not answer.");
    }
  }

  function logout(message) {
    key = null;
    sessionStorage.removeItem(KEY_STORE);
    clearInterval(refreshTimer); clearInterval(tickTimer);
    refreshTimer = tickTimer = null;
    if (tailAbort) { tailAbort.abort(); tailAbort = null; }
    lastAccounts = lastProxies = "";
    $("console").hidden = true; $("logout").hidden = true; $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("key").value = "";
  }

  function start() {
    $("login").hidden = true; $("console").hidden = false; $("logout").hidden = false;
    $("login-error").textContent = "";
    refresh();
    loadModels();
    refreshTimer = setInterval(refresh, REFRESH_MS);
    tickTimer = setInterval(tick, 1000);
    openTail();
  }

  // ---- periodic refresh -----------------------------------------------------------------

  async function refresh() {
    if (!key) return;
    try {
      const [summary, accounts, proxies, upstream] = await Promise.all(
        [api("/summary"), api("/accounts"), api("/proxies"), api("/upstream").catch(() => null)]);
      clockOffset = summary.now - Date.now() / 1000;
      renderSummary(summary);
      if (upstream && upstream.available !== false) renderUpstream(upstream);
      renderAccounts(accounts.accounts);
      renderProxies(proxies.proxies);
    } catch (error) {
      if (!(error instanceof Refused)) toast("Lost contact with the gateway; retrying…", true);
    }
  }

  function renderSummary(s) {
    $("s-mode").textContent = s.mode;
    $("s-streams").textContent = `${s.in_flight} / ${s.capacity}`;
    $("s-queue").textContent = s.queue_limit ? `${s.queue_depth} / ${s.queue_limit}` : String(s.queue_depth);
    $("s-rps").textContent = s.requests_per_second.toFixed(2);
    $("s-errors").textContent = `${(s.error_rate * 100).toFixed(1)}%`;
    $("s-ttft").textContent = `${secs(s.ttft_p50)} / ${secs(s.ttft_p95)}`;
    renderCluster(s.cluster || null);
    // DeepSeek refuses our client version: every request fails until the identity changes
    const gate = s.version_gate, banner = $("gate-banner");
    banner.hidden = !(gate && gate.refused);
    if (gate && gate.refused) {
      banner.textContent = `DeepSeek refuses the gateway's client version (${gate.identity}; ${gate.message}). ` +
        "Every request fails until you pick a newer version in the Upstream panel below or set " +
        "upstream.client_version in the config.";
    }
  }

  let lastUpstream = "";
  function renderUpstream(u) {
    const signature = JSON.stringify(u);
    if (signature === lastUpstream) return;
    lastUpstream = signature;
    $("upstream-sent").textContent = `${u.sent} (from the ${u.source})`;
    const select = $("upstream-persona");
    if (document.activeElement !== select && document.activeElement !== $("upstream-version")) {
      select.replaceChildren(...u.identity.personas.map((p) => el("option", { value: p }, p)));
      select.value = u.identity.persona;
      $("upstream-version").value = u.identity.version;
    }
    const shapes = u.drift.shapes.map((d) => `${d.kind} ${d.shape}`);
    $("upstream-drift").textContent = shapes.length ? shapes.join(", ") : "none";
  }

  async function saveUpstream(event) {
    event.preventDefault();
    try {
      const view = await api("/upstream/identity", { method: "PUT",
        body: { persona: $("upstream-persona").value, version: $("upstream-version").value.trim() || null } });
      toast(`Upstream identity: ${view.sent}`);
    } catch (error) {
      toast(`Upstream identity: ${error.message}`, true);
    }
    lastUpstream = ""; refresh();
  }

  async function resetUpstream() {
    try {
      const view = await api("/upstream/identity", { method: "DELETE" });
      toast(`Upstream identity back to the config's: ${view.sent}`);
    } catch (error) {
      toast(`Upstream identity: ${error.message}`, true);
    }
    lastUpstream = ""; refresh();
  }

  // Cluster mode only (the shared pool on Redis): replicas with their heartbeat age, queue, leases.
  function renderCluster(c) {
    const clustered = c !== null;
    $("cluster").hidden = !clustered; $("cluster-link").hidden = !clustered; $("s-replicas-stat").hidden = !clustered;
    // accounts come from every replica's config.json in cluster mode: no runtime import
    $("import").hidden = clustered; $("import-link").hidden = clustered;
    if (!clustered) return;
    const alive = c.replicas.filter((r) => r.alive).length;
    $("s-replicas").textContent = `${alive} / ${c.replicas.length}`;
    $("cluster-name").textContent = c.name;
    const redis = $("cluster-redis");
    redis.textContent = c.available ? "redis reachable" : "redis unreachable";
    redis.className = `chip ${c.available ? "reachable" : "unreachable"}`;
    $("cluster-here").textContent = c.replica;
    $("cluster-waiting").textContent = String(c.waiting);
    $("cluster-leases").textContent = `${c.leases} (${c.leases_here} here)`;
    $("cluster-reaped").textContent = String(c.reaped);
    const recovering = c.recovering > 0;
    $("cluster-recovering").hidden = !recovering;
    const chip = $("cluster-recovering-chip");
    if (recovering) {
      chip.setAttribute("data-state", "recovering");
      chip.setAttribute("data-until", String(now() + c.recovering));
      chip.textContent = chipText("recovering", now() + c.recovering);
    } else {
      chip.removeAttribute("data-until");
    }
    $("cluster-table").tBodies[0].replaceChildren(...c.replicas.map((r) => el("tr", { class: r.this ? "this" : null,
      "data-replica": r.id },
      el("td", {}, r.id, r.this ? el("span", { class: "muted" }, " (this replica)") : null),
      el("td", {}, el("span", { class: `chip ${r.alive ? "alive" : "gone"}` }, r.alive ? "alive" : "gone")),
      el("td", {}, `${r.heartbeat_age.toFixed(1)}s ago`))));
  }

  function stateChip(state, until) {
    const chip = el("span", { class: `chip ${state}`, "data-state": state });
    if (TIMED.has(state) && until) chip.setAttribute("data-until", String(until));
    chip.textContent = chipText(state, until);
    return chip;
  }

  function chipText(state, until) {
    if (!TIMED.has(state) || !until) return state.replace("_", " ");
    const left = until - now();
    return left > 0 ? `${state} ${clock(left)}` : `${state} (ending)`;
  }

  function tick() {
    for (const chip of document.querySelectorAll("[data-until]")) {
      chip.textContent = chipText(chip.dataset.state, Number(chip.dataset.until));
    }
    for (const cell of document.querySelectorAll("[data-since]")) {
      cell.textContent = ago(Number(cell.dataset.since));
    }
  }

  function actionButton(label, action, id, extraClass) {
    return el("button", { type: "button", class: extraClass, "data-action": action, "data-id": id }, label);
  }

  function renderAccounts(accounts) {
    const signature = JSON.stringify(accounts);
    if (signature === lastAccounts) return;
    lastAccounts = signature;
    const body = $("accounts-table").tBodies[0];
    const rows = accounts.map((a) => {
      const actions = el("td", { class: "actions" },
        actionButton("Test", "test", a.id),
        a.login !== "token" ? actionButton("Re-login", "relogin", a.id) : null,
        actionButton("Set token", "token", a.id),
        actionButton("Probe", "probe", a.id),
        TIMED.has(a.state) ? actionButton("Clear cool-down", "clear-cooldown", a.id) : null,
        a.state === "disabled" ? actionButton("Enable", "enable", a.id) : actionButton("Disable", "disable", a.id),
        a.source === "runtime" ? actionButton("Remove", "remove", a.id, "danger") : null);
      return el("tr", { "data-account": a.id },
        el("td", {}, a.id, a.source === "runtime" ? el("span", { class: "muted" }, " (added)") : null),
        el("td", { class: "wrap state" }, stateChip(a.state, a.until),
          a.reason ? el("div", { class: "reason muted" }, a.reason) : null),
        actions,
        el("td", {}, String(a.in_use)),
        el("td", { "data-since": a.last_success || null }, ago(a.last_success)),
        el("td", { class: "wrap" }, a.last_error ? `${a.last_error} (${ago(a.last_error_at)})` : "–"),
        el("td", {}, a.token_obtained_at !== null ? age(now() - a.token_obtained_at) : a.has_token ? "shared" : "no token"),
        el("td", {}, a.proxy),
        el("td", {}, `${a.requests} / ${a.failures}`),
        el("td", {}, String(a.empty_answers || 0)));
    });
    body.replaceChildren(...rows);
    const counts = {};
    for (const a of accounts) counts[a.state] = (counts[a.state] || 0) + 1;
    $("accounts-count").textContent = `${accounts.length} · ` +
      Object.entries(counts).map(([state, n]) => `${n} ${state.replace("_", " ")}`).join(", ");
    const ids = accounts.map((a) => a.id);
    if (ids.join("\n") !== accountIds.join("\n")) {
      accountIds = ids;
      const select = $("tester-account");
      const chosen = select.value;
      select.replaceChildren(el("option", { value: "" }, "any (as a normal request)"),
        ...ids.map((id) => el("option", { value: id }, id)));
      select.value = ids.includes(chosen) ? chosen : "";
    }
  }

  function renderProxies(proxies) {
    const signature = JSON.stringify(proxies);
    if (signature === lastProxies) return;
    lastProxies = signature;
    $("proxies-empty").hidden = proxies.length > 0;
    $("proxies-table").hidden = proxies.length === 0;
    $("proxies-table").tBodies[0].replaceChildren(...proxies.map((p) => {
      const chip = el("span", { class: `chip ${p.state}`, "data-state": p.state }, p.state);
      if (p.state === "quarantined" && p.quarantine_until) {
        chip.setAttribute("data-until", String(p.quarantine_until));
        chip.textContent = chipText("quarantined", p.quarantine_until);
      }
      return el("tr", { "data-proxy": p.index },
        el("td", {}, String(p.index)), el("td", {}, p.proxy), el("td", {}, chip),
        el("td", {}, String(p.in_use)), el("td", {}, String(p.picks)), el("td", {}, String(p.failures)),
        el("td", {}, actionButton("Test", "test-proxy", String(p.index))));
    }));
  }

  // The countdown for quarantined proxies uses the same ticker as account chips.
  TIMED.add("quarantined");

  // ---- actions --------------------------------------------------------------------------

  async function onAccountAction(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const id = button.dataset.id, action = button.dataset.action;
    const path = `/accounts/${encodeURIComponent(id)}`;
    if (action === "remove" && !window.confirm(`Remove ${id} from the pool?`)) return;
    let token = null;
    if (action === "token") {  // the value of `userToken` from a browser where the account is logged in
      token = window.prompt(`Token for ${id}: the "value" of userToken in chat.deepseek.com's local storage`);
      if (!token || !token.trim()) return;
    }
    button.disabled = true;
    toast(`${action} ${id}…`);
    try {
      let result;
      if (action === "remove") result = await api(path, { method: "DELETE" });
      else if (action === "token") result = await api(`${path}/token`, { method: "POST", body: { token } });
      else result = await api(`${path}/${action}`, { method: "POST" });
      if (action === "probe") {
        const steps = result.steps.map((st) => `${st.name} ${st.ok ? "ok" : "FAILED"}: ${st.detail}`).join(" · ");
        toast(`probe ${id}: ${result.ok ? "passed" : "failed"} — ${steps}`, !result.ok);
      } else if (result && result.ok === false) toast(`${action} ${id}: failed — ${result.message}`, true);
      else toast(`${action} ${id}: ${result && result.message ? result.message : "done"}`);
    } catch (error) {
      if (!(error instanceof Refused) || error.status !== 401) toast(`${action} ${id}: ${error.message}`, true);
    } finally {
      button.disabled = false;
      lastAccounts = "";
      refresh();
    }
  }

  async function onProxyAction(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    button.disabled = true;
    try {
      const result = await api(`/proxies/${button.dataset.id}/test`, { method: "POST" });
      toast(`proxy #${button.dataset.id}: ${result.ok ? "works" : "failed"} — ${result.message}`, !result.ok);
    } catch (error) {
      toast(`proxy #${button.dataset.id}: ${error.message}`, true);
    } finally {
      button.disabled = false;
      lastProxies = "";
      refresh();
    }
  }

  async function runImport(dryRun) {
    const text = $("import-text").value;
    if (!text.trim()) { toast("Paste some accounts first.", true); return; }
    try {
      const result = await api("/accounts/import", { method: "POST", body: { text, dry_run: dryRun } });
      const table = $("import-result");
      table.hidden = false;
      table.tBodies[0].replaceChildren(...result.lines.map((line) => el("tr", {},
        el("td", {}, String(line.line)), el("td", {}, line.id || "–"),
        el("td", {}, el("span", { class: `chip ${line.status}` }, line.status)),
        el("td", { class: "wrap" }, line.message || ""))));
      const summary = Object.entries(result.counts).map(([k, n]) => `${n} ${k}`).join(", ");
      toast(`${dryRun ? "Dry run" : "Import"}: ${summary}`);
      if (!dryRun && result.counts.added) { $("import-text").value = ""; lastAccounts = ""; refresh(); }
    } catch (error) {
      toast(`Import: ${error.message}`, true);
    }
  }

  async function loadModels() {
    try {
      const data = await api("/models");
      $("tester-model").replaceChildren(...data.models.map((m) => el("option", { value: m }, m)));
    } catch (error) { /* the tester stays empty; the toast shows other errors */ }
  }

  async function sendTest(event) {
    event.preventDefault();
    const prompt = $("tester-prompt").value.trim() || "Say hello in one word.";
    const reply = $("tester-reply");
    const button = $("tester-send");
    button.disabled = true;
    reply.hidden = false;
    reply.textContent = "…";
    try {
      const r = await api("/tester", { method: "POST", body: {
        model: $("tester-model").value, prompt, account_id: $("tester-account").value || null } });
      const where = `${r.model} on ${r.account_id || "?"} · ${secs(r.duration)}, first token ${secs(r.ttft)}` +
        (r.tokens_in !== null ? ` · tokens ${r.tokens_in}/${r.tokens_out}` : "");
      reply.textContent = r.ok ? `${r.text}\n\n— ${where}` : `failed: ${r.error}\n\n— ${where}`;
      reply.classList.toggle("error", !r.ok);
    } catch (error) {
      reply.textContent = `failed: ${error.message}`;
      reply.classList.add("error");
    } finally {
      button.disabled = false;
    }
  }

  // ---- live tail (fetch + stream reader: EventSource cannot send the key header) --------

  async function openTail() {
    const state = $("tail-state");
    let delay = 1000;
    while (key) {
      tailAbort = new AbortController();
      try {
        const response = await fetch(`${API}/requests/stream?backlog=50`, {
          headers: { Authorization: `Bearer ${key}`, Accept: "text/event-stream" },
          signal: tailAbort.signal, cache: "no-store", credentials: "omit" });
        if (response.status === 401 || response.status === 403) { logout("The key is no longer accepted."); return; }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        state.textContent = "live"; state.className = "chip live";
        delay = 1000;
        await readEvents(response.body.getReader());
      } catch (error) {
        if (error.name === "AbortError") return;
      }
      if (!key) return;
      state.textContent = "reconnecting"; state.className = "chip down";
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }

  async function readEvents(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (data) {
          try { addTailRow(JSON.parse(data)); } catch (e) { /* a malformed event is skipped */ }
        }
      }
    }
  }

  function addTailRow(r) {
    const body = $("tail-table").tBodies[0];
    const status = el("span", { class: `chip ${r.status < 400 ? "ok" : r.status === 429 || r.status === 499 ? "cooling" : "failed"}` },
      String(r.status));
    const tokens = r.tokens_in === null && r.tokens_out === null ? "–" : `${r.tokens_in ?? "–"} / ${r.tokens_out ?? "–"}`;
    const row = el("tr", { class: "fresh", "data-request": r.request_id || "" },
      el("td", {}, new Date(r.time * 1000).toLocaleTimeString()),
      el("td", {}, r.surface + (r.stream ? " (stream)" : "")),
      el("td", {}, r.model), el("td", {}, status), el("td", {}, secs(r.ttft)), el("td", {}, secs(r.duration)),
      el("td", {}, tokens), el("td", {}, r.account_id || "–"));
    body.prepend(row);
    $("tail-empty").hidden = true;
    while (body.rows.length > TAIL_ROWS) body.deleteRow(body.rows.length - 1);
  }

  // ---- wiring ---------------------------------------------------------------------------

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const candidate = $("key").value.trim();
    if (candidate) login(candidate);
  });
  $("logout").addEventListener("click", () => logout(""));
  $("accounts-table").addEventListener("click", onAccountAction);
  $("proxies-table").addEventListener("click", onProxyAction);
  $("import-dry").addEventListener("click", () => runImport(true));
  $("import-go").addEventListener("click", () => runImport(false));
  $("upstream-form").addEventListener("submit", saveUpstream);
  $("upstream-reset").addEventListener("click", resetUpstream);
  $("tester-form").addEventListener("submit", sendTest);

  if (key) login(key); else logout("");
})();
