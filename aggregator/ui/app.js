"use strict";
// Streetwatch review UI: plain JavaScript, no build step, no external assets.
const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
// Replays carry media time (seconds into the video); live cameras carry Unix time.
const when = (ts) => (ts == null ? "" : ts < 1e9 ? `t=${ts.toFixed(1)} s` : new Date(ts * 1000).toLocaleString());
const num = (v) => (v == null ? "" : Number(v).toFixed(1));
const state = { user: null, events: [], selected: -1, cases: [], caseId: null };

async function api(path, opts = {}) {
  const res = await fetch(path, { credentials: "same-origin", headers: { "Content-Type": "application/json" }, ...opts });
  if (res.status === 401) { showLogin(); throw new Error("not logged in"); }
  const body = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(body?.detail ? JSON.stringify(body.detail) : res.statusText);
  return body;
}

function showLogin() {
  state.user = null;
  for (const id of ["queue-view", "cases-view", "stats-view"]) $("#" + id).hidden = true;
  $("#login-view").hidden = false; $("#nav").hidden = true; $("#logout").hidden = true; $("#who").textContent = "";
}

function show(view) {
  for (const v of ["queue", "cases", "stats"]) $(`#${v}-view`).hidden = v !== view;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
  ({ queue: loadQueue, cases: loadCases, stats: loadStats })[view]();
}

async function start() {
  try { state.user = await api("/api/v1/auth/me"); } catch { return; }
  $("#login-view").hidden = true; $("#nav").hidden = false; $("#logout").hidden = false;
  $("#who").textContent = `${state.user.username} (${state.user.role})`;
  show((location.hash || "#queue").slice(1));
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const res = await fetch("/api/v1/auth/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: f.get("username"), password: f.get("password") }) });
  if (!res.ok) { $("#login-error").textContent = (await res.json()).detail; return; }
  $("#login-error").textContent = ""; start();
});
$("#logout").addEventListener("click", async () => { await api("/api/v1/auth/logout", { method: "POST" }); showLogin(); });
window.addEventListener("hashchange", () => state.user && show(location.hash.slice(1) || "queue"));

