"use strict";
// Streetwatch review UI: plain JavaScript, no build step, no external assets.
// What the user may do (review events, move cases), the event types, severities and dismiss
// reasons all come from the server (GET /api/v1/auth/me and each case's `transitions`): the
// UI keeps no copy of the server's rules, so it cannot offer an action the server refuses.
const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
// Replays carry media time (seconds into the video); live cameras carry Unix time.
const when = (ts) => (ts == null ? "" : ts < 1e9 ? `t=${ts.toFixed(1)} s` : new Date(ts * 1000).toLocaleString());
// Counts read as "12 persons", measurements keep one decimal ("3.5 min").
const num = (v) => (v == null ? "" : Number.isInteger(Number(v)) ? String(Number(v)) : Number(v).toFixed(1));
const label = (s) => String(s ?? "").replace(/_/g, " ");
const state = { user: null, events: [], selected: -1, selectSeq: 0, cases: [], caseId: null };
const can = (what) => Boolean(state.user?.can?.[what]);
// The roles, least first: each includes the ones before it (aggregator/auth.py ROLES).
const ROLES = ["viewer", "operator", "supervisor", "admin"];
// The server's `can` when it reports the ability; else the least role the API documents for it.
const allows = (ability, role) => state.user?.can?.[ability] ?? (ROLES.indexOf(state.user?.role) >= ROLES.indexOf(role));

// ---- talking to the server ---------------------------------------------------------------
class ApiError extends Error {
  // `detail`: the server's own detail (a list of {loc, msg} for invalid input), for forms
  // that show each problem next to the field it names.
  constructor(status, message, detail = null) { super(message); this.status = status; this.detail = detail; }
}

// Where a problem is: our routes name it ("zones[0].polygon"); FastAPI's own body errors give
// a list (["body", "config", "zones", 0]) that reads the same way once written out.
function locText(loc) {
  if (typeof loc === "string") return loc;
  return (loc || []).slice(loc?.[0] === "body" ? 1 : 0)
    .reduce((out, p) => (typeof p === "number" ? `${out}[${p}]` : out ? `${out}.${p}` : String(p)), "");
}

// The server's own words: FastAPI answers {"detail": "..."} or, for invalid input, a list.
function detailText(body, res) {
  const d = body?.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((x) => `${locText(x.loc) || "request"}: ${x.msg}`).join("; ");
  if (d != null) return JSON.stringify(d);
  return `${res.status} ${res.statusText || "error"}`.trim();
}

// One request: the parsed answer, or an ApiError carrying the server's message.
async function request(path, opts = {}) {
  let res, text;
  try {
    res = await fetch(path, { credentials: "same-origin", headers: { "Content-Type": "application/json" }, ...opts });
    text = res.status === 204 ? "" : await res.text();
  } catch (err) {
    throw new ApiError(0, `cannot reach the server (${err.message})`);
  }
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch {
    if (res.ok) throw new ApiError(res.status, `unreadable answer from ${path}`);
  }
  if (!res.ok) throw new ApiError(res.status, detailText(body, res), body?.detail ?? null);
  return body;
}

async function api(path, opts = {}) {
  try {
    return await request(path, opts);
  } catch (err) {
    // A session that ended (expired, logged out elsewhere) sends the user back to the login
    // form, which says why; the error is then shown there, not in the alert too.
    if (err.status === 401 && state.user) { showLogin(`Your session has ended: ${err.message}`); err.shown = true; }
    throw err;
  }
}

function showError(err) {
  if (err?.shown) return;
  $("#alert-text").textContent = err?.message || String(err);
  $("#alert").hidden = false;
}
function clearAlert() { $("#alert").hidden = true; $("#alert-text").textContent = ""; }
$("#alert-close").addEventListener("click", clearAlert);
// Every action started from the page reports its failure in the alert; none fails silently.
const guarded = (fn) => async (...args) => { try { return await fn(...args); } catch (err) { showError(err); } };

// ---- session -----------------------------------------------------------------------------
// The views by hash name. fleet.js, zones.js and modes.js add theirs with addView: `section`
// is the element shown, `nav` the menu entry lit, `load(arg)` gets what follows "name/" in
// the hash, `leave()` stops whatever the view polls.
const views = {};
let currentView = null;
function addView(name, spec) { views[name] = { section: `${name}-view`, nav: name, ...spec }; }
// Other views' hooks: started at login (the mode banner), stopped when the session ends.
const sessionHooks = { login: [], logout: [] };

