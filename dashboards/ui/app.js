// Burnrate's built-in UI: a few pages over Burnrate's own JSON APIs, with
// charts drawn as inline SVG. No framework and no network beyond Burnrate.
"use strict";

const main = document.getElementById("main");
const pages = {};

// --- helpers -------------------------------------------------------------

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function token() { return localStorage.getItem("burnrate-token") || ""; }

async function api(path, opts = {}) {
  const headers = Object.assign({ "Accept": "application/json" }, opts.headers || {});
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (token()) headers["Authorization"] = "Bearer " + token();
  const resp = await fetch(path, { method: opts.method || "GET", headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!resp.ok && !opts.allow?.includes(resp.status)) {
    const msg = (data && (data.error || data.message)) || (typeof data === "string" ? data : resp.statusText);
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  return { status: resp.status, data };
}

function toast(msg) {
  const t = document.getElementById("toast");
  t.textContent = msg;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 3500);
}

function pct(v, digits = 2) { return v === null || v === undefined || Number.isNaN(v) ? "–" : (v * 100).toFixed(digits) + "%"; }
function num(v, digits = 2) { return v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits); }
function ago(t) {
  if (!t) return "–";
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 90) return Math.round(s) + "s ago";
  if (s < 5400) return Math.round(s / 60) + "m ago";
  return Math.round(s / 3600) + "h ago";
}
function dur(s) {
  if (s === null || s === undefined) return "–";
  if (s < 120) return Math.round(s) + "s";
  if (s < 7200) return Math.round(s / 60) + "m";
  if (s < 172800) return (s / 3600).toFixed(1) + "h";
  return (s / 86400).toFixed(1) + "d";
}
function windowOf(status, w) { return (status.windows || []).find((x) => x.window === w) || {}; }

function budgetBar(v) {
  if (v === null || v === undefined) return '<span class="muted">–</span>';
  const w = Math.max(0, Math.min(1, v)) * 100;
  const color = v <= 0 ? "var(--bad)" : v < 0.25 ? "var(--warn)" : "var(--ok)";
  return `<span class="bar"><span style="width:${w}%;background:${color}"></span></span>${pct(v, 1)}`;
}

// state says how an SLO is doing, from its latest evaluation.
function state(s) {
  if (s.error) return ["pending", s.error === "not evaluated yet" ? "" : "bad", s.error === "not evaluated yet" ? "pending" : "error"];
  if ((s.tiers || []).some((t) => t.firing && t.severity === "page")) return ["page", "bad", "paging"];
  if (s.budget_remaining !== null && s.budget_remaining <= 0) return ["exhausted", "bad", "budget spent"];
  if (s.insufficient_data) return ["pending", "", "too little data"];
  if ((s.tiers || []).some((t) => t.firing)) return ["ticket", "warn", "burning"];
  return ["ok", "ok", "ok"];
}
function badge(s) { const [, cls, text] = state(s); return `<span class="badge ${cls}">${esc(text)}</span>`; }