// ---- queue -------------------------------------------------------------------------------
async function loadQueue() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData($("#filters"))) if (v) params.set(k, v);
  params.set("limit", "100");
  const data = await api("/api/v1/events?" + params);
  state.events = data.items; state.selected = -1;
  $("#queue").innerHTML = data.items.map((e, i) => `
    <li data-i="${i}" data-event="${esc(e.event_id)}">
      ${e.snapshot_status === "available" ? `<img alt="snapshot" loading="lazy" src="/api/v1/media/${esc(e.snapshot_id)}">` : `<span class="noimg"></span>`}
      <div><b>${esc(e.type)}</b> <span class="tag ${esc(e.review_status)}">${esc(e.review_status)}</span><br>
      ${esc(e.camera)} / ${esc(e.zone)}<br><span class="muted">${when(e.started_ts)} · ${num(e.value)} ${esc(e.unit)}</span></div>
    </li>`).join("") || `<li class="muted">No events match.</li>`;
  $("#detail").innerHTML = `<p class="muted">${data.total} events. Select one.</p>`;
}
$("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadQueue(); });
$("#queue").addEventListener("click", (e) => { const li = e.target.closest("li[data-i]"); if (li) select(+li.dataset.i); });

async function select(i) {
  if (i < 0 || i >= state.events.length) return;
  state.selected = i;
  for (const li of document.querySelectorAll("#queue li")) li.classList.toggle("selected", +li.dataset.i === i);
  document.querySelector(`#queue li[data-i="${i}"]`)?.scrollIntoView({ block: "nearest" });
  const e = await api(`/api/v1/events/${state.events[i].event_id}`);
  const clip = e.clip_status === "available" ? `<video id="clip" controls muted preload="auto" src="${esc(e.clip_url)}"></video>`
    : e.clip_status === "pending" ? `<p class="muted">Clip pending: not uploaded yet.</p>` : "";
  $("#detail").innerHTML = `
    <h2>${esc(e.type)} <span class="tag ${esc(e.review_status)}">${esc(e.review_status)}</span></h2>
    <p>${esc(e.camera)} / ${esc(e.zone)} · ${when(e.started_ts)} · value ${num(e.value)} ${esc(e.unit)} · severity ${esc(e.severity)}
    ${e.case_id ? ` · <a href="#cases" data-case="${e.case_id}">case #${e.case_id}</a>` : ""}</p>
    ${clip}
    ${e.snapshot_status === "available" ? `<img alt="annotated snapshot" src="${esc(e.snapshot_url)}">` : ""}
    <div class="actions">
      <button id="confirm-btn" ${e.review_status !== "new" ? "disabled" : ""}>Confirm (c)</button>
      <button id="dismiss-btn" ${e.review_status !== "new" ? "disabled" : ""}>Dismiss (d)</button>
    </div>
    <h3>History</h3><ol>${e.history.map((h) => `<li>${esc(h.phase)} at ${when(h.ts)} (value ${num(h.value)})</li>`).join("")}</ol>
    <h3>Review</h3><ol>${e.audit.map((a) => `<li>${esc(a.action)} by ${esc(a.username)} ${when(a.at)} ${esc(a.reason || "")}</li>`).join("") || "<li class=muted>none yet</li>"}</ol>`;
  $("#confirm-btn").onclick = confirmSelected;
  $("#dismiss-btn").onclick = dismissSelected;
}

async function confirmSelected() {
  const e = state.events[state.selected]; if (!e) return;
  const r = await api(`/api/v1/events/${e.event_id}/confirm`, { method: "POST", body: "{}" });
  e.review_status = "confirmed"; await select(state.selected);
  $("#detail").insertAdjacentHTML("afterbegin", `<p class="tag confirmed" role="status">Confirmed into case #${r.case_id}</p>`);
}

async function dismissSelected() {
  const e = state.events[state.selected]; if (!e) return;
  const dlg = $("#dismiss-dialog"); dlg.returnValue = ""; dlg.showModal();
  const reason = await new Promise((ok) => dlg.addEventListener("close", () => ok(dlg.returnValue), { once: true }));
  if (!reason) return;
  await api(`/api/v1/events/${e.event_id}/dismiss`, { method: "POST", body: JSON.stringify({ reason }) });
  e.review_status = "dismissed"; await select(state.selected);
}

document.addEventListener("keydown", (ev) => {
  if ($("#queue-view").hidden || ev.target.closest("input, select, textarea, dialog")) return;
  const keys = { j: () => select(state.selected + 1), k: () => select(state.selected - 1),
    Enter: () => select(Math.max(0, state.selected)), c: confirmSelected, d: dismissSelected };
  if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
});
$("#dismiss-dialog").addEventListener("keydown", (ev) => {
  const v = { 1: "false_positive", 2: "duplicate", 3: "not_actionable" }[ev.key];
  if (v) $("#dismiss-dialog").close(v);
});

// ---- cases -------------------------------------------------------------------------------
const NEXT = { filed: ["dispatched", "cancelled"], dispatched: ["in_progress", "cancelled"], in_progress: ["resolved", "cancelled"],
  resolved: ["verified", "in_progress"], verified: ["closed"], closed: [], cancelled: [] };

async function loadCases() {
  const data = await api("/api/v1/cases?limit=200");
  state.cases = data.items;
  const now = Date.now() / 1000;
  $("#cases tbody").innerHTML = data.items.map((c) => `
    <tr data-case="${c.id}"><td>${c.id}</td><td>${esc(c.type)}</td><td>${esc(c.camera)} / ${esc(c.zone)}</td>
    <td>${esc(c.department)}</td><td><span class="tag">${esc(c.status)}</span></td>
    <td class="${!c.closed_at && c.deadline_at < now ? "error" : ""}">${when(c.deadline_at)}</td></tr>`).join("");
  if (state.caseId) openCase(state.caseId);
}
$("#cases tbody").addEventListener("click", (e) => { const tr = e.target.closest("tr[data-case]"); if (tr) openCase(+tr.dataset.case); });
document.addEventListener("click", (e) => { const a = e.target.closest("a[data-case]"); if (a) state.caseId = +a.dataset.case; });

async function openCase(id) {
  state.caseId = id;
  for (const tr of document.querySelectorAll("#cases tbody tr")) tr.classList.toggle("selected", +tr.dataset.case === id);
  const c = await api(`/api/v1/cases/${id}`);
  $("#case-detail").innerHTML = `
    <h2>Case #${c.id}: ${esc(c.category)} <span class="tag">${esc(c.status)}</span></h2>
    <p>${esc(c.type)} at ${esc(c.camera)} / ${esc(c.zone)} ${esc(c.address)} · ${esc(c.department)} · priority ${esc(c.priority)}
      · deadline ${when(c.deadline_at)} · assignee ${esc(c.assignee || "none")}</p>
    <div class="actions">${NEXT[c.status].map((s) => `<button data-status="${s}">${s.replace("_", " ")}</button>`).join("")}</div>
    <label>Note for the audit log <input id="case-note"></label>
    <h3>Events</h3><ol>${c.events.map((e) => `<li>${when(e.started_ts)} ${num(e.value)} ${esc(e.unit)}</li>`).join("")}</ol>
    <h3>Audit</h3><ol>${c.audit.map((a) => `<li>${when(a.at)} ${esc(a.username)}: ${esc(a.action)} ${esc(JSON.stringify(a.detail))} ${esc(a.reason || "")}</li>`).join("")}</ol>`;
  for (const b of document.querySelectorAll("#case-detail button[data-status]")) {
    b.onclick = async () => {
      try {
        await api(`/api/v1/cases/${id}`, { method: "PATCH", body: JSON.stringify({ status: b.dataset.status, note: $("#case-note").value || null }) });
        loadCases();
      } catch (err) { $("#case-detail").insertAdjacentHTML("afterbegin", `<p class="error" role="alert">${esc(err.message)}</p>`); }
    };
  }
}

// ---- statistics --------------------------------------------------------------------------
function bars(title, data) {
  const entries = Object.entries(data); const max = Math.max(1, ...entries.map(([, v]) => v));
  const h = 18 * entries.length + 10;
  return `<div class="card"><h2>${esc(title)}</h2><svg width="100%" height="${h}" viewBox="0 0 360 ${h}" role="img" aria-label="${esc(title)}">
    ${entries.map(([k, v], i) => `<text x="0" y="${18 * i + 13}">${esc(k)}</text>
      <rect x="130" y="${18 * i + 3}" width="${(200 * v) / max}" height="12" fill="#0b63c5"></rect>
      <text x="${135 + (200 * v) / max}" y="${18 * i + 13}">${v}</text>`).join("")}</svg></div>`;
}
async function loadStats() {
  const s = await api("/api/v1/stats");
  const dur = (x) => (x == null ? "–" : `${(x / 60).toFixed(1)} min`);
  $("#stats").innerHTML = `
    <div class="card"><h2>Cases</h2><p>open ${s.open_cases} · overdue ${s.overdue_cases}<br>
      median time to confirm ${dur(s.median_time_to_confirm_s)} · to close ${dur(s.median_time_to_close_s)}</p></div>
    ${bars("Events by type", s.events_by_type)}${bars("Events by camera", s.events_by_camera)}
    ${bars("Events by hour (UTC)", Object.fromEntries(Object.entries(s.events_by_hour).filter(([, v]) => v)))}
    ${bars("Hotspots (confirmed)", Object.fromEntries(s.hotspots.map((h) => [`${h.camera}/${h.zone}`, h.confirmed])))}`;
}

start();