function leaveView() {
  if (currentView) views[currentView].leave?.();
  currentView = null;
}

function showLogin(message = "") {
  state.user = null;
  leaveView();
  for (const hook of sessionHooks.logout) hook();
  for (const spec of Object.values(views)) $("#" + spec.section).hidden = true;
  $("#login-view").hidden = false; $("#nav").hidden = true; $("#logout").hidden = true; $("#who").textContent = "";
  $("#login-error").textContent = message;
}

// `hash` is "name" or "name/arg" (e.g. "camera/cam-1").
function show(hash) {
  const cut = hash.indexOf("/");
  let view = cut < 0 ? hash : hash.slice(0, cut);
  const arg = cut < 0 ? "" : decodeURIComponent(hash.slice(cut + 1));
  if (!views[view]) view = "queue";
  clearAlert();
  leaveView();
  currentView = view;
  const spec = views[view];
  for (const s of Object.values(views)) $("#" + s.section).hidden = s.section !== spec.section;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === spec.nav);
  guarded(spec.load)(arg);
}

function fillSelect(select, values) {
  const keep = select.value;
  select.innerHTML = `<option value="">any</option>` + (values || []).map((v) => `<option value="${esc(v)}">${esc(v)}</option>`).join("");
  select.value = (values || []).includes(keep) ? keep : "";
}

// The parts of the page that depend on who is logged in.
function applyUser(user) {
  $("#who").textContent = `${user.username} (${user.role})`;
  fillSelect($("#filters select[name=type]"), user.event_types);
  fillSelect($("#filters select[name=severity]"), user.severities);
  $("#dismiss-reasons").innerHTML = (user.dismiss_reasons || []).map((r, i) =>
    `<button value="${esc(r)}">${i + 1} ${esc(label(r))}</button>`).join("");
  $("#keys-hint").textContent = `keys: j/k move, Enter open${can("review") ? ", c confirm, d dismiss" : ""}`;
}

async function start() {
  try {
    state.user = await request("/api/v1/auth/me");
  } catch (err) {
    showLogin();
    if (err.status !== 401) showError(err); // 401 just means: not logged in yet
    return;
  }
  applyUser(state.user);
  $("#login-view").hidden = true; $("#nav").hidden = false; $("#logout").hidden = false;
  for (const hook of sessionHooks.login) hook();
  show((location.hash || "#queue").slice(1));
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  clearAlert();
  const f = new FormData(e.target);
  try {
    await request("/api/v1/auth/login", { method: "POST", body: JSON.stringify({ username: f.get("username"), password: f.get("password") }) });
  } catch (err) { $("#login-error").textContent = err.message; return; }
  $("#login-error").textContent = ""; start();
});
$("#logout").addEventListener("click", guarded(async () => { clearAlert(); await api("/api/v1/auth/logout", { method: "POST" }); showLogin(); }));
window.addEventListener("hashchange", () => state.user && show(location.hash.slice(1) || "queue"));

// ---- queue -------------------------------------------------------------------------------
// A closed crowd ends near zero: its peak, not its last value, says how bad it was.
function measure(e) {
  if (e.peak == null) return `${num(e.value)} ${esc(e.unit)}`;
  const now = e.status === "open" ? ` (now ${num(e.value)})` : "";
  return `peak ${num(e.peak)} ${esc(e.unit)}${now}`;
}

async function loadQueue() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData($("#filters"))) if (v) params.set(k, v);
  params.set("limit", "100");
  const data = await api("/api/v1/events?" + params);
  state.events = data.items; state.selected = -1; state.selectSeq++;
  $("#queue").innerHTML = data.items.map((e, i) => `
    <li data-i="${i}" data-event="${esc(e.event_id)}">
      ${e.snapshot_status === "available" ? `<img alt="snapshot" loading="lazy" src="/api/v1/media/${esc(e.snapshot_id)}">` : `<span class="noimg"></span>`}
      <div><b>${esc(e.type)}</b>${e.stage ? ` · ${esc(e.stage)}` : ""} <span class="tag ${esc(e.review_status)}">${esc(e.review_status)}</span><br>
      ${esc(e.camera)} / ${esc(e.zone)}<br><span class="muted measure">${when(e.started_ts)} · ${measure(e)}</span></div>
    </li>`).join("") || `<li class="muted">No events match.</li>`;
  $("#detail").innerHTML = `<p class="muted">${esc(data.total)} events. Select one.</p>`;
}
$("#filters").addEventListener("submit", (e) => { e.preventDefault(); clearAlert(); guarded(loadQueue)(); });
$("#queue").addEventListener("click", (e) => { const li = e.target.closest("li[data-i]"); if (li) guarded(select)(+li.dataset.i); });