// chart draws series [{name, color, points: [[unixSeconds, value]...]}] as
// SVG lines, with optional horizontal thresholds and vertical markers.
function chart(series, opts = {}) {
  const W = 800, H = 220, L = 48, R = 10, T = 10, B = 24;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<p class="muted">${esc(opts.empty || "No data in this range yet.")}</p>`;
  let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
  if (opts.from) x0 = Math.min(x0, opts.from);
  if (x1 === x0) x1 = x0 + 1;
  const ys = all.map((p) => p[1]).concat((opts.thresholds || []).map((t) => t.value));
  let y0 = Math.min(0, ...ys), y1 = Math.max(...ys);
  if (opts.min !== undefined) y0 = Math.min(y0, opts.min);
  if (opts.max !== undefined) y1 = Math.max(y1, opts.max);
  if (y1 === y0) y1 = y0 + 1;
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const fmt = opts.fmt || ((v) => num(v, 2));
  let out = `<svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${esc(opts.label || "chart")}">`;
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4, y = Y(v);
    out += `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#eef0f3"/><text x="${L - 6}" y="${y + 4}" text-anchor="end">${esc(fmt(v))}</text>`;
  }
  for (let i = 0; i <= 4; i++) {
    const t = x0 + ((x1 - x0) * i) / 4;
    const d = new Date(t * 1000);
    const label = x1 - x0 > 172800 ? d.toLocaleDateString([], { month: "short", day: "numeric" }) : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    out += `<text x="${X(t)}" y="${H - 6}" text-anchor="middle">${esc(label)}</text>`;
  }
  for (const m of opts.markers || []) {
    if (m.t < x0 || m.t > x1) continue;
    out += `<line x1="${X(m.t)}" x2="${X(m.t)}" y1="${T}" y2="${H - B}" stroke="${m.color}" stroke-dasharray="3 3"><title>${esc(m.label)}</title></line>`;
  }
  for (const th of opts.thresholds || []) {
    out += `<line x1="${L}" x2="${W - R}" y1="${Y(th.value)}" y2="${Y(th.value)}" stroke="${th.color}" stroke-dasharray="6 4"/>`;
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, i) => (i ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1)).join(" ");
    out += `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8" vector-effect="non-scaling-stroke"/>`;
  }
  out += "</svg>";
  const legend = series.map((s) => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`)
    .concat((opts.thresholds || []).map((t) => `<span><i style="background:${t.color}"></i>${esc(t.name)}</span>`))
    .concat((opts.markers || []).length ? ['<span><i style="background:#7b61ff"></i>deploy</span>', '<span><i style="background:#d9480f"></i>fault</span>'] : []);
  return out + `<div class="legend">${legend.join("")}</div>`;
}

async function rangeQuery(q, start, end, step) {
  const body = new URLSearchParams({ query: q, start: String(start), end: String(end), step: String(step) });
  const headers = { "Content-Type": "application/x-www-form-urlencoded" };
  const resp = await fetch("/api/v1/query_range", { method: "POST", headers, body });
  const j = await resp.json();
  if (j.status !== "success") throw new Error(j.error || "query failed");
  return j.data.result.map((r) => ({ metric: r.metric, points: r.values.map((v) => [v[0], parseFloat(v[1])]).filter((p) => Number.isFinite(p[1])) }));
}

const palette = ["#2f5bd3", "#d9480f", "#2b8a3e", "#ae3ec9", "#0c8599", "#e67700", "#495057"];

// --- pages ---------------------------------------------------------------

pages.slos = async function () {
  const t0 = performance.now();
  const { data } = await api("/api/v1/slos");
  const slos = data.data || [];
  const counts = { ok: 0, page: 0, ticket: 0, exhausted: 0, pending: 0 };
  for (const s of slos) counts[state(s)[0]]++;
  const rows = slos.map((s) => {
    const w5 = windowOf(s, "5m"), w1 = windowOf(s, "1h");
    return `<tr data-text="${esc((s.id + " " + s.service).toLowerCase())}"><td><a href="#/slo/${encodeURIComponent(s.id)}">${esc(s.id)}</a></td>` +
      `<td class="hide-narrow">${esc(s.service)}</td><td class="num hide-narrow">${pct(s.objective, 3)}</td>` +
      `<td class="num hide-narrow">${pct(s.period_window?.sli, 3)}</td><td>${budgetBar(s.budget_remaining)}</td>` +
      `<td class="num">${num(w5.burn_rate)}</td><td class="num hide-narrow">${num(w1.burn_rate)}</td><td>${badge(s)}</td></tr>`;
  }).join("");
  main.innerHTML = `<h1>SLOs</h1><p class="muted">${slos.length} SLOs, evaluated every few seconds from the embedded TSDB.</p>
    <div class="cards">
      <div class="card"><div class="label">Healthy</div><div class="value" style="color:var(--ok)">${counts.ok}</div></div>
      <div class="card"><div class="label">Paging</div><div class="value" style="color:var(--bad)">${counts.page}</div></div>
      <div class="card"><div class="label">Burning (ticket)</div><div class="value" style="color:var(--warn)">${counts.ticket}</div></div>
      <div class="card"><div class="label">Budget spent</div><div class="value" style="color:var(--bad)">${counts.exhausted}</div></div>
      <div class="card"><div class="label">Pending</div><div class="value">${counts.pending}</div></div>
    </div>
    <div class="toolbar"><input id="filter" placeholder="Filter by SLO or service" aria-label="Filter SLOs" size="30"></div>
    <div class="panel"><table id="slo-table"><thead><tr><th>SLO</th><th class="hide-narrow">Service</th><th class="num hide-narrow">Objective</th>
    <th class="num hide-narrow">SLI (period)</th><th>Budget left</th><th class="num">Burn 5m</th><th class="num hide-narrow">Burn 1h</th><th>Status</th></tr></thead>
    <tbody>${rows || '<tr><td colspan="8" class="muted">No SLOs loaded.</td></tr>'}</tbody></table></div>`;
  const filter = document.getElementById("filter");
  filter.addEventListener("input", () => {
    const q = filter.value.toLowerCase();
    for (const tr of document.querySelectorAll("#slo-table tbody tr")) tr.hidden = q !== "" && !(tr.dataset.text || "").includes(q);
  });
  document.body.dataset.rendered = String(performance.now() - t0);
};

pages.slo = async function (id) {
  const t0 = performance.now();
  const { data } = await api("/api/v1/slos/" + encodeURIComponent(id));
  const s = data.data.slo;
  const eb = s.error_budget;
  const tiers = (s.tiers || []).map((t) => {
    const long = windowOf(s, t.long_window), short = windowOf(s, t.short_window);
    return `<tr><td>${esc(t.severity)}</td><td>${esc(t.long_window)} / ${esc(t.short_window)}</td><td class="num">${num(t.budget_percent, 1)}%</td>
      <td class="num math">${num(t.factor, 3)} × ${pct(eb, 3)} = ${pct(t.threshold, 3)}</td>
      <td class="num">${pct(long.error_ratio, 3)} / ${pct(short.error_ratio, 3)}</td>
      <td>${t.firing ? '<span class="badge bad">firing</span>' : t.held ? '<span class="badge warn">held: low traffic</span>' : '<span class="badge ok">quiet</span>'}</td></tr>`;
  }).join("");
  const forecasts = (s.forecasts || []).map((f) => `<tr><td>${esc(f.window)}</td><td class="num">${num(f.burn_rate)}</td><td class="num">${f.seconds === null ? "not being spent" : dur(f.seconds)}</td></tr>`).join("");
  main.innerHTML = `<p><a href="#/">← SLOs</a></p><h1>${esc(s.id)} ${badge(s)}</h1>
    <p class="muted">${esc(s.description || "")} Objective ${pct(s.objective, 3)} over ${esc(s.period)} (${esc(s.budgeting_method)}), error budget ${pct(eb, 3)} of ${s.budgeting_method === "Timeslices" ? "5-minute slices (burn rates count bad slices)" : "events"}. Evaluated ${ago(s.evaluated_at)}.</p>
    <div class="cards">
      <div class="card"><div class="label">Budget remaining</div><div class="value">${pct(s.budget_remaining, 1)}</div></div>
      <div class="card"><div class="label">Budget consumed</div><div class="value">${pct(s.budget_consumed, 2)}</div></div>
      <div class="card"><div class="label">SLI over the period</div><div class="value">${pct(s.period_window?.sli, 3)}</div></div>
      <div class="card"><div class="label">Burn rate 5m</div><div class="value">${num(windowOf(s, "5m").burn_rate)}</div></div>
      <div class="card"><div class="label">Data coverage</div><div class="value">${pct(s.period_coverage, 2)}</div></div>
    </div>
    ${s.insufficient_data ? '<p class="badge warn">The period holds too little data yet for a budget figure.</p>' : ""}
    <div class="grid2">
      <div class="panel"><h2 style="margin-top:0">Budget burn-down</h2><div id="burndown"><p class="muted">Loading…</p></div></div>
      <div class="panel"><h2 style="margin-top:0">Burn rate</h2><div id="burn"><p class="muted">Loading…</p></div></div>
    </div>
    <div class="panel"><h2 style="margin-top:0">The budget math</h2>
      <p class="math">error budget = 1 − objective = 1 − ${pct(s.objective, 3)} = ${pct(eb, 3)}<br>
      burn rate = error ratio ÷ error budget (1 spends the whole budget in exactly one ${esc(s.period)} period)<br>
      budget consumed = bad events ÷ (error budget × the period's expected events)<br>
      a tier fires when both its long and its short window's error ratio exceed threshold = factor × budget</p>
      <table><thead><tr><th>Tier</th><th>Long / short</th><th class="num">Budget spent</th><th class="num">Threshold</th><th class="num">Error ratio now</th><th>State</th></tr></thead><tbody>${tiers}</tbody></table>
      <h2>Time until the budget is spent</h2>
      <table><thead><tr><th>At the burn of</th><th class="num">Burn rate</th><th class="num">Budget lasts</th></tr></thead><tbody>${forecasts || '<tr><td colspan="3" class="muted">No forecast yet.</td></tr>'}</tbody></table>
    </div>`;
  document.body.dataset.rendered = String(performance.now() - t0);
  const end = Math.floor(Date.now() / 1000);
  const markers = [];
  try {
    const d = await api("/api/v1/deploys?service=" + encodeURIComponent(s.service), { allow: [404] });
    for (const x of d.data?.data || []) markers.push({ t: new Date(x.started_at).getTime() / 1000, color: "#7b61ff", label: "deploy " + x.version });
  } catch (e) { /* no deploy gate */ }
  try {
    const f = await api("/api/v1/demo/events", { allow: [404] });
    for (const x of f.data?.data || []) markers.push({ t: new Date(x.at).getTime() / 1000, color: "#d9480f", label: `fault ${x.flag} ${x.kind} ${x.value || ""}` });
  } catch (e) { /* no demo platform */ }
  const sel = `{sloth_id="${s.id.replace(/"/g, '\\"')}"}`;
  try {
    const span = Math.min(6 * 3600, Math.max(600, end - new Date(s.period_start).getTime() / 1000));
    const r = await rangeQuery("slo:period_error_budget_remaining:ratio" + sel, end - span, end, Math.max(15, Math.round(span / 200)));
    document.getElementById("burndown").innerHTML = chart(r.map((x) => ({ name: "budget remaining", color: palette[0], points: x.points })),
      { fmt: (v) => pct(v, 0), thresholds: [{ value: 0, color: "#c62828", name: "spent" }], markers, label: "budget burn-down" });
    const b = await rangeQuery(`slo:burn_rate:ratio{sloth_id="${s.id.replace(/"/g, '\\"')}", sloth_window=~"5m|1h|6h"}`, end - 3 * 3600, end, 30);
    const page = (s.tiers || []).find((t) => t.severity === "page");
    document.getElementById("burn").innerHTML = chart(b.map((x, i) => ({ name: x.metric.sloth_window, color: palette[i % palette.length], points: x.points })),
      { thresholds: page ? [{ value: page.factor, color: "#c62828", name: "page factor " + num(page.factor, 1) }] : [], markers, label: "burn rate" });
  } catch (e) {
    document.getElementById("burndown").innerHTML = `<p class="muted">${esc(e.message)}</p>`;
  }
};

