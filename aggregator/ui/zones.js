"use strict";
// Camera config view (#camera/<id>): the camera's latest snapshot with the zones of its latest
// central config drawn over it. Admins draw and edit zones and their rules and save a new
// version with a reason; the server validates (its 422 problems are listed by the form).
// Zone points are stored normalized (0..1 of the frame), so they hold at any resolution.
const VIEW_W = 1000; // overlay user units across; the height follows the picture's aspect
const ed = {
  camera: "", seq: 0, latest: null, doc: {}, zones: [], versions: [], presets: null,
  sel: -1, vertex: -1, draft: null, drag: false, h: 562.5, frame: null, dirty: false,
};
const canEditConfigs = () => allows("edit_configs", "admin");
const cam = () => encodeURIComponent(ed.camera);
const round4 = (v) => Math.round(Math.min(1, Math.max(0, v)) * 1e4) / 1e4;
// Rule keys that are not thresholds: not offered as number fields.
const NOT_THRESHOLDS = new Set(["name", "type", "preset", "kind", "classes", "severity", "modes", "evidence", "owner_classes"]);

// ---- loading -----------------------------------------------------------------------------
async function optional(path) {
  try { return await api(path); } catch (err) { if (err.status === 404) return null; throw err; }
}

async function loadCamera(id) {
  const seq = ++ed.seq;
  Object.assign(ed, { camera: id, sel: -1, vertex: -1, draft: null, drag: false, dirty: false, frame: null, h: 562.5 });
  $("#camera-title").textContent = `Camera ${id}`;
  $("#config-errors").innerHTML = "";
  buildStage();
  const [latest, versions, presets] = await Promise.all([
    optional(`/api/v1/cameras/${cam()}/configs/latest`),
    optional(`/api/v1/cameras/${cam()}/configs`),
    ed.presets ?? api("/api/v1/presets"),
  ]);
  if (seq !== ed.seq) return; // the user opened another camera meanwhile
  ed.presets = presets; ed.latest = latest; ed.versions = versions || [];
  // No central config yet: an empty one for this camera (the box keeps its own until saved).
  ed.doc = latest?.config ?? { id, zones: [] };
  ed.zones = structuredClone(ed.doc.zones || []);
  $("#camera-version").textContent = latest
    ? `Central config version ${latest.version}, saved ${when(latest.created_at)} by ${latest.author}: ${latest.reason}`
    : "No central config yet: the box runs its own until one is saved here.";
  $("#config-save").hidden = !canEditConfigs();
  $("#draw-tools").hidden = !canEditConfigs();
  renderAll();
  renderVersions();
}

function buildStage() {
  const url = `/api/v1/cameras/${cam()}/snapshot?at=${Date.now()}`;
  $("#stage").innerHTML = `<img id="snapshot" alt="latest snapshot of ${esc(ed.camera)}" hidden>
    <div id="no-snapshot" class="placeholder">loading the snapshot…</div>
    <svg id="overlay" class="overlay" preserveAspectRatio="none" viewBox="0 0 ${VIEW_W} ${ed.h}"></svg>`;
  const img = $("#snapshot"), seq = ed.seq;
  img.addEventListener("load", () => {
    if (seq !== ed.seq) return;
    ed.frame = { w: img.naturalWidth, h: img.naturalHeight };
    ed.h = (VIEW_W * img.naturalHeight) / img.naturalWidth;
    img.hidden = false; $("#no-snapshot").hidden = true;
    renderOverlay();
  });
  // <img> does not say why it failed: ask once more for the server's message (404: none yet).
  img.addEventListener("error", async () => {
    let why = "no snapshot yet";
    try { await request(url); } catch (err) { if (err.status !== 404) why = `no snapshot: ${err.message}`; }
    if (seq === ed.seq) $("#no-snapshot").textContent = why;
  });
  img.src = url;
  const svg = $("#overlay");
  svg.addEventListener("pointerdown", onPointerDown);
  svg.addEventListener("pointermove", onPointerMove);
  svg.addEventListener("pointerup", onPointerUp);
  svg.addEventListener("pointercancel", onPointerUp);
  svg.addEventListener("contextmenu", onContextMenu);
}

// ---- geometry ----------------------------------------------------------------------------
// A zone saved in pixels is shown (and, once edited, converted) by the snapshot's size.
function frameSize() { return ed.frame ?? { w: 1920, h: 1080 }; }
function normPoints(z) {
  if (z.units !== "pixels") return z.polygon;
  const { w, h } = frameSize();
  return z.polygon.map(([x, y]) => [x / w, y / h]);
}
function makeNormalized(z) {
  if (z.units === "pixels") { z.polygon = normPoints(z).map(([x, y]) => [round4(x), round4(y)]); z.units = "normalized"; }
}
function pointerPos(ev) {
  const r = $("#overlay").getBoundingClientRect();
  return [round4((ev.clientX - r.left) / r.width), round4((ev.clientY - r.top) / r.height)];
}
const svgXY = ([x, y]) => [(x * VIEW_W).toFixed(1), (y * ed.h).toFixed(1)];