function reviewButtons(e) {
  if (!can("review")) return ""; // a viewer is offered no review actions at all
  const off = e.review_status !== "new" ? "disabled" : "";
  return `<div class="actions"><button id="confirm-btn" ${off}>Confirm (c)</button>
    <button id="dismiss-btn" ${off}>Dismiss (d)</button></div>`;
}

async function select(i) {
  if (i < 0 || i >= state.events.length) return;
  state.selected = i;
  const seq = ++state.selectSeq;
  for (const li of document.querySelectorAll("#queue li")) li.classList.toggle("selected", +li.dataset.i === i);
  document.querySelector(`#queue li[data-i="${i}"]`)?.scrollIntoView({ block: "nearest" });
  const e = await api(`/api/v1/events/${encodeURIComponent(state.events[i].event_id)}`);
  if (seq !== state.selectSeq) return; // the user moved on while this one loaded
  state.events[i] = { ...state.events[i], ...e };
  const clip = e.clip_status === "available" ? `<video id="clip" controls muted preload="auto" src="${esc(e.clip_url)}"></video>`
    : e.clip_status === "pending" ? `<p class="muted">Clip pending: not uploaded yet.</p>` : "";
  $("#detail").innerHTML = `
    <h2>${esc(e.type)}${e.stage ? ` · ${esc(e.stage)}` : ""} <span class="tag ${esc(e.review_status)}">${esc(e.review_status)}</span></h2>
    <p>${esc(e.camera)} / ${esc(e.zone)} · ${when(e.started_ts)} · <span class="measure">${measure(e)}</span> · severity ${esc(e.severity)}
    ${e.case_id ? ` · <a href="#cases" data-case="${esc(e.case_id)}">case #${esc(e.case_id)}</a>` : ""}</p>
    ${clip}
    ${e.snapshot_status === "available" ? `<img alt="annotated snapshot" src="${esc(e.snapshot_url)}">` : ""}
    ${reviewButtons(e)}
    <h3>History</h3><ol>${(e.history || []).map((h) => `<li>${esc(h.phase)} at ${when(h.ts)} (value ${num(h.value)})</li>`).join("")}</ol>
    <h3>Review</h3><ol>${(e.audit || []).map((a) => `<li>${esc(a.action)} by ${esc(a.username)} ${when(a.at)} ${esc(a.reason || "")}</li>`).join("") || "<li class=muted>none yet</li>"}</ol>`;
  if ($("#confirm-btn")) $("#confirm-btn").onclick = confirmSelected;
  if ($("#dismiss-btn")) $("#dismiss-btn").onclick = dismissSelected;
}

// After a refused action, show what the event is now (someone else may have reviewed it).
async function refreshSelected() {
  try { await select(state.selected); } catch (err) { showError(err); }
}

async function confirmSelected() {
  const e = state.events[state.selected]; if (!e || !can("review")) return;
  clearAlert();
  let r;
  try {
    r = await api(`/api/v1/events/${encodeURIComponent(e.event_id)}/confirm`, { method: "POST", body: "{}" });
  } catch (err) { showError(err); await refreshSelected(); return; }
  e.review_status = "confirmed"; await refreshSelected();
  $("#detail").insertAdjacentHTML("afterbegin", `<p class="tag confirmed" role="status">Confirmed into case #${esc(r.case_id)}</p>`);
}

async function dismissSelected() {
  const e = state.events[state.selected]; if (!e || !can("review")) return;
  clearAlert();
  const dlg = $("#dismiss-dialog"); dlg.returnValue = ""; dlg.showModal();
  const reason = await new Promise((ok) => dlg.addEventListener("close", () => ok(dlg.returnValue), { once: true }));
  if (!reason) return;
  try {
    await api(`/api/v1/events/${encodeURIComponent(e.event_id)}/dismiss`, { method: "POST", body: JSON.stringify({ reason }) });
  } catch (err) { showError(err); await refreshSelected(); return; }
  e.review_status = "dismissed"; await refreshSelected();
}

