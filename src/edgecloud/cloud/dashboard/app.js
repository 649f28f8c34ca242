// edgecloud dashboard: vanilla JS, inline SVG charts, no dependencies.
// Token: #token=... in the address (a fragment never reaches the server, so never its access
// log; then kept in localStorage and removed from the address bar), or the one kept in
// localStorage, or typed into the form. Every API call sends it as a bearer token.
"use strict";

const REFRESH_MS = 5000;
const MAX_CHARTS = 12;
const READINGS_PER_CHART = 300;
const TOKEN_KEY = "edgecloud.token";
// GET /api/v1/nodes "hops", in path order (docs/observability.md)
const HOPS = ["received", "stored", "sent", "bridge_received", "acked_by_kafka", "stored_in_cloud"];
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function takeToken() {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const fromUrl = fragment.get("token");
  if (fromUrl) {
    try { localStorage.setItem(TOKEN_KEY, fromUrl); } catch (e) { /* private mode */ }
    fragment.delete("token");
    const rest = fragment.toString();
    window.history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? "#" + rest : ""));
    return fromUrl;
  }
  try { return localStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
}

let token = takeToken();
let metric = null;

class AuthError extends Error {}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  if (res.status === 401 || res.status === 403) throw new AuthError((await res.json()).detail);
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(path + ": " + res.status + " " + detail);
  }
  return res.json();
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function ago(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

const hhmmss = (iso) => new Date(iso).toISOString().slice(11, 19);
const fmt = (x) => (x === null || x === undefined ? "–" : Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2));

function fill(tbody, rows, cols, empty) {
  tbody.replaceChildren();
  if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: cols, class: "muted" }, empty)));
  for (const r of rows) tbody.append(r);
}

function renderFleet(nodes) {
  $("fleet-count").textContent = nodes.length + " node(s)";
  const rows = nodes.map((n) => {
    const labels = el("td", {});
    for (const [k, v] of Object.entries(n.labels)) labels.append(el("span", { class: "label" }, k + "=" + v));
    const models = n.active_models.map((m) => (m.name || m.model || "?") + "@" + (m.version || "?")).join(", ");
    const c = n.counters || {};
    return el("tr", { "data-node": n.node_id },
      el("td", {}, n.node_id),
      el("td", {}, el("span", { class: "dot " + n.status }), n.status),
      labels,
      el("td", { title: n.last_heartbeat }, ago(n.last_heartbeat)),
      el("td", {}, models || "none"),
      el("td", {}, [c.received, c.processed, c.dead_letters].map((x) => (x ?? "–")).join(" / ")),
      el("td", {}, n.spool_depth ?? "–"),
      el("td", { class: "hops" }, HOPS.map((h) => ((n.hops || {})[h] ?? "–")).join(" → ")));
  });
  fill($("fleet").tBodies[0], rows, 8, "no nodes yet");
}

function renderEscalation(e) {
  const badge = $("escalation");
  const ok = e.enabled && (e.status === "enabled" || e.status === "unknown");
  badge.className = "badge " + (ok ? "on" : "off");
  const st = e.state || {};
  const budget = st.token_budget ? " · tokens " + (st.tokens_used || 0) + "/" + st.token_budget : "";
  badge.textContent = "escalation: " + e.status.replace("_", " ") + budget + (e.reason ? " (" + e.reason + ")" : "");
}

function renderAnomalies(items) {
  $("anomaly-count").textContent = items.length ? "latest " + items.length : "";
  const rows = items.map((a) => {
    const e = a.escalation;
    const status = e ? el("span", { class: "sev-" + (e.severity || "none") },
      e.status + (e.severity ? " · " + e.severity : "")) : (a.escalate ? "requested" : "–");
    const note = e && (e.explanation || e.error)
      ? el("div", {}, e.explanation || e.error,
          e.suggested_action ? el("div", { class: "muted" }, "→ " + e.suggested_action) : null)
      : "";
    return el("tr", { "data-event": a.event_id },
      el("td", { title: a.ts }, a.ts.replace("T", " ").slice(0, 19)),
      el("td", {}, a.device_id), el("td", {}, a.node_id), el("td", {}, fmt(a.score)),
      el("td", {}, a.model ? a.model + "@" + a.model_version : "–"), el("td", {}, status),
      el("td", {}, note), el("td", {}, feedbackButtons(a.event_id)));
  });
  fill($("anomalies").tBodies[0], rows, 8, "no anomalies");
}

