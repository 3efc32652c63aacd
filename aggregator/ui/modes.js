"use strict";
// Operating modes: the banner over every view while a mode other than peacetime is in force
// (GET /api/v1/modes every 5 s and after each switch), and the Modes view (#modes): what each
// mode changes, the switch form (supervisors), switches in force and scheduled, and the audit.
const MODES_POLL_MS = 5000;
const PEACETIME = "peacetime";
const modes = { timer: null, definitions: [] };
const canSwitchModes = () => allows("switch_modes", "supervisor");

// Today's switch reads "14:02"; an older one carries its date.
function clock(ts) {
  if (ts == null) return "";
  const d = new Date(ts * 1000);
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === new Date().toDateString() ? hm : `${d.toLocaleDateString()} ${hm}`;
}
// "city", "area:c12" -> "area c12", "camera:cam-1" -> "camera cam-1".
const scopeText = (scope) => String(scope ?? "").replace(":", " ");
const modeName = (s) => String(s.label || s.mode).toUpperCase();

// A drill says DRILL first, whatever its label, so nobody takes it for the real thing.
function bannerItem(s) {
  const name = modeName(s);
  const title = s.drill && !name.includes("DRILL") ? `DRILL: ${name}` : name;
  const until = s.ends_at ? ` until ${clock(s.ends_at)}` : "";
  return `<div class="mode-item${s.drill ? " drill" : ""}" data-mode="${esc(s.mode)}" data-switch="${esc(s.id)}">
    <b class="mode-name">${esc(title)}</b> — <span class="mode-scope">${esc(scopeText(s.scope))}</span>
    — since ${esc(clock(s.starts_at))}${esc(until)} by <span class="mode-actor">${esc(s.actor)}</span>:
    <span class="mode-reason">${esc(s.reason)}</span>${s.drill ? ` <span class="tag">exercise, not a real incident</span>` : ""}</div>`;
}

function renderBanner(data) {
  const live = (data.active || []).filter((s) => s.mode !== PEACETIME);
  const banner = $("#mode-banner");
  banner.innerHTML = live.map(bannerItem).join("");
  banner.hidden = live.length === 0;
}

let bannerBusy = false;
async function refreshModes() {
  if (bannerBusy || !state.user) return null;
  bannerBusy = true;
  try {
    const data = await api("/api/v1/modes");
    modes.definitions = data.definitions || [];
    renderBanner(data);
    return data;
  } finally { bannerBusy = false; }
}

function startBanner() {
  stopBanner();
  modes.timer = setInterval(() => refreshModes().catch(showError), MODES_POLL_MS);
  refreshModes().catch(showError);
}
function stopBanner() {
  clearInterval(modes.timer); modes.timer = null;
  $("#mode-banner").hidden = true; $("#mode-banner").innerHTML = "";
}
sessionHooks.login.push(startBanner);
sessionHooks.logout.push(stopBanner);

// ---- the Modes view ----------------------------------------------------------------------
// {crowding: {min_count: 4}} -> "crowding: min_count 4".
function changes(byType) {
  return Object.entries(byType || {}).map(([type, params]) => `<li>${esc(label(type))}: ${esc(Object.entries(params || {})
    .map(([k, v]) => `${label(k)} ${Array.isArray(v) ? v.join(", ") : v}`).join(", "))}</li>`).join("");
}

function definitionCard(d) {
  const rules = changes(d.rules), cases = changes(d.cases);
  return `<div class="card mode-definition${d.drill ? " drill" : ""}" data-mode="${esc(d.name)}">
    <h2>${esc(d.label || d.name)} <span class="muted">${esc(d.name)}</span>${d.drill ? ` <span class="tag">drill</span>` : ""}</h2>
    <p>Runs rules without modes and rules whose modes name ${esc([d.name, ...(d.tags || [])].join(" or "))}.</p>
    ${rules ? `<h3>Rule thresholds</h3><ul>${rules}</ul>` : ""}
    ${cases ? `<h3>Cases</h3><ul>${cases}</ul>` : ""}
    ${!rules && !cases ? `<p class="muted">Changes no thresholds.</p>` : ""}
    ${d.drill ? `<p>Events and cases are marked drill and kept out of Open311 and the statistics.</p>` : ""}</div>`;
}