pages.alerts = async function () {
  const [alerts, silences] = await Promise.all([api("/api/v2/alerts"), api("/api/v2/silences")]);
  const arows = (alerts.data || []).map((a) => `<tr><td>${esc(a.labels.alertname)}</td><td>${esc(a.labels.slo || a.labels.service || "")}</td>
    <td>${esc(a.labels.severity || "")}</td><td><span class="badge ${a.status.state === "active" ? "bad" : "warn"}">${esc(a.status.state)}</span></td>
    <td class="wrap">${esc(a.annotations.summary || a.annotations.description || "")}</td><td>${ago(a.startsAt)}</td></tr>`).join("");
  const srows = (silences.data || []).filter((s) => s.status.state !== "expired").map((s) => `<tr><td>${esc(s.matchers.map((m) => m.name + (m.isEqual === false ? "!" : "") + (m.isRegex ? "=~" : "=") + '"' + m.value + '"').join(", "))}</td>
    <td>${esc(s.createdBy)}</td><td class="wrap">${esc(s.comment)}</td><td>${esc(new Date(s.endsAt).toLocaleString())}</td>
    <td><button class="secondary" data-expire="${esc(s.id)}">Expire</button></td></tr>`).join("");
  main.innerHTML = `<h1>Alerts</h1>
    <div class="panel"><table><thead><tr><th>Alert</th><th>SLO</th><th>Severity</th><th>State</th><th>Summary</th><th>Since</th></tr></thead>
    <tbody>${arows || '<tr><td colspan="6" class="muted">No alerts firing.</td></tr>'}</tbody></table></div>
    <h2>Silences</h2>
    <form id="silence-form" class="toolbar"><input name="matchers" placeholder='slo="demo-api-availability"' required size="32" aria-label="Matchers">
      <select name="hours" aria-label="Duration"><option value="1">1 hour</option><option value="4">4 hours</option><option value="24">1 day</option></select>
      <input name="comment" placeholder="Why" required aria-label="Comment"><button>Silence</button></form>
    <div class="panel"><table><thead><tr><th>Matchers</th><th>By</th><th>Comment</th><th>Ends</th><th></th></tr></thead>
    <tbody>${srows || '<tr><td colspan="5" class="muted">No active silences.</td></tr>'}</tbody></table></div>`;
  document.getElementById("silence-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const matchers = String(f.get("matchers")).split(",").map((m) => {
      const x = m.trim().match(/^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)"?([^"]*)"?$/);
      if (!x) throw new Error("matcher " + m);
      return { name: x[1], value: x[3], isRegex: x[2].includes("~"), isEqual: !x[2].startsWith("!") };
    });
    const now = new Date();
    try {
      await api("/api/v2/silences", { method: "POST", body: { matchers, startsAt: now.toISOString(), endsAt: new Date(now.getTime() + Number(f.get("hours")) * 3600e3).toISOString(), createdBy: "web UI", comment: f.get("comment") } });
      toast("Silence created");
      route();
    } catch (e) { toast("Silence refused: " + e.message); }
  });
  for (const b of document.querySelectorAll("[data-expire]")) {
    b.addEventListener("click", async () => {
      try { await api("/api/v2/silence/" + b.dataset.expire, { method: "DELETE" }); toast("Silence expired"); route(); } catch (e) { toast(e.message); }
    });
  }
};