// Keys act only through buttons on the page: what is not offered (or disabled) cannot be
// done from the keyboard either.
const press = (sel) => { const b = $(sel); if (b && !b.disabled) b.click(); };
document.addEventListener("keydown", (ev) => {
  if ($("#queue-view").hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.target.closest("input, select, textarea, dialog")) return;
  const keys = { j: () => guarded(select)(state.selected + 1), k: () => guarded(select)(state.selected - 1),
    Enter: () => guarded(select)(Math.max(0, state.selected)) };
  if (can("review")) Object.assign(keys, { c: () => press("#confirm-btn"), d: () => press("#dismiss-btn") });
  if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
});
$("#dismiss-dialog").addEventListener("keydown", (ev) => {
  const v = (state.user?.dismiss_reasons || [])[Number(ev.key) - 1];
  if (/^[1-9]$/.test(ev.key) && v) $("#dismiss-dialog").close(v);
});

// ---- cases -------------------------------------------------------------------------------
// The board's filters live in the hash (#cases/grid_cell=G-0101&status=filed), so the map
// and bookmarks can open it filtered.
const CASE_FILTERS = ["grid_cell", "district", "category_code", "status", "overdue"];
async function loadCases(arg = "") {
  const wanted = new URLSearchParams(arg);
  const form = $("#case-filters");
  for (const name of CASE_FILTERS) {
    const input = form.elements[name];
    if (input.type === "checkbox") input.checked = wanted.get(name) === "true";
    else input.value = wanted.get(name) || "";
  }
  const query = new URLSearchParams({ limit: "200" });
  for (const name of CASE_FILTERS) if (wanted.get(name)) query.set(name, wanted.get(name));
  const data = await api(`/api/v1/cases?${query}`);
  state.cases = data.items;
  const now = Date.now() / 1000;
  $("#cases tbody").innerHTML = data.items.map((c) => `
    <tr data-case="${esc(c.id)}"><td>${esc(c.id)}</td><td>${esc(c.category_code)} ${esc(c.category)}</td>
    <td>${esc(c.grid_cell || "–")}</td><td>${c.source === "citizen" ? "citizen report" : `${esc(c.camera)} / ${esc(c.zone)}`}</td>
    <td>${esc(c.department)}</td><td><span class="tag">${esc(c.status)}</span></td><td>${esc(c.stage || "done")}</td>
    <td class="${!c.closed_at && (c.stage_due_at ?? c.deadline_at) < now ? "error" : ""}">${when(c.stage_due_at ?? c.deadline_at)}</td></tr>`).join("");
  if (state.caseId) await openCase(state.caseId);
}
$("#case-filters").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const q = new URLSearchParams();
  for (const name of CASE_FILTERS) if (f.get(name)) q.set(name, f.get(name));
  location.hash = `#cases/${q}`;
});
$("#cases tbody").addEventListener("click", (e) => { const tr = e.target.closest("tr[data-case]"); if (tr) guarded(openCase)(+tr.dataset.case); });
document.addEventListener("click", (e) => { const a = e.target.closest("a[data-case]"); if (a) state.caseId = +a.dataset.case; });

function stagesList(c) {
  const now = Date.now() / 1000;
  return `<ol class="stages">${(c.stages || []).map((st) => `<li class="${st.done ? "done" : st.due_at < now && !c.closed_at ? "late" : ""}">
    ${esc(st.name)}: due ${when(st.due_at)}</li>`).join("")}</ol>`;
}

