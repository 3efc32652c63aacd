"use strict";
// Fleet view (#fleet): every edge box and its cameras as the aggregator last heard them,
// with each camera's applied config version and mode next to the desired ones.
// Refreshed every 2 s while shown (GET /api/v1/fleet).
const FLEET_REFRESH_MS = 2000;
const fleet = { timer: null, busy: false };

// "3 s ago" reads faster than a timestamp when watching a fleet converge.
function ago(ts) {
  if (ts == null) return "never";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return when(ts);
}
const cameraLink = (id) => `<a href="#camera/${encodeURIComponent(id)}" class="camera-link">${esc(id)}</a>`;
const versionText = (v) => (v == null ? "none" : `v${v}`);
const modeText = (m, rev) => `${esc(m)}${rev ? ` <span class="muted">#${esc(rev)}</span>` : ""}`;

// One status word for a camera; the class names are stable selectors (in-sync, syncing...).
function syncCell(c) {
  if (c.error) return `<td class="sync error" title="${esc(c.error)}">error: ${esc(c.error)}</td>`;
  if (c.quiet) return `<td class="sync quiet">quiet</td>`;
  if (c.in_sync) return `<td class="sync in-sync">in sync</td>`;
  return `<td class="sync syncing">applying…</td>`;
}

function cameraRow(c) {
  const vSame = c.config_version === c.desired_config_version;
  const mSame = c.mode === c.desired_mode && c.mode_rev === c.desired_mode_rev;
  return `<tr class="camera" data-camera="${esc(c.camera)}">
    <td>${cameraLink(c.camera)}</td><td class="state">${esc(c.state)}</td>
    <td class="fps">${c.fps == null ? "" : Number(c.fps).toFixed(1)}</td>
    <td class="last-event">${ago(c.last_event_at)}</td>
    <td class="applied-version${vSame ? "" : " differs"}" data-version="${esc(c.config_version ?? "")}">${versionText(c.config_version)}</td>
    <td class="desired-version" data-version="${esc(c.desired_config_version ?? "")}">${versionText(c.desired_config_version)}</td>
    <td class="applied-mode${mSame ? "" : " differs"}" data-mode="${esc(c.mode)}">${modeText(c.mode, c.mode_rev)}</td>
    <td class="desired-mode" data-mode="${esc(c.desired_mode)}">${modeText(c.desired_mode, c.desired_mode_rev)}</td>
    ${syncCell(c)}</tr>`;
}

function edgeCard(e) {
  const cams = e.cameras || [];
  return `<div class="card edge${e.quiet ? " quiet" : ""}" data-edge="${esc(e.edge_id)}">
    <h2>${esc(e.edge_id)} ${e.quiet ? `<span class="tag quiet">quiet</span>` : `<span class="tag confirmed">heard</span>`}</h2>
    <p class="edge-facts">software <b class="software">${esc(e.software || "unknown")}</b>
      · config <b class="config-source">${esc(e.config_source || "unknown")}</b>
      · last heard <b class="last-heard">${ago(e.last_heard_at)}</b>
      · outbox <b class="outbox-depth">${esc(e.outbox_depth ?? "")}</b></p>
    <table class="cameras"><thead><tr><th>Camera</th><th>State</th><th>FPS</th><th>Last event</th>
      <th>Config applied</th><th>desired</th><th>Mode applied</th><th>desired</th><th>Status</th></tr></thead>
      <tbody>${cams.map(cameraRow).join("") || `<tr><td colspan="9" class="muted">No cameras reported.</td></tr>`}</tbody></table></div>`;
}

async function refreshFleet() {
  if (fleet.busy) return; // a slow answer is not overtaken by the next one
  fleet.busy = true;
  try {
    const data = await api("/api/v1/fleet");
    if ($("#fleet-view").hidden) return;
    const edges = data.edges || [];
    $("#fleet").innerHTML = edges.map(edgeCard).join("") || `<p class="muted">No edge box has reported yet.</p>`;
    $("#fleet-updated").textContent = `updated ${new Date().toLocaleTimeString()} · quiet after ${esc(data.quiet_after_s)} s`;
  } finally { fleet.busy = false; }
}

function stopFleet() { clearInterval(fleet.timer); fleet.timer = null; }

async function loadFleet() {
  stopFleet();
  // A failing refresh says so once in the alert and keeps trying; it does not stop the page.
  fleet.timer = setInterval(() => refreshFleet().catch(showError), FLEET_REFRESH_MS);
  await refreshFleet();
}

$("#camera-open").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = new FormData(e.target).get("camera").trim();
  if (id) location.hash = `#camera/${encodeURIComponent(id)}`;
});

addView("fleet", { load: loadFleet, leave: stopFleet });