function incidentActions(i) {
  return (i.status === "triggered" ? `<button data-act="ack" data-id="${esc(i.id)}">Acknowledge</button> ` : "") +
    (i.status !== "resolved" ? `<button class="secondary" data-act="resolve" data-id="${esc(i.id)}">Resolve</button>` : "");
}

function bindIncidentActions() {
  for (const b of document.querySelectorAll("[data-act]")) {
    b.addEventListener("click", async () => {
      try {
        await api(`/api/v1/incidents/${b.dataset.id}/${b.dataset.act}`, { method: "POST", body: { by: "web UI" } });
        toast("Incident " + b.dataset.id + (b.dataset.act === "ack" ? " acknowledged" : " resolved"));
        route();
      } catch (e) { toast(e.message); }
    });
  }
}

function statusBadge(st) {
  return `<span class="badge ${st === "resolved" ? "ok" : st === "acknowledged" ? "warn" : "bad"}">${esc(st)}</span>`;
}

pages.incidents = async function () {
  const r = await api("/api/v1/incidents?limit=200", { allow: [404] });
  if (r.status === 404) {
    main.innerHTML = `<h1>Incidents</h1><p class="muted">The incident tracker is not running in this process.</p>`;
    return;
  }
  const list = r.data?.incidents || [];
  const rows = list.map((i) => `<tr><td><a href="#/incident/${esc(i.id)}">#${esc(i.id)}</a></td><td class="wrap">${esc(i.title)}</td><td>${esc(i.severity)}</td>
    <td class="hide-narrow">${esc(i.service || "")}</td><td>${statusBadge(i.status)}</td><td class="hide-narrow">${ago(i.triggered_at)}</td><td>${incidentActions(i)}</td></tr>`).join("");
  main.innerHTML = `<h1>Incidents</h1><p class="muted">Page alerts open incidents; acknowledge here, from Slack or with <code>burnrate incident ack ID</code>.</p>
    <div class="panel"><table><thead><tr><th>ID</th><th>Title</th><th>Severity</th><th class="hide-narrow">Service</th><th>Status</th><th class="hide-narrow">Triggered</th><th></th></tr></thead>
    <tbody>${rows || '<tr><td colspan="7" class="muted">No incidents.</td></tr>'}</tbody></table></div>`;
  bindIncidentActions();
};