// Operator feedback (POST /api/v1/anomalies/{id}/feedback, an operate token): a label of the
// learning loop (docs/learning.md). A read-only token gets the API's refusal shown.
const given = new Map();

function feedbackButtons(eventId) {
  if (given.has(eventId)) return el("span", { class: "muted" }, given.get(eventId));
  const wrap = el("span", { class: "feedback" });
  for (const [verdict, text] of [["true_positive", "✓ real"], ["false_positive", "✗ false alarm"]]) {
    const b = el("button", { type: "button", "data-verdict": verdict }, text);
    b.addEventListener("click", () => sendFeedback(eventId, verdict, wrap));
    wrap.append(b);
  }
  return wrap;
}

async function sendFeedback(eventId, verdict, wrap) {
  const res = await fetch("/api/v1/anomalies/" + eventId + "/feedback", {
    method: "POST",
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify({ verdict: verdict, note: "dashboard" }),
  });
  let text = verdict.replace("_", " ");
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail; } catch (e) { /* not JSON */ }
    text = "not saved: " + detail;
  } else {
    given.set(eventId, text);
  }
  wrap.replaceChildren(el("span", { class: res.ok ? "muted" : "error" }, text));
}

// Evaluations of retrained candidates (GET /api/v1/evaluations) and the latest one's picture.
async function renderEvaluations() {
  const items = await api("/api/v1/evaluations?limit=5");
  const rows = items.map((e) => {
    const r = e.report, c = r.candidate.metrics || {}, a = r.active.metrics || {};
    const fig = (m) => "recall " + fmt(m.recall) + " · F1 " + fmt(m.f1) + " · FP/device-h " + fmt(m.fp_per_device_hour);
    return el("tr", {},
      el("td", {}, e.model + "@" + e.version), el("td", {}, e.parent_version || "–"),
      el("td", {}, fig(a)), el("td", {}, fig(c)),
      el("td", { class: e.accepted ? "" : "error" }, e.accepted ? "accepted" : "refused"));
  });
  fill($("evaluations").tBodies[0], rows, 5, "no retraining yet");
  const box = $("evaluation-svg");
  if (!items.length) { box.replaceChildren(); $("live-versions").replaceChildren(); return; }
  const live = await api("/api/v1/evaluations/live?model=" + encodeURIComponent(items[0].model));
  $("live-versions").replaceChildren(...live.versions.map((v) => el("div", { "data-version": v.version },
    items[0].model + "@" + v.version + ": live anomaly rate " + fmt(v.anomaly_rate) + " of " + v.readings +
    " readings (last hour) · feedback " + (Object.entries(v.feedback).map(([k, n]) => k + " " + n).join(", ") || "none"))));
  if (box.dataset.id === items[0].id) return;
  const res = await fetch("/api/v1/evaluations/" + items[0].id + "/svg",
    { headers: { Authorization: "Bearer " + token } });
  if (!res.ok) return;
  const doc = new DOMParser().parseFromString(await res.text(), "image/svg+xml");
  box.replaceChildren(document.importNode(doc.documentElement, true));
  box.dataset.id = items[0].id;
}

async function renderRollouts() {
  // The registry's rollouts (GET /api/v1/rollouts); "no rollouts" until there are any.
  let list = [];
  try { list = await api("/api/v1/rollouts?limit=5"); } catch (e) { if (e instanceof AuthError) throw e; }
  const box = $("rollouts");
  if (!list.length) { box.replaceChildren("no rollouts"); box.className = "muted"; return; }
  const details = await Promise.all(list.map((r) => api("/api/v1/rollouts/" + encodeURIComponent(r.id)).catch(() => r)));
  const rows = details.map((r) => {
    const counts = Object.entries(r.counts || {}).map(([k, v]) => k + " " + v).join(", ");
    const wave = r.waves && r.waves.length ? "wave " + Math.min(r.current_wave + 1, r.waves.length) + "/" + r.waves.length + " (" + r.waves.join("/") + "%)" : "";
    const sel = Object.entries(r.selector || {}).map(([k, v]) => k + "=" + v).join(",") || "all nodes";
    return el("tr", { "data-rollout": r.id }, el("td", {}, r.model + "@" + r.version), el("td", {}, r.state),
      el("td", {}, wave), el("td", {}, sel), el("td", {}, counts || "–"), el("td", { title: r.updated_at }, ago(r.updated_at)));
  });
  const table = el("table", {}, el("thead", {}, el("tr", {}, ...["model", "state", "progress", "selector", "nodes", "updated"].map((h) => el("th", {}, h)))), el("tbody", {}, ...rows));
  box.className = "";
  box.replaceChildren(table);
}

