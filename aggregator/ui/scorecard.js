"use strict";
// The evaluation scorecard (GB/T 30428.4 style) in the Statistics view: per department, grid
// cell or district, on-time closure, rework, first-time pass and overdue cases, with each
// group's weekly on-time trend as a small SVG line chart; the same as CSV for download.
const SCORE_WEEKS = 8;
const pctText = (v) => (v == null ? "–" : `${Math.round(v * 100)} %`);

// The weekly on-time rate as a polyline (gaps where nothing closed that week).
function trendChart(trend) {
  const w = 160, h = 36, step = w / Math.max(1, trend.length - 1);
  const pts = trend.map((t, i) => (t.on_time_rate == null ? null : `${(i * step).toFixed(1)},${(h - 2 - t.on_time_rate * (h - 4)).toFixed(1)}`));
  const runs = []; let run = [];
  for (const p of pts) { if (p) run.push(p); else if (run.length) { runs.push(run); run = []; } }
  if (run.length) runs.push(run);
  const title = trend.map((t) => `${t.week}: ${t.closed} closed, ${pctText(t.on_time_rate)} on time`).join("\n");
  return `<svg class="trend" width="${w}" height="${h}" viewBox="-3 0 ${w + 6} ${h}" role="img" aria-label="weekly on-time rate"><title>${esc(title)}</title>
    <line x1="0" y1="${h - 2}" x2="${w}" y2="${h - 2}" class="axis"></line>
    ${runs.map((r) => (r.length > 1 ? `<polyline points="${r.join(" ")}"></polyline>` : "")).join("")}
    ${pts.filter(Boolean).map((p) => `<circle cx="${p.split(",")[0]}" cy="${p.split(",")[1]}" r="2.5"></circle>`).join("")}</svg>`;
}

async function loadScorecard(by) {
  const data = await api(`/api/v1/scorecard?by=${encodeURIComponent(by)}&weeks=${SCORE_WEEKS}`);
  const rows = data.groups.map((g) => `<tr data-group="${esc(g.group)}"><td>${esc(g.group || "(none)")}</td><td>${esc(g.cases)}</td><td>${esc(g.closed)}</td>
    <td>${pctText(g.on_time_rate)}</td><td>${pctText(g.rework_rate)}</td><td>${pctText(g.first_time_pass_rate)}</td>
    <td class="${g.overdue_open ? "error" : ""}">${esc(g.overdue_open)}</td><td>${trendChart(g.trend)}</td></tr>`).join("");
  $("#scorecard").innerHTML = `<div class="card"><h2>Scorecard, last ${SCORE_WEEKS} weeks
    <select id="scorecard-by" aria-label="group by">${["department", "district", "grid_cell"].map((b) =>
      `<option value="${b}" ${b === by ? "selected" : ""}>by ${label(b)}</option>`).join("")}</select>
    <a id="scorecard-csv" href="/api/v1/scorecard.csv?by=${encodeURIComponent(by)}&weeks=${SCORE_WEEKS}" download>CSV</a></h2>
    <table><thead><tr><th>${esc(label(by).replace(/^./, (c) => c.toUpperCase()))}</th><th>Cases</th><th>Closed</th><th>On time</th><th>Rework</th>
      <th>First-time pass</th><th>Overdue now</th><th>On time by week (${esc(data.weeks[0])} to ${esc(data.weeks.at(-1))})</th></tr></thead>
    <tbody>${rows || `<tr><td colspan="8" class="muted">No cases in these weeks.</td></tr>`}</tbody></table></div>`;
  $("#scorecard-by").onchange = (e) => guarded(loadScorecard)(e.target.value);
}