pages.incident = async function (id) {
  const { data } = await api("/api/v1/incidents/" + encodeURIComponent(id));
  const i = data;
  const tl = data.timeline || [];
  main.innerHTML = `<p><a href="#/incidents">← Incidents</a></p><h1>#${esc(i.id)} ${esc(i.title)} ${statusBadge(i.status)}</h1>
    <p class="muted">${esc(i.severity)} · ${esc(i.service || "")} ${i.slo ? `· <a href="#/slo/${encodeURIComponent(i.slo)}">${esc(i.slo)}</a>` : ""} · commander ${esc(i.commander || "none")}</p>
    <div class="toolbar">${incidentActions(i)}</div>
    <div class="cards">
      <div class="card"><div class="label">Triggered</div><div class="value">${ago(i.triggered_at)}</div></div>
      <div class="card"><div class="label">Detection</div><div class="value">${dur(i.detection_seconds)}</div></div>
      <div class="card"><div class="label">Time to acknowledge</div><div class="value">${dur(i.mtta_seconds)}</div></div>
      <div class="card"><div class="label">Time to resolve</div><div class="value">${dur(i.mttr_seconds)}</div></div>
      <div class="card"><div class="label">Impact (start to resolve)</div><div class="value">${dur(i.impact_duration_seconds)}</div></div>
      <div class="card"><div class="label">Budget spent</div><div class="value">${data.budget ? pct(data.budget.consumed, 2) : "–"}</div></div>
    </div>
    <div class="panel"><h2 style="margin-top:0">Timeline</h2><table><thead><tr><th>When</th><th>What</th><th>Source</th><th>Detail</th></tr></thead><tbody>${
      tl.map((e) => `<tr><td>${esc(new Date(e.at).toLocaleTimeString())}</td><td>${esc(e.kind)}</td><td>${esc(e.source)}${e.actor ? " · " + esc(e.actor) : ""}</td><td class="wrap">${esc(e.text)}</td></tr>`).join("") ||
      '<tr><td colspan="4" class="muted">No events.</td></tr>'}</tbody></table></div>`;
  bindIncidentActions();
};