// ---- drawing -----------------------------------------------------------------------------
function renderOverlay() {
  const svg = $("#overlay"); if (!svg) return;
  svg.setAttribute("viewBox", `0 0 ${VIEW_W} ${ed.h}`);
  const editable = canEditConfigs();
  let out = "";
  ed.zones.forEach((z, i) => {
    const pts = normPoints(z).map(svgXY);
    const sel = i === ed.sel;
    out += `<polygon class="zone${sel ? " selected" : ""}" data-zone="${i}" points="${pts.map((p) => p.join(",")).join(" ")}"></polygon>`;
    if (pts.length) out += `<text class="zone-label" x="${pts[0][0]}" y="${pts[0][1] - 12}">${esc(z.name)}</text>`;
    if (sel && editable) {
      out += pts.map(([x, y], j) => `<circle class="vertex${j === ed.vertex ? " selected" : ""}" data-zone="${i}" data-vertex="${j}" cx="${x}" cy="${y}" r="10"></circle>`).join("");
    }
  });
  if (ed.draft) {
    const pts = ed.draft.map(svgXY);
    out += `<polyline class="draft" points="${pts.map((p) => p.join(",")).join(" ")}"></polyline>`;
    out += pts.map(([x, y], j) => `<circle class="draft-point${j === 0 ? " first" : ""}" data-draft="${j}" cx="${x}" cy="${y}" r="10"></circle>`).join("");
  }
  svg.innerHTML = out;
}

function updateTools() {
  const drawing = ed.draft != null;
  $("#zone-add").hidden = drawing;
  $("#zone-finish").hidden = !drawing; $("#zone-finish").disabled = !drawing || ed.draft.length < 3;
  $("#zone-cancel").hidden = !drawing;
  $("#vertex-delete").disabled = drawing || ed.sel < 0 || ed.vertex < 0;
  const hint = $("#draw-hint"); hint.classList.remove("error");
  hint.textContent = drawing ? "Click the corners of the zone in order; click the first point or Finish to close it."
    : ed.sel >= 0 ? "Drag a point to move it; right-click a point to delete it." : "Click a zone to edit it.";
}

function markDirty() {
  ed.dirty = true;
  $("#config-save-btn").textContent = "Save (unsaved changes)";
}

function uniqueName() {
  const names = new Set(ed.zones.map((z) => z.name));
  for (let n = ed.zones.length + 1; ; n++) if (!names.has(`zone-${n}`)) return `zone-${n}`;
}

function finishDraft() {
  if (!ed.draft || ed.draft.length < 3) return;
  ed.zones.push({ name: uniqueName(), units: "normalized", polygon: ed.draft, rules: [] });
  ed.draft = null; ed.sel = ed.zones.length - 1; ed.vertex = -1;
  markDirty(); renderAll();
}

function onPointerDown(ev) {
  if (ev.button !== 0) return;
  const t = ev.target.dataset ?? {};
  if (ed.draft) {
    if (!canEditConfigs()) return;
    if (t.draft === "0" && ed.draft.length >= 3) { finishDraft(); return; }
    ed.draft.push(pointerPos(ev)); renderOverlay(); updateTools(); return;
  }
  if (t.vertex != null && canEditConfigs()) {
    ed.sel = +t.zone; ed.vertex = +t.vertex; ed.drag = true;
    $("#overlay").setPointerCapture(ev.pointerId); ev.preventDefault();
    renderOverlay(); updateTools(); return;
  }
  selectZone(t.zone != null ? +t.zone : -1);
}

function onPointerMove(ev) {
  if (!ed.drag) return;
  const z = ed.zones[ed.sel];
  makeNormalized(z);
  z.polygon[ed.vertex] = pointerPos(ev);
  markDirty(); renderOverlay();
}
function onPointerUp() { ed.drag = false; }

function onContextMenu(ev) {
  const t = ev.target.dataset ?? {};
  if (t.vertex == null || !canEditConfigs()) return;
  ev.preventDefault();
  ed.sel = +t.zone; ed.vertex = +t.vertex; deleteVertex();
}

function deleteVertex() {
  const z = ed.zones[ed.sel];
  if (!z || ed.vertex < 0) return;
  if (z.polygon.length <= 3) {
    $("#draw-hint").textContent = "A zone needs at least 3 points: delete the zone instead.";
    $("#draw-hint").classList.add("error"); return;
  }
  makeNormalized(z);
  z.polygon.splice(ed.vertex, 1); ed.vertex = -1;
  markDirty(); renderOverlay(); updateTools(); renderZones();
}

