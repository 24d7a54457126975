/* The keys and usage page: the key table (today's use against each limit, as bars), new keys (shown
 * once), and the usage charts. Plain JS, no build step; the admin key is the console's, kept in this
 * tab's sessionStorage and sent as a header; everything shown goes in with textContent.
 */
"use strict";

(function () {
  const PREFIX = document.body.dataset.prefix || "/admin";
  const API = PREFIX + "/api";
  const KEY_STORE = "deepseek2api.admin.key";
  const REFRESH_MS = 5000;
  const $ = (id) => document.getElementById(id);
  let key = sessionStorage.getItem(KEY_STORE);
  let range = "hour";
  let timer = null;

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

  function toast(message, bad) { $("toast").textContent = message; $("toast").classList.toggle("bad", !!bad); }

  async function api(path, options) {
    const opts = Object.assign({ method: "GET", cache: "no-store", credentials: "omit" }, options || {});
    opts.headers = { Authorization: `Bearer ${key}` };
    if (opts.body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.body); }
    const response = await fetch(API + path, opts);
    if (response.status === 401 || response.status === 403) { showLogin("That key does not open the console."); throw new Error("refused"); }
    const data = response.headers.get("content-type")?.startsWith("application/json") ? await response.json() : await response.text();
    if (!response.ok) throw new Error(data && data.error ? data.error.message : `HTTP ${response.status}`);
    return data;
  }

  // ---- the key table ----------------------------------------------------------------------

  function bar(used, limit) {
    const box = el("div", { class: "bar" });
    if (!limit) { box.classList.add("none"); return el("div", {}, el("span", { class: "nums" }, `${used} (no limit)`)); }
    const share = Math.min(1, used / limit);
    const fill = el("i");
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    box.appendChild(fill);
    if (share >= 1) box.classList.add("full"); else if (share >= 0.8) box.classList.add("high");
    return el("div", { class: "meter" }, el("span", { class: "nums" }, `${used} / ${limit}`), box);
  }

  function renderKeys(keys) {
    const body = $("keys-table").querySelector("tbody");
    body.textContent = "";
    for (const k of keys) {
      const state = !k.enabled ? "disabled" : k.expired ? "expired" : "ready";
      const actions = el("td", { class: "actions" });
      if (k.origin === "console") {
        actions.append(
          el("button", { type: "button", "data-action": k.enabled ? "disable" : "enable", onclick: () => toggle(k) },
             k.enabled ? "Disable" : "Enable"),
          el("button", { type: "button", class: "danger", "data-action": "delete", onclick: () => remove(k) }, "Delete"));
      } else {
        actions.append(el("span", { class: "muted" }, "config.json"));
      }
      body.appendChild(el("tr", { "data-key": k.name },
        el("td", {}, el("b", {}, k.name), " ", el("span", { class: `chip ${state}` }, state),
           k.note ? el("div", { class: "reason muted" }, k.note) : null),
        el("td", { class: "wrap" }, k.models.length ? k.models.join(", ") : "all"),
        el("td", { class: "tokens" }, bar(k.today.tokens, k.tokens_per_day)),
        el("td", { class: "rpm" }, bar(k.requests_last_minute, k.rpm)),
        el("td", { class: "streams" }, bar(k.streams, k.max_streams)),
        el("td", {}, k.expires_at ? new Date(k.expires_at * 1000).toISOString().slice(0, 10) : "never"),
        actions));
    }
  }

  async function toggle(k) {
    try { await api(`/keys/${encodeURIComponent(k.name)}`, { method: "PATCH", body: { enabled: !k.enabled } }); refresh(); }
    catch (e) { toast(e.message, true); }
  }

  async function remove(k) {
    if (!confirm(`Delete the key ${k.name}? Clients using it get 401 at once.`)) return;
    try { await api(`/keys/${encodeURIComponent(k.name)}`, { method: "DELETE" }); toast(`deleted ${k.name}`); refresh(); }
    catch (e) { toast(e.message, true); }
  }

  async function create(event) {
    event.preventDefault();
    const models = $("f-models").value.split(",").map((m) => m.trim()).filter(Boolean);
    const body = { name: $("f-name").value.trim(), models, rpm: +$("f-rpm").value || 0,
      max_streams: +$("f-streams").value || 0, tokens_per_day: +$("f-tokens").value || 0, note: $("f-note").value };
    if ($("f-expires").value) body.expires_at = `${$("f-expires").value}T00:00:00Z`;
    try {
      const made = await api("/keys", { method: "POST", body });
      $("made-name").textContent = made.name;
      $("made-key").textContent = made.key;
      $("made").hidden = false;
      $("key-form").reset();
      refresh();
    } catch (e) { toast(e.message, true); }
  }

  // ---- charts -----------------------------------------------------------------------------

  function grouped(groups, field, times) {
    return Object.entries(groups).map(([name, s]) => ({ name, values: s[field].slice(0, times.length) }))
      .filter((s) => s.values.some((v) => v > 0)).slice(0, 8);
  }

  function timeline(series) {
    const t = series.timeline;
    if (!t) return null;
    const count = Math.round((t.end - t.start) / t.step);
    const times = Array.from({ length: count }, (_, i) => t.start + i * t.step);
    const at = new Map(t.points.map((p) => [Math.round((p.t - t.start) / t.step), p]));
    const pick = (f) => times.map((_, i) => (at.has(i) ? f(at.get(i)) : null));
    const states = new Set();
    for (const p of t.points) Object.keys(p.states || {}).forEach((s) => states.add(s));
    return {
      times,
      ttft: ["ttft_p50", "ttft_p90", "ttft_p99"].map((f) => ({ name: f.slice(5), values: pick((p) => p[f]) })),
      states: [...states].sort().map((s) => ({ name: s, values: pick((p) => (p.states || {})[s] || 0) })),
      queue: [{ name: "waiting", values: pick((p) => p.queue) }],
    };
  }

  async function charts() {
    const series = await api(`/usage/series?range=${range}`);
    const times = Array.from({ length: series.count }, (_, i) => series.start + i * series.step);
    DSChart.bars($("c-req-key"), { times, series: grouped(series.by_key, "requests", times), title: "requests per key" });
    DSChart.bars($("c-tok-key"), { times, series: grouped(series.by_key, "tokens", times), title: "tokens per key" });
    DSChart.bars($("c-req-model"), { times, series: grouped(series.by_model, "requests", times), title: "requests per model" });
    DSChart.bars($("c-tok-model"), { times, series: grouped(series.by_model, "tokens", times), title: "tokens per model" });
    const t = timeline(series);
    if (t) {
      DSChart.lines($("c-ttft"), { times: t.times, series: t.ttft, title: "TTFT percentiles" });
      DSChart.bars($("c-states"), { times: t.times, series: t.states, title: "accounts by state" });
      DSChart.lines($("c-queue"), { times: t.times, series: t.queue, title: "queue depth" });
    }
  }

  async function csv() {
    try {
      const text = await api(`/usage?format=csv&span=${range === "month" ? "day" : "minute"}`);
      const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: "usage.csv" });
      document.body.appendChild(link); link.click(); link.remove();
    } catch (e) { toast(e.message, true); }
  }

  function renderFairUse(data) {
    const limited = data.accounts.filter((a) => a.max_requests_per_hour || a.min_request_gap);
    $("fair-use-card").hidden = !limited.length;
    const body = $("fair-use-table").querySelector("tbody");
    body.textContent = "";
    for (const a of limited) {
      const wait = a.usable_in > 0 ? `in ${Math.ceil(a.usable_in)}s` : "now";
      body.appendChild(el("tr", { "data-account": a.id },
        el("td", {}, a.id),
        el("td", { class: "per-hour" }, bar(a.requests_last_hour, a.max_requests_per_hour)),
        el("td", {}, a.min_request_gap ? `${a.min_request_gap}s` : "–"),
        el("td", { class: "usable" }, el("span", { class: `chip ${a.usable_in > 0 ? "cooling" : "ready"}` }, wait))));
    }
  }

  async function refresh() {
    if (!key) return;
    try {
      renderKeys((await api("/keys")).keys);
      renderFairUse(await api("/fair-use"));
      await charts();
      $("page").dataset.loaded = "1";
    } catch (e) { if (e.message !== "refused") toast(e.message, true); }
  }

  function showLogin(message) {
    key = null;
    sessionStorage.removeItem(KEY_STORE);
    clearInterval(timer); timer = null;
    $("page").hidden = true; $("login").hidden = false;
    $("login-error").textContent = message || "";
  }

  function start() {
    $("login").hidden = true; $("page").hidden = false;
    refresh();
    timer = setInterval(refresh, REFRESH_MS);
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    key = $("key").value.trim();
    sessionStorage.setItem(KEY_STORE, key);
    start();
  });
  $("key-form").addEventListener("submit", create);
  $("csv").addEventListener("click", csv);
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => {
      range = button.dataset.range;
      for (const b of document.querySelectorAll("[data-range]")) b.setAttribute("aria-pressed", String(b === button));
      charts().catch((e) => toast(e.message, true));
    });
  }
  if (key) start(); else showLogin("");
})();