pages.oncall = async function () {
  const r = await api("/api/v1/oncall", { allow: [404] });
  if (r.status === 404) {
    main.innerHTML = `<h1>On call</h1><p class="muted">On-call schedules are not running in this process.</p>`;
    return;
  }
  const list = r.data?.oncall || [];
  const rows = list.map((o) => {
    const next = (o.next || [])[0];
    return `<tr><td>${esc(o.schedule)}</td><td>${esc((o.users || []).map((u) => u.name || u.id).join(", ") || "nobody")}</td>
      <td>${next ? esc(next.user) + " from " + esc(new Date(next.start).toLocaleString()) : "–"}</td></tr>`;
  }).join("");
  main.innerHTML = `<h1>On call</h1><p class="muted">Overrides and swaps included, as escalation and Slack see them.</p>
    <div class="panel"><table><thead><tr><th>Schedule</th><th>On call now</th><th>Next</th></tr></thead>
    <tbody>${rows || '<tr><td colspan="3" class="muted">No schedules. Add one with <code>burnrate oncall</code> or the API.</td></tr>'}</tbody></table></div>`;
};

pages.gate = async function () {
  const { data } = await api("/api/v1/slos");
  const services = [...new Set((data.data || []).map((s) => s.service || s.id))].sort();
  main.innerHTML = `<h1>Deploy gate</h1><p class="muted">What <code>burnrate gate --service S</code> answers now, per service.</p>
    <div class="panel"><table><thead><tr><th>Service</th><th>Decision</th><th class="num">Budget left</th><th class="num">Coverage</th><th>Why</th></tr></thead><tbody id="gate-rows"></tbody></table></div>`;
  const rows = [];
  for (const svc of services.slice(0, 200)) {
    try {
      const r = await api("/api/v1/gate?service=" + encodeURIComponent(svc), { allow: [404] });
      const d = r.data;
      const cls = d.decision === "pass" ? "ok" : d.decision === "warn" ? "warn" : "bad";
      rows.push(`<tr><td>${esc(svc)}</td><td><span class="badge ${cls}">${esc(d.decision || "unknown")}</span></td><td class="num">${pct(d.budget_remaining, 1)}</td>
        <td class="num">${pct(d.coverage, 1)}</td><td class="wrap">${esc((d.reasons || []).join("; ") || "within policy")}</td></tr>`);
    } catch (e) {
      rows.push(`<tr><td>${esc(svc)}</td><td colspan="4" class="muted">${esc(e.message)}</td></tr>`);
    }
  }
  document.getElementById("gate-rows").innerHTML = rows.join("") || '<tr><td colspan="5" class="muted">No services with SLOs.</td></tr>';
};

