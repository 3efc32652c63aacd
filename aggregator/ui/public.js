"use strict";
// The public page: plain JavaScript, no login, nothing from the internet. It reads the open
// figures (GET /public/v1/figures.json: counts, rates and medians; rows with a count from 1
// to min_count - 1 are left out by the server) and draws tables and an SVG bar chart.
(() => {
  const FEED = "/public/v1/figures.json";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (sel) => document.querySelector(sel);

  const pct = (v) => (v == null ? "–" : `${(v * 100).toFixed(1)} %`);
  const hours = (v) => (v == null ? "–" : `${Number(v).toFixed(1)} h`);
  const count = (v) => String(v ?? "–");

  function cell(tag, text, numeric) {
    const el = document.createElement(tag);
    el.textContent = text;
    if (numeric) el.className = "num";
    return el;
  }

  // columns: [heading, field, format, numeric]; the data is put in as text, never as HTML.
  function table(el, columns, rows, empty) {
    el.replaceChildren();
    const head = el.createTHead().insertRow();
    for (const [title, , , numeric] of columns) head.append(cell("th", title, numeric));
    const body = el.createTBody();
    if (!rows.length) {
      const td = cell("td", empty);
      td.colSpan = columns.length;
      td.className = "muted";
      body.insertRow().append(td);
      return;
    }
    for (const row of rows) {
      const tr = body.insertRow();
      for (const [, field, format, numeric] of columns) tr.append(cell("td", format(row[field]), numeric));
    }
  }

  const text = (v) => (v === "" || v == null ? "(none)" : String(v));
  const FIGURES = [
    ["Filed", "filed", count, true],
    ["Closed", "closed", count, true],
    ["On time", "on_time_rate", pct, true],
    ["Median to close", "median_hours_to_close", hours, true],
    ["Rework", "rework_rate", pct, true],
  ];
  const SCORES = [
    ["Cases", "cases", count, true],
    ["Closed", "closed", count, true],
    ["On time", "on_time_rate", pct, true],
    ["Rework", "rework_rate", pct, true],
    ["First-time pass", "first_time_pass_rate", pct, true],
    ["Overdue now", "overdue_open", count, true],
  ];

  function svg(tag, attrs, content) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (content != null) el.textContent = content;
    return el;
  }

  // One bar per district: its on-time closure rate (0-100 %).
  function chart(el, districts) {
    el.replaceChildren();
    const rows = districts.filter((d) => d.on_time_rate != null);
    if (!rows.length) {
      el.append(cell("p", "No district has enough closed cases to show."));
      return;
    }
    const line = 22, left = 130, width = 200, h = rows.length * line + 4;
    const chartEl = svg("svg", {
      width: "100%", height: h, viewBox: `0 0 400 ${h}`, role: "img",
      "aria-label": "Share of cases closed on time, by district",
    });
    rows.forEach((d, i) => {
      const y = i * line + 2;
      chartEl.append(svg("text", { x: 0, y: y + 14 }, text(d.district)));
      chartEl.append(svg("rect", { class: "track", x: left, y, width, height: line - 6 }));
      chartEl.append(svg("rect", { class: "bar", x: left, y, width: width * d.on_time_rate, height: line - 6 }));
      chartEl.append(svg("text", { class: "value", x: left + width + 8, y: y + 14 }, pct(d.on_time_rate)));
    });
    el.append(chartEl);
  }

  function suppressedNote(n, what) {
    return n ? ` ${n} ${what} with fewer cases than that are not shown.` : "";
  }

  function show(data) {
    const s = data.suppressed;
    $("#public-status").className = "muted";
    $("#public-status").textContent =
      `Cases filed since ${data.since} (UTC months), as of ${data.generated_at}. ` +
      "Drills are never counted; cancelled cases count as filed but not in any rate.";
    $("#public-note").textContent =
      `To protect the people who report, a figure is shown only when it counts 0 or at least ` +
      `${data.min_count} cases.` + suppressedNote(s.rows, "rows") +
      suppressedNote(s.districts, "districts") + suppressedNote(s.categories, "categories");
    chart($("#public-chart"), data.districts);
    table($("#public-districts"), [["District", "district", text], ...FIGURES], data.districts, "Nothing to show yet.");
    table($("#public-categories"), [["Category", "category", text], ...FIGURES], data.categories, "Nothing to show yet.");
    $("#scorecard-note").textContent =
      `The last ${data.weeks} weeks: cases filed and closed in them, and open cases past their ` +
      "deadline now." + suppressedNote(s.by_department + s.by_district, "lines");
    table($("#scorecard-departments"), [["Department", "group", text], ...SCORES], data.scorecard.by_department, "Nothing to show yet.");
    table($("#scorecard-districts"), [["District", "group", text], ...SCORES], data.scorecard.by_district, "Nothing to show yet.");
    table($("#public-rows"), [
      ["Month", "month", text], ["District", "district", text], ["Cell", "grid_cell", text],
      ["Category", "category", text], ...FIGURES,
    ], data.rows, "Nothing to show yet.");
  }

  async function load() {
    const form = new FormData($("#public-period"));
    const query = new URLSearchParams({ months: form.get("months"), weeks: form.get("weeks") });
    $("#public-csv").href = `/public/v1/figures.csv?${query}`;
    try {
      const res = await fetch(`${FEED}?${query}`, { headers: { Accept: "application/json" } });
      const body = await res.json().catch(() => null);
      if (!res.ok) throw new Error(body?.detail || `the figures are not available (${res.status})`);
      show(body);
    } catch (err) {
      $("#public-status").textContent = `Could not load the figures: ${err.message}`;
      $("#public-status").className = "error";
    }
  }

  $("#public-period").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  load();
})();