async function openCase(id) {
  state.caseId = id;
  for (const tr of document.querySelectorAll("#cases tbody tr")) tr.classList.toggle("selected", +tr.dataset.case === id);
  const c = await api(`/api/v1/cases/${id}`);
  // Only the moves the server says this user may make now; none when it says nothing.
  const moves = (c.transitions || []).map((s) => `<button data-status="${esc(s)}">${esc(label(s))}</button>`).join("");
  const stageDone = c.stage && can("update_cases") && !c.closed_at ? `<button id="stage-done">Stage done: ${esc(c.stage)}</button>` : "";
  const where = c.source === "citizen" ? `citizen report (${esc(c.reporter || "")})` : `${esc(c.type)} at ${esc(c.camera)} / ${esc(c.zone)}`;
  $("#case-detail").innerHTML = `
    <h2>Case #${esc(c.id)}: ${esc(c.category_code)} ${esc(c.category)} <span class="tag">${esc(c.status)}</span></h2>
    <p>${where} ${esc(c.address)} · cell ${esc(c.grid_cell || "none")} ${esc(c.district)} · ${esc(c.department)}
      · priority ${esc(c.priority)} · assignee ${esc(c.assignee || "none")}
      ${c.rework_count ? ` · reworked ${esc(c.rework_count)}×` : ""}${c.escalation_level ? ` · escalated ${esc(c.escalation_level)}×` : ""}</p>
    <h3>Stages</h3>${stagesList(c)}
    ${moves || stageDone ? `<div class="actions">${moves}${stageDone}</div><label>Note for the audit log <input id="case-note"></label>` : ""}
    <div id="case-extra"></div>
    <h3>Events</h3><ol>${(c.events || []).map((e) => `<li>${when(e.started_ts)} ${measure(e)}</li>`).join("")}</ol>
    <h3>Audit</h3><ol>${(c.audit || []).map((a) => `<li>${when(a.at)} ${esc(a.username)}: ${esc(a.action)} ${esc(JSON.stringify(a.detail))} ${esc(a.reason || "")}</li>`).join("")}</ol>`;
  for (const b of document.querySelectorAll("#case-detail button[data-status]")) {
    b.onclick = () => moveCase(id, b.dataset.status);
  }
  if (stageDone) $("#stage-done").onclick = () => changeCase(id, { stage_done: true });
  for (const hook of caseHooks) guarded(hook)(c);
}
// Other scripts add parts of the case view (verification by camera) here: hook(case).
const caseHooks = [];

async function changeCase(id, changes) {
  clearAlert();
  try {
    await api(`/api/v1/cases/${id}`, { method: "PATCH", body: JSON.stringify({ ...changes, note: $("#case-note")?.value || null }) });
  } catch (err) { showError(err); }
  // Either way, show the case as it is now: a refused move usually means it changed meanwhile.
  await guarded(loadCases)(location.hash.split("/").slice(1).join("/"));
}
// A supervisor's override of the camera's verdict rides along with the move (verify.js).
const moveCase = (id, status) => changeCase(id, $("#verify-override")?.checked ? { status, override: true } : { status });

// ---- statistics --------------------------------------------------------------------------
function bars(title, data) {
  const entries = Object.entries(data); const max = Math.max(1, ...entries.map(([, v]) => v));
  const h = 18 * entries.length + 10;
  return `<div class="card"><h2>${esc(title)}</h2><svg width="100%" height="${h}" viewBox="0 0 360 ${h}" role="img" aria-label="${esc(title)}">
    ${entries.map(([k, v], i) => `<text x="0" y="${18 * i + 13}">${esc(k)}</text>
      <rect x="130" y="${18 * i + 3}" width="${(200 * v) / max}" height="12" fill="#0b63c5"></rect>
      <text x="${135 + (200 * v) / max}" y="${18 * i + 13}">${esc(v)}</text>`).join("")}</svg></div>`;
}
async function loadStats() {
  const s = await api("/api/v1/stats");
  const dur = (x) => (x == null ? "–" : `${(x / 60).toFixed(1)} min`);
  $("#stats").innerHTML = `
    <div class="card"><h2>Cases</h2><p>open ${esc(s.open_cases)} · overdue ${esc(s.overdue_cases)}<br>
      median time to confirm ${dur(s.median_time_to_confirm_s)} · to close ${dur(s.median_time_to_close_s)}</p></div>
    ${bars("Events by type", s.events_by_type)}${bars("Events by camera", s.events_by_camera)}
    ${bars("Events by hour (UTC)", Object.fromEntries(Object.entries(s.events_by_hour).filter(([, v]) => v)))}
    ${bars("Hotspots (confirmed)", Object.fromEntries(s.hotspots.map((h) => [`${h.camera}/${h.zone}`, h.confirmed])))}`;
  await loadScorecard("department"); // scorecard.js
}

addView("queue", { load: loadQueue });
addView("cases", { load: loadCases });
addView("stats", { load: loadStats });
// After every script of the page has run, so the views of fleet.js etc. are registered.
document.addEventListener("DOMContentLoaded", start);