pages.demo = async function () {
  const r = await api("/api/v1/demo/faults", { allow: [404] });
  if (r.status === 404) {
    main.innerHTML = `<h1>Demo platform</h1><p class="muted">The demo platform is not running (<code>burnrate up</code> runs it).</p>`;
    return;
  }
  const { active = [], catalog = [] } = r.data.data || {};
  const lr = await api("/api/v1/demo/load", { allow: [404] });
  const loadOn = lr.status === 200 && lr.data?.data?.enabled;
  const activeBy = Object.fromEntries(active.map((a) => [a.name, a]));
  const rows = catalog.map((c) => {
    const a = activeBy[c.name];
    return `<tr><td>${esc(c.name)}</td><td class="wrap muted">${esc(c.description)}</td>
      <td>${a ? `<span class="badge bad">${esc(a.value)}</span>` : '<span class="badge">off</span>'}</td>
      <td><form class="fault-form" data-name="${esc(c.name)}" style="display:flex;gap:6px"><input name="value" placeholder="${esc(c.example)}" size="8" aria-label="${esc(c.name)} value"><button>Set</button>
      ${a ? `<button type="button" class="secondary" data-clear="${esc(c.name)}">Clear</button>` : ""}</form></td></tr>`;
  }).join("");
  main.innerHTML = `<h1>Demo platform</h1><p class="muted">Break something, watch the budget burn, get paged. Set a fault flag; clear it to recover.</p>
    <div class="toolbar"><button class="danger" id="clear-all">Clear every fault</button>
      ${lr.status === 200 ? `<button class="secondary" id="load-toggle" data-on="${loadOn}">${loadOn ? "Stop the background load" : "Start the background load"}</button>
      <span class="badge ${loadOn ? "ok" : ""}">load ${loadOn ? "on" : "off"}</span>` : ""}</div>
    <div class="panel"><table><thead><tr><th>Fault flag</th><th>What it does</th><th>Now</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>
    <h2>Game days</h2><div id="gamedays"><p class="muted">Loading…</p></div>`;
  for (const f of document.querySelectorAll(".fault-form")) {
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = new FormData(f).get("value") || f.querySelector("input").placeholder;
      try { await api("/api/v1/demo/faults/" + encodeURIComponent(f.dataset.name), { method: "PUT", body: { value: String(v), source: "web UI" } }); toast(f.dataset.name + " = " + v); route(); } catch (e) { toast("Refused: " + e.message); }
    });
  }
  for (const b of document.querySelectorAll("[data-clear]")) {
    b.addEventListener("click", async () => {
      try { await api("/api/v1/demo/faults/" + encodeURIComponent(b.dataset.clear), { method: "DELETE" }); toast(b.dataset.clear + " cleared"); route(); } catch (e) { toast(e.message); }
    });
  }
  await renderGamedays();
  document.getElementById("load-toggle")?.addEventListener("click", async (ev) => {
    const on = ev.target.dataset.on !== "true";
    try { await api("/api/v1/demo/load", { method: "PUT", body: { enabled: on } }); toast("Background load " + (on ? "on" : "off")); route(); } catch (e) { toast(e.message); }
  });
  document.getElementById("clear-all").addEventListener("click", async () => {
    try { await api("/api/v1/demo/faults", { method: "DELETE" }); toast("Every fault cleared"); route(); } catch (e) { toast(e.message); }
  });
};