function selectZone(i) {
  ed.sel = i; ed.vertex = -1;
  renderOverlay(); updateTools();
  for (const c of document.querySelectorAll("#zones .zone-card")) c.classList.toggle("selected", +c.dataset.zone === i);
}

$("#zone-add").addEventListener("click", () => { ed.draft = []; ed.sel = -1; ed.vertex = -1; renderOverlay(); updateTools(); });
$("#zone-finish").addEventListener("click", finishDraft);
$("#zone-cancel").addEventListener("click", () => { ed.draft = null; renderOverlay(); updateTools(); });
$("#vertex-delete").addEventListener("click", deleteVertex);
document.addEventListener("keydown", (ev) => {
  if ($("#camera-view").hidden || ev.target.closest("input, select, textarea")) return;
  if (ev.key === "Escape" && ed.draft) $("#zone-cancel").click();
  if (ev.key === "Delete" && ed.vertex >= 0 && canEditConfigs()) deleteVertex();
});

// ---- the zones form ----------------------------------------------------------------------
const presetOf = (r) => ed.presets?.presets?.[r.preset] ?? null;
const ruleKind = (r) => r.kind ?? presetOf(r)?.kind ?? "";
function thresholds(r) {
  return (ed.presets?.parameters?.[ruleKind(r)] || [])
    .filter((p) => !NOT_THRESHOLDS.has(p.name) && (typeof p.default === "number" || p.default == null));
}
function ruleSummary(r) {
  const set = thresholds(r).filter((p) => r[p.name] != null).map((p) => `${p.name} ${r[p.name]}`);
  return `${esc(r.preset || r.type || r.kind)}${set.length ? ` (${esc(set.join(", "))})` : ""}${r.modes ? ` in ${esc(r.modes.join(", "))}` : ""}`;
}

function ruleForm(r, k) {
  const names = Object.keys(ed.presets?.presets || {});
  const options = (r.preset ? [] : [`<option value="">custom (${esc(ruleKind(r))})</option>`])
    .concat(names.map((n) => `<option value="${esc(n)}"${n === r.preset ? " selected" : ""}>${esc(label(n))}</option>`));
  const fields = thresholds(r).map((p) => {
    const dflt = presetOf(r)?.[p.name] ?? p.default;
    return `<label title="${esc(p.description)}">${esc(p.name)} <input type="number" step="any" data-param="${esc(p.name)}"
      value="${esc(r[p.name] ?? "")}" placeholder="${esc(dflt ?? "unset")}"></label>`;
  }).join("");
  return `<fieldset class="rule" data-rule="${k}"><legend>Rule ${k + 1}</legend>
    <label>Preset <select class="preset">${options.join("")}</select></label>
    <div class="thresholds">${fields}</div>
    <label>Runs in modes <input class="rule-modes" value="${esc((r.modes || []).join(", "))}" placeholder="every mode"></label>
    <button type="button" class="rule-delete">Remove rule</button></fieldset>`;
}

function zoneCard(z, i) {
  const head = `<span class="muted">${z.polygon.length} points${z.units === "pixels" ? " (pixels)" : ""}</span>`;
  if (!canEditConfigs()) {
    return `<div class="zone-card card" data-zone="${i}"><h3 class="zone-title">${esc(z.name)}</h3> ${head}
      <ul>${(z.rules || []).map((r) => `<li>${ruleSummary(r)}</li>`).join("") || "<li class=muted>no rules</li>"}</ul></div>`;
  }
  return `<div class="zone-card card" data-zone="${i}">
    <div class="zone-head"><label>Zone name <input class="zone-name" value="${esc(z.name)}"></label> ${head}
      <button type="button" class="zone-delete">Delete zone</button></div>
    ${(z.rules || []).map(ruleForm).join("")}
    <button type="button" class="rule-add">Add rule</button></div>`;
}

function renderZones() {
  $("#zones").innerHTML = ed.zones.map(zoneCard).join("") || `<p class="muted">No zones.${canEditConfigs() ? " Add one on the picture." : ""}</p>`;
  for (const c of document.querySelectorAll("#zones .zone-card")) c.classList.toggle("selected", +c.dataset.zone === ed.sel);
}
function renderAll() { renderOverlay(); updateTools(); renderZones(); }

function where(el) {
  const z = ed.zones[+el.closest(".zone-card").dataset.zone];
  const ruleEl = el.closest(".rule");
  return { z, r: ruleEl ? z.rules[+ruleEl.dataset.rule] : null, k: ruleEl ? +ruleEl.dataset.rule : -1 };
}