function switchItem(s) {
  const cancel = canSwitchModes() ? ` <button type="button" class="cancel-switch" data-id="${esc(s.id)}">Cancel</button>` : "";
  const until = s.ends_at ? ` until ${esc(when(s.ends_at))}` : "";
  return `<li data-switch="${esc(s.id)}" class="${s.drill ? "drill" : ""}"><b>${esc(modeName(s))}</b> · ${esc(scopeText(s.scope))}
    · from ${esc(when(s.starts_at))}${until} · ${esc(s.actor)}: ${esc(s.reason)}${cancel}</li>`;
}

function auditRow(s) {
  const cancelled = s.cancelled_at ? `${when(s.cancelled_at)}${s.cancelled_by ? ` by ${esc(s.cancelled_by)}` : ""}` : "";
  return `<tr data-switch="${esc(s.id)}" class="${s.cancelled_at ? "cancelled" : ""}"><td>${esc(s.id)}</td>
    <td class="mode">${esc(s.label || s.mode)}${s.drill ? ` <span class="tag">drill</span>` : ""}</td>
    <td class="scope">${esc(scopeText(s.scope))}</td><td>${when(s.starts_at)}</td><td>${s.ends_at ? when(s.ends_at) : "–"}</td>
    <td class="actor">${esc(s.actor)}</td><td class="reason">${esc(s.reason)}</td><td>${cancelled}</td></tr>`;
}

async function loadModes() {
  const [data, audit] = await Promise.all([api("/api/v1/modes"), api("/api/v1/modes/switches?limit=200")]);
  modes.definitions = data.definitions || [];
  renderBanner(data); // a switch made here shows at once, not at the next poll
  $("#mode-definitions").innerHTML = modes.definitions.map(definitionCard).join("");
  const select = $("#mode-switch select[name=mode]"), keep = select.value;
  select.innerHTML = modes.definitions.map((d) => `<option value="${esc(d.name)}">${esc(d.label || d.name)}${d.drill && !/drill/i.test(d.label || d.name) ? " (drill)" : ""}</option>`).join("");
  if (keep) select.value = keep;
  $("#mode-switch").hidden = !canSwitchModes();
  $("#mode-switch-none").hidden = canSwitchModes();
  $("#modes-active").innerHTML = (data.active || []).map(switchItem).join("") || `<li class="muted">Peacetime everywhere.</li>`;
  $("#modes-scheduled").innerHTML = (data.scheduled || []).map(switchItem).join("") || `<li class="muted">Nothing scheduled.</li>`;
  const rows = Array.isArray(audit) ? audit : audit?.items || [];
  $("#mode-audit tbody").innerHTML = rows.map(auditRow).join("") || `<tr><td colspan="8" class="muted">No switches yet.</td></tr>`;
}

const unixS = (v) => (v ? new Date(v).getTime() / 1000 : undefined);

$("#mode-switch select[name=scope_kind]").addEventListener("change", (ev) => {
  const input = $("#mode-switch input[name=scope_value]");
  input.disabled = ev.target.value === "city"; input.required = !input.disabled;
  input.placeholder = { city: "not needed for the city", area: "grid cell", group: "group name", camera: "camera id" }[ev.target.value];
});

$("#mode-switch").addEventListener("submit", guarded(async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const kind = f.get("scope_kind");
  const body = { mode: f.get("mode"), scope: kind === "city" ? "city" : `${kind}:${String(f.get("scope_value") || "").trim()}`,
    reason: String(f.get("reason") || "").trim(), starts_at: unixS(f.get("starts_at")), ends_at: unixS(f.get("ends_at")) };
  $("#mode-errors").innerHTML = "";
  try {
    await api("/api/v1/modes/switches", { method: "POST", body: JSON.stringify(body) });
  } catch (err) {
    if (err.status !== 422 && err.status !== 400) throw err;
    const list = Array.isArray(err.detail) ? err.detail : [{ loc: "", msg: err.message }];
    $("#mode-errors").innerHTML = list.map((p) => `<li><b>${esc(locText(p.loc) || "switch")}</b>: ${esc(p.msg)}</li>`).join("");
    return;
  }
  ev.target.reset();
  $("#mode-switch input[name=scope_value]").disabled = true;
  await loadModes();
}));

$("#modes-view").addEventListener("click", guarded(async (ev) => {
  const b = ev.target.closest("button.cancel-switch"); if (!b) return;
  await api(`/api/v1/modes/switches/${encodeURIComponent(b.dataset.id)}`, { method: "DELETE" });
  await loadModes();
}));

addView("modes", { load: loadModes });