// renderGamedays shows the shipped scenarios with a launcher, and the runs
// of this process with their reports.
async function renderGamedays() {
  const el = document.getElementById("gamedays");
  const r = await api("/api/v1/demo/gamedays", { allow: [404] });
  if (r.status === 404) { el.innerHTML = '<p class="muted">Game days need the demo platform.</p>'; return; }
  const { scenarios = [], runs = [] } = r.data.data || {};
  const running = runs.find((x) => x.status === "running");
  el.innerHTML = `<p class="muted">A drill sends its own load, sets and clears faults on its timeline after an hour of steady history, and scores
    detection, acknowledgement and resolution against the workbook. One at a time; a smoke run plays the timeline 90 times faster (scores then mean little).</p>
    <div class="panel"><table><thead><tr><th>Scenario</th><th>What happens</th><th class="num">Duration</th><th></th></tr></thead><tbody>${
      scenarios.map((s) => `<tr><td>${esc(s.name)}</td><td class="wrap">${esc(s.title)}</td><td class="num">${dur(s.duration_seconds)}</td>
      <td><button data-gameday="${esc(s.name)}" ${running ? "disabled" : ""}>Run</button> <button class="secondary" data-gameday="${esc(s.name)}" data-scale="90" ${running ? "disabled" : ""}>Smoke run</button></td></tr>`).join("")
    }</tbody></table></div>
    ${runs.map((x) => `<div class="panel" data-run="${x.id}" data-status="${esc(x.status)}"><h2 style="margin-top:0">Run ${x.id}: ${esc(x.scenario)}
      <span class="badge ${x.status === "done" ? "ok" : x.status === "failed" ? "bad" : "warn"}">${esc(x.status)}</span>
      ${x.score !== undefined && x.score !== null ? `<span class="badge">score ${num(x.score, 0)}/100</span>` : ""}</h2>
      <p class="muted">started ${ago(x.started_at)}${x.time_scale > 1 ? `, ${x.time_scale}× faster` : ""}${x.error ? " · " + esc(x.error) : ""}</p>
      ${x.report ? `<pre class="report">${esc(x.report)}</pre>` : ""}</div>`).join("")}`;
  for (const b of el.querySelectorAll("[data-gameday]")) {
    b.addEventListener("click", async () => {
      try {
        await api("/api/v1/demo/gamedays/" + encodeURIComponent(b.dataset.gameday), { method: "POST", body: b.dataset.scale ? { time_scale: Number(b.dataset.scale) } : {} });
        toast("Game day " + b.dataset.gameday + " started");
        await renderGamedays();
      } catch (e) { toast(e.message); }
    });
  }
  if (running) setTimeout(() => { if (document.getElementById("gamedays")) renderGamedays(); }, 3000);
}

// --- routing -------------------------------------------------------------

async function route() {
  const [, page = "", arg] = (location.hash || "#/").match(/^#\/([^/]*)\/?(.*)$/) || [];
  const name = page === "" ? "slos" : page;
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.page === ({ slo: "slos", incident: "incidents" }[name] || name));
  const fn = pages[name];
  if (!fn) { main.innerHTML = `<h1>Not found</h1><p><a href="#/">SLOs</a></p>`; return; }
  document.body.dataset.page = "";
  try {
    await fn(decodeURIComponent(arg || ""));
  } catch (e) {
    main.innerHTML = `<h1>Something went wrong</h1><p class="muted">${esc(e.message)}</p>`;
  }
  document.body.dataset.page = name;
}

document.getElementById("token-button").addEventListener("click", () => {
  const t = prompt("API token (kept in this browser, sent as a bearer token on changes):", token());
  if (t !== null) { localStorage.setItem("burnrate-token", t.trim()); toast(t.trim() ? "Token saved" : "Token cleared"); }
});
window.addEventListener("hashchange", route);
route();