$("#zones").addEventListener("input", (ev) => {
  const el = ev.target; if (!el.closest(".zone-card")) return;
  const { z, r } = where(el);
  if (el.classList.contains("zone-name")) { z.name = el.value.trim(); renderOverlay(); }
  else if (el.dataset.param && r) { if (el.value === "") delete r[el.dataset.param]; else r[el.dataset.param] = Number(el.value); }
  else if (el.classList.contains("rule-modes") && r) {
    const modes = el.value.split(",").map((m) => m.trim()).filter(Boolean);
    if (modes.length) r.modes = modes; else delete r.modes;
  } else return;
  markDirty();
});

$("#zones").addEventListener("change", (ev) => {
  const el = ev.target; if (!el.classList.contains("preset")) return;
  const { z, r, k } = where(el);
  if (!el.value) return;
  // A new preset brings its own kind and defaults: keep only the modes it runs in.
  z.rules[k] = { preset: el.value, ...(r.modes ? { modes: r.modes } : {}) };
  markDirty(); renderZones();
});

$("#zones").addEventListener("click", (ev) => {
  const el = ev.target; const card = el.closest(".zone-card"); if (!card) return;
  const i = +card.dataset.zone; const { z, k } = where(el);
  if (el.classList.contains("zone-delete")) { ed.zones.splice(i, 1); ed.sel = -1; ed.vertex = -1; markDirty(); renderAll(); return; }
  if (el.classList.contains("rule-add")) { z.rules = z.rules || []; z.rules.push({ preset: Object.keys(ed.presets?.presets || {})[0] }); }
  else if (el.classList.contains("rule-delete")) z.rules.splice(k, 1);
  else { if (i !== ed.sel) selectZone(i); return; }
  markDirty(); renderZones();
});

// ---- saving and versions ---------------------------------------------------------------
function showProblems(detail) {
  const list = Array.isArray(detail) ? detail : [{ loc: "", msg: String(detail) }];
  $("#config-errors").innerHTML = list.map((p) => `<li data-loc="${esc(locText(p.loc))}"><b>${esc(locText(p.loc) || "config")}</b>: ${esc(p.msg)}</li>`).join("");
  // The zones a problem names are outlined in the form.
  for (const p of list) {
    const m = /^(?:config\.)?zones\[(\d+)\]/.exec(locText(p.loc));
    if (m) document.querySelector(`#zones .zone-card[data-zone="${m[1]}"]`)?.classList.add("invalid");
  }
}

async function postConfig(path, body) {
  $("#config-errors").innerHTML = "";
  try {
    return await api(path, { method: "POST", body: JSON.stringify(body) });
  } catch (err) {
    if (err.status === 422 || err.status === 400 || err.status === 409) { showProblems(err.detail ?? err.message); return null; }
    throw err;
  }
}

$("#config-save").addEventListener("submit", guarded(async (ev) => {
  ev.preventDefault();
  const reason = $("#config-reason").value.trim();
  const zones = ed.zones.map((z) => { makeNormalized(z); return z; });
  const saved = await postConfig(`/api/v1/cameras/${cam()}/configs`, { config: { ...ed.doc, id: ed.camera, zones }, reason });
  if (!saved) return;
  $("#config-reason").value = "";
  await loadCamera(ed.camera);
  $("#camera-version").textContent = `Saved version ${saved.version}. ` + $("#camera-version").textContent;
}));

function renderVersions() {
  const latest = ed.versions[0]?.version;
  $("#config-versions tbody").innerHTML = ed.versions.map((v) => `<tr class="version" data-version="${esc(v.version)}">
    <td>v${esc(v.version)}</td><td>${when(v.created_at)}</td><td>${esc(v.author)}</td><td>${esc(v.reason)}</td>
    <td>${canEditConfigs() && v.version !== latest ? `<button type="button" class="rollback" data-version="${esc(v.version)}">Roll back to this</button>` : v.version === latest ? "current" : ""}</td></tr>`).join("")
    || `<tr><td colspan="5" class="muted">No versions yet.</td></tr>`;
}

$("#config-versions").addEventListener("click", guarded(async (ev) => {
  const b = ev.target.closest("button.rollback"); if (!b) return;
  const reason = $("#config-reason").value.trim();
  if (!reason) { showProblems([{ loc: "reason", msg: "give a reason for the rollback in the reason field" }]); $("#config-reason").focus(); return; }
  const saved = await postConfig(`/api/v1/cameras/${cam()}/configs/rollback`, { version: +b.dataset.version, reason });
  if (!saved) return;
  $("#config-reason").value = "";
  await loadCamera(ed.camera);
}));

addView("camera", { nav: "fleet", load: loadCamera, leave: () => { ed.seq++; ed.draft = null; ed.drag = false; } });