function scalarMetrics(readings) {
  const names = new Set();
  for (const r of readings) for (const [k, v] of Object.entries(r.values)) if (typeof v === "number") names.add(k);
  return [...names].sort();
}

function chart(device, readings, name) {
  const W = 600, H = 150, L = 44, R = 8, T = 8, B = 20;
  const pts = readings.filter((r) => typeof r.values[name] === "number")
    .map((r) => ({ t: Date.parse(r.ts), v: r.values[name], a: r.anomaly, ts: r.ts }));
  const box = el("div", { class: "chart", "data-device": device.device_id });
  const last = pts.length ? pts[pts.length - 1] : null;
  const nAnom = pts.filter((p) => p.a).length;
  box.append(el("h3", {}, el("span", {}, device.device_id + " · " + name),
    el("span", { class: "muted" }, (last ? "last " + fmt(last.v) : "no data") + " · " + nAnom + " anomalies")));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img",
    "aria-label": device.device_id + " " + name });
  box.append(root);
  if (pts.length < 2) return box;
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t || t0 + 1;
  let lo = Math.min(...pts.map((p) => p.v)), hi = Math.max(...pts.map((p) => p.v));
  if (hi === lo) { hi += 1; lo -= 1; }
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  root.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  root.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  root.append(svg("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, fmt(hi)));
  root.append(svg("text", { x: L - 4, y: H - B, "text-anchor": "end" }, fmt(lo)));
  root.append(svg("text", { x: L, y: H - 4 }, hhmmss(pts[0].ts)));
  root.append(svg("text", { x: W - R, y: H - 4, "text-anchor": "end" }, hhmmss(last.ts)));
  const d = pts.map((p, i) => (i ? "L" : "M") + x(p.t).toFixed(1) + " " + y(p.v).toFixed(1)).join(" ");
  root.append(svg("path", { class: "line", d }));
  for (const p of pts.filter((q) => q.a)) {
    const c = svg("circle", { class: "anomaly", cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 4 });
    c.append(svg("title", {}, "anomaly at " + p.ts + ": " + fmt(p.v)));
    root.append(c);
  }
  return box;
}

async function renderDevices(devices) {
  $("device-count").textContent = devices.length + " device(s)";
  const shown = [...devices].sort((a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen)).slice(0, MAX_CHARTS);
  const series = await Promise.all(shown.map((d) =>
    api(`/api/v1/devices/${encodeURIComponent(d.device_id)}/readings?limit=${READINGS_PER_CHART}`)
      .then((page) => page.items.reverse())));
  const names = scalarMetrics(series.flat());
  const select = $("metric");
  if (!metric || !names.includes(metric)) metric = names[0] || null;
  select.replaceChildren(...names.map((n) => el("option", n === metric ? { value: n, selected: "" } : { value: n }, n)));
  const charts = shown.map((d, i) => chart(d, series[i], metric));
  $("charts").replaceChildren(...(charts.length ? charts : [el("p", { class: "muted" }, "no devices yet")]));
}

async function refresh() {
  if (!token) { askToken("enter an API token with read scope"); return; }
  try {
    const [nodes, devices, anomalies, escalation] = await Promise.all([
      api("/api/v1/nodes"), api("/api/v1/devices"), api("/api/v1/anomalies?limit=50"),
      api("/api/v1/escalation")]);
    renderFleet(nodes.items);
    renderEscalation(escalation);
    renderAnomalies(anomalies.items);
    await Promise.all([renderDevices(devices.items), renderRollouts(), renderEvaluations()]);
    $("status").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
    $("status").className = "muted";
    document.body.dataset.state = "ready";
  } catch (err) {
    if (err instanceof AuthError) { askToken("token refused: " + err.message); return; }
    $("status").textContent = String(err.message || err);
    $("status").className = "error";
    document.body.dataset.state = "error";
  }
}

function askToken(message) {
  $("status").textContent = message;
  $("token-form").hidden = false;
  $("forget-token").hidden = true;
  document.body.dataset.state = "needs-token";
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token-input").value.trim();
  try { localStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode */ }
  $("token-form").hidden = true;
  $("forget-token").hidden = false;
  refresh();
});
$("forget-token").addEventListener("click", () => {
  try { localStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
  token = null;
  askToken("token forgotten");
});
$("metric").addEventListener("change", (ev) => { metric = ev.target.value; refresh(); });
if (token) $("forget-token").hidden = false;
refresh();
setInterval(refresh, REFRESH_MS);
