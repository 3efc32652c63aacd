"use strict";
// Verification by camera, in the case view: ask the edge that runs the case's camera to look
// again (POST /api/v1/cases/{id}/verify), show each answer with its fresh snapshot, and let a
// supervisor override a "still present" with a note when closing anyway.
const VERIFY_POLL_MS = 1000;
const VERIFY_POLL_MAX = 45; // the server calls a look unanswered after 30 s
const verifying = { timer: null, caseId: null };

const VERDICT_TEXT = { pending: "looking…", still_present: "still present", cleared: "cleared", failed: "failed" };

function verdictItem(v) {
  const d = v.detail || {};
  const seen = d.frames != null ? ` · in ${esc(d.present_frames)} of ${esc(d.frames)} frames, at most ${esc(d.peak)} (needs ${esc(d.needed)})` : "";
  const why = v.verdict === "failed" && d.reason ? ` · ${esc(d.reason)}` : "";
  const snap = v.snapshot_id ? `<img class="verify-snapshot" alt="the camera's view at ${esc(when(v.answered_at))}" src="/api/v1/media/${esc(v.snapshot_id)}">` : "";
  return `<li class="verification" data-verdict="${esc(v.verdict)}"><span class="tag verdict ${esc(v.verdict)}">${esc(VERDICT_TEXT[v.verdict] || v.verdict)}</span>
    ${when(v.requested_at)} by ${esc(v.requested_by)}${seen}${why}${snap}</li>`;
}

async function showVerifications(c) {
  clearTimeout(verifying.timer);
  verifying.caseId = c.id;
  const box = $("#case-extra");
  if (c.source !== "camera") { box.innerHTML = ""; return; }
  const data = await api(`/api/v1/cases/${c.id}/verifications`);
  if (verifying.caseId !== c.id) return; // another case was opened meanwhile
  const open = !c.closed_at;
  const pending = data.items.some((v) => v.verdict === "pending");
  const ask = open && can("update_cases") ? `<button id="verify-btn" ${pending ? "disabled" : ""}>Verify by camera</button>` : "";
  const latest = data.items[0];
  const override = open && ROLES.indexOf(state.user?.role) >= ROLES.indexOf("supervisor") && latest?.verdict !== "cleared"
    ? `<label class="override"><input type="checkbox" id="verify-override"> close despite the camera (supervisor override: the note says why)</label>` : "";
  box.innerHTML = `<h3>Verification by camera</h3><div class="actions">${ask}${override}</div>
    <ol class="verifications">${data.items.map(verdictItem).join("") || `<li class="muted">Not verified yet.</li>`}</ol>`;
  if (ask) $("#verify-btn").onclick = guarded(() => askVerify(c));
  for (const img of box.querySelectorAll("img.verify-snapshot")) retrySnapshot(img, 0);
  if (pending) pollVerifications(c, 0);
}

// The edge uploads the snapshot beside its answer: it can arrive a few seconds after it.
function retrySnapshot(img, n) {
  img.addEventListener("error", () => {
    if (n >= 15) return;
    setTimeout(() => { img.src = `${img.src.split("?")[0]}?try=${n + 1}`; retrySnapshot(img, n + 1); }, 1000);
  }, { once: true });
}

function pollVerifications(c, n) {
  if (n >= VERIFY_POLL_MAX) return;
  verifying.timer = setTimeout(async () => {
    if (verifying.caseId !== c.id) return;
    const data = await api(`/api/v1/cases/${c.id}/verifications`);
    if (data.items.some((v) => v.verdict === "pending")) { pollVerifications(c, n + 1); return; }
    await guarded(openCase)(c.id); // the verdict (and the audit entry) in full
  }, VERIFY_POLL_MS);
}

async function askVerify(c) {
  clearAlert();
  $("#verify-btn").disabled = true;
  await api(`/api/v1/cases/${c.id}/verify`, { method: "POST", body: JSON.stringify({}) });
  await showVerifications(c);
}

caseHooks.push(showVerifications);
