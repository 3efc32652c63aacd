"use strict";
// Map view (#map): the unit grid's cells drawn from their GeoJSON in SVG, coloured by open
// and overdue cases, with camera markers. Works offline; a site with grid.tile_url gets map
// tiles underneath. Clicking a cell opens the cases board filtered to it.
// Web Mercator, so cells line up with standard XYZ tiles when there are any.
const TILE_PX = 256;
const MAP_WIDTH_PX = 900;
const MAP_HEIGHT_PX = 620;

function mercator(lon, lat, zoom) {
  const scale = TILE_PX * 2 ** zoom;
  const sin = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return [((lon + 180) / 360) * scale, (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * scale];
}

function rings(geometry) {
  return geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
}

function bounds(features, cameras) {
  const pts = features.flatMap((f) => rings(f.geometry).flat(2)); // polygons > rings > points
  for (const c of cameras) pts.push([c.lon, c.lat]);
  const lons = pts.map((p) => p[0]), lats = pts.map((p) => p[1]);
  return { w: Math.min(...lons), e: Math.max(...lons), s: Math.min(...lats), n: Math.max(...lats) };
}

// The zoom whose pixels fit the grid into the map's box (fractional: the tiles are scaled).
function fitZoom(b) {
  const wide = Math.log2(MAP_WIDTH_PX / (TILE_PX * Math.max(1e-6, (b.e - b.w) / 360)));
  const [, top] = mercator(b.w, b.n, 0), [, bottom] = mercator(b.e, b.s, 0);
  const high = Math.log2(MAP_HEIGHT_PX / Math.max(1e-9, bottom - top));
  return Math.min(wide, high);
}

// Fill by the worst thing in the cell: overdue red, open amber, none green.
function cellClass(p) {
  if (p.overdue > 0) return "cell overdue";
  if (p.open > 0) return "cell open";
  return "cell clear";
}

function tiles(url, b, zoom, origin) {
  const z = Math.max(0, Math.min(19, Math.round(zoom)));
  const k = 2 ** (zoom - z); // the drawn zoom against the tiles' own
  const [x0, y0] = mercator(b.w, b.n, z), [x1, y1] = mercator(b.e, b.s, z);
  const out = [];
  for (let tx = Math.floor(x0 / TILE_PX); tx <= Math.floor(x1 / TILE_PX); tx++) {
    for (let ty = Math.floor(y0 / TILE_PX); ty <= Math.floor(y1 / TILE_PX); ty++) {
      const href = url.replace("{z}", z).replace("{x}", tx).replace("{y}", ty);
      out.push(`<image href="${esc(href)}" x="${tx * TILE_PX * k - origin[0]}" y="${ty * TILE_PX * k - origin[1]}"
        width="${TILE_PX * k}" height="${TILE_PX * k}" class="tile"></image>`);
    }
  }
  return out.join("");
}

function drawMap(grid) {
  if (!grid.features.length) {
    $("#map").innerHTML = `<p class="muted">No grid imported yet: <code>aggregator grid import cells.geojson</code>.</p>`;
    return;
  }
  const b = bounds(grid.features, grid.cameras);
  const zoom = fitZoom(b);
  const origin = mercator(b.w, b.n, zoom);
  const px = ([lon, lat]) => { const [x, y] = mercator(lon, lat, zoom); return [x - origin[0], y - origin[1]]; };
  const [w, h] = px([b.e, b.s]).map((v) => Math.ceil(v) + 1);
  const cells = grid.features.map((f) => {
    const p = f.properties;
    const d = rings(f.geometry).map((poly) => poly.map((ring) => "M" + ring.map((pt) => px(pt).map((v) => v.toFixed(1)).join(",")).join("L") + "Z").join("")).join("");
    const [cx, cy] = px(centroid(f.geometry));
    return `<g class="${cellClass(p)}" data-cell="${esc(p.code)}" tabindex="0" role="button"
      aria-label="cell ${esc(p.code)}: ${esc(p.open)} open, ${esc(p.overdue)} overdue">
      <title>${esc(p.code)} ${esc(p.name)} (${esc(p.district)}), ${esc(p.responsible)}: ${esc(p.open)} open, ${esc(p.overdue)} overdue</title>
      <path d="${d}"></path><text x="${cx.toFixed(1)}" y="${(cy - 14).toFixed(1)}">${esc(p.code)}${p.open ? ` · ${esc(p.open)} open` : ""}</text></g>`;
  }).join("");
  const cams = grid.cameras.map((c) => { const [x, y] = px([c.lon, c.lat]);
    return `<circle class="camera-marker" data-camera="${esc(c.camera)}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="5"><title>camera ${esc(c.camera)} ${esc(c.address)}</title></circle>`; }).join("");
  $("#map").innerHTML = `<div class="map-layout"><div><svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="grid map">
    ${grid.tile_url ? tiles(grid.tile_url, b, zoom, origin) : ""}${cells}${cams}</svg>
    <p class="legend"><span class="swatch clear"></span> no open case <span class="swatch open"></span> open
      <span class="swatch overdue"></span> overdue <span class="swatch camera"></span> camera</p></div>
    ${districtTable(grid.features)}</div>`;
}

// Per district: cells, open and overdue cases; then the cells that have any, worst first,
// with the office that answers for them.
function districtTable(features) {
  const by = new Map();
  for (const { properties: p } of features) {
    const d = by.get(p.district) || { cells: 0, open: 0, overdue: 0 };
    by.set(p.district, { cells: d.cells + 1, open: d.open + p.open, overdue: d.overdue + p.overdue });
  }
  const busy = features.map((f) => f.properties).filter((p) => p.open).sort((a, b) => b.overdue - a.overdue || b.open - a.open);
  return `<div class="card"><h2>Districts</h2><table><thead><tr><th>District</th><th>Cells</th><th>Open</th><th>Overdue</th></tr></thead><tbody>
    ${[...by].map(([d, n]) => `<tr><td>${esc(d || "–")}</td><td>${n.cells}</td><td>${n.open}</td><td class="${n.overdue ? "error" : ""}">${n.overdue}</td></tr>`).join("")}</tbody></table>
    <h2>Cells with open cases</h2><table><thead><tr><th>Cell</th><th>Responsible</th><th>Open</th><th>Overdue</th></tr></thead><tbody>
    ${busy.map((p) => `<tr><td><a href="#cases/grid_cell=${encodeURIComponent(p.code)}">${esc(p.code)}</a> ${esc(p.name)}</td><td>${esc(p.responsible)}</td>
      <td>${p.open}</td><td class="${p.overdue ? "error" : ""}">${p.overdue}</td></tr>`).join("") || `<tr><td colspan="4" class="muted">none</td></tr>`}</tbody></table></div>`;
}

// The mean of the outer ring's points: good enough to place a label in a grid cell.
function centroid(geometry) {
  const ring = rings(geometry)[0][0];
  const pts = ring.slice(0, -1);
  return [pts.reduce((s, p) => s + p[0], 0) / pts.length, pts.reduce((s, p) => s + p[1], 0) / pts.length];
}

async function loadMap() {
  drawMap(await api("/api/v1/grid"));
}

function openCell(e) {
  const g = e.target.closest("g[data-cell]");
  if (g) location.hash = `#cases/grid_cell=${encodeURIComponent(g.dataset.cell)}`;
}
$("#map").addEventListener("click", openCell);
$("#map").addEventListener("keydown", (e) => { if (e.key === "Enter") openCell(e); });

addView("map", { load: loadMap });
