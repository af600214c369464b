// Small SVG charts, our own: a sparkline, an intraday line and a depth chart.
// Each is an <svg role="img"> with an aria-label (and a <title>) that says in words what
// it shows, so the numbers reach people who cannot see the drawing.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function frame(width, height, label, cls) {
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": label,
    class: cls,
    preserveAspectRatio: "none",
  });
  const title = svg("title");
  title.textContent = label;
  root.append(title);
  return root;
}

function scale(values, lo, hi) {
  let min = Math.min(...values);
  let max = Math.max(...values);
  if (min === max) {
    min -= 1;
    max += 1;
  }
  return (v) => hi - ((v - min) / (max - min)) * (hi - lo);
}

// points: [[timeMs, price], ...] in time order; label: the words for it.
export function sparkline(points, label, { width = 120, height = 32, cls = "spark" } = {}) {
  const root = frame(width, height, label, cls);
  if (points.length < 2) {
    const y = height / 2;
    root.append(svg("line", { x1: 0, y1: y, x2: width, y2: y, class: "flat" }));
    return root;
  }
  const t0 = points[0][0];
  const span = Math.max(1, points[points.length - 1][0] - t0);
  const y = scale(points.map((p) => p[1]), 3, height - 3);
  const d = points
    .map((p, i) => `${i ? "L" : "M"}${(((p[0] - t0) / span) * (width - 4) + 2).toFixed(1)},${y(p[1]).toFixed(1)}`)
    .join(" ");
  root.append(svg("path", { d, class: "line" }));
  const last = points[points.length - 1];
  root.append(svg("circle", { cx: width - 2, cy: y(last[1]).toFixed(1), r: 2, class: "dot" }));
  return root;
}

// An intraday line with a price axis: the same drawing, bigger, with min and max marked.
export function intraday(points, label, fmt, { width = 480, height = 140 } = {}) {
  const root = frame(width, height, label, "intraday");
  if (points.length < 2) {
    const note = svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "note" });
    note.textContent = "—";
    root.append(note);
    return root;
  }
  const prices = points.map((p) => p[1]);
  const t0 = points[0][0];
  const span = Math.max(1, points[points.length - 1][0] - t0);
  const y = scale(prices, 12, height - 12);
  const x = (t) => ((t - t0) / span) * (width - 80) + 4;
  const d = points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
  root.append(svg("path", { d, class: "line" }));
  for (const v of [Math.max(...prices), Math.min(...prices)]) {
    const yy = y(v);
    root.append(svg("line", { x1: 0, x2: width - 76, y1: yy, y2: yy, class: "grid" }));
    const text = svg("text", { x: width - 72, y: yy + 4, class: "axis" });
    text.textContent = fmt(v);
    root.append(text);
  }
  return root;
}

// bids: [[price, kg, orders], ...] best first (descending); asks likewise (ascending).
// Cumulative kilograms as steps away from the middle: bids on the left, asks on the right.
export function depthChart(bids, asks, label, fmtPrice, { width = 480, height = 160 } = {}) {
  const root = frame(width, height, label, "depth");
  const cum = (levels) => {
    let total = 0;
    return levels.map(([p, q]) => [p, (total += q)]);
  };
  const b = cum(bids);
  const a = cum(asks);
  const all = [...b, ...a];
  if (!all.length) {
    const note = svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "note" });
    note.textContent = "—";
    root.append(note);
    return root;
  }
  const prices = all.map((p) => p[0]);
  const lo = Math.min(...prices);
  const hi = Math.max(...prices);
  const pad = Math.max(1, (hi - lo) * 0.05);
  const x = (p) => ((p - (lo - pad)) / (hi - lo + 2 * pad)) * width;
  const maxQ = Math.max(...all.map((p) => p[1]));
  const y = (q) => height - 4 - (q / maxQ) * (height - 12);
  const area = (levels, cls) => {
    if (!levels.length) return;
    let d = `M${x(levels[0][0]).toFixed(1)},${height - 4}`;
    let prevY = height - 4;
    for (const [p, q] of levels) {
      const xx = x(p).toFixed(1);
      d += ` L${xx},${prevY.toFixed(1)} L${xx},${y(q).toFixed(1)}`;
      prevY = y(q);
    }
    const end = cls === "bids" ? 0 : width;
    d += ` L${end},${prevY.toFixed(1)} L${end},${height - 4} Z`;
    root.append(svg("path", { d, class: "area " + cls }));
  };
  area(b, "bids");
  area(a, "asks");
  // the best bid and the best lot, marked on the price axis
  for (const [levels, anchor] of [[b, "end"], [a, "start"]]) {
    if (!levels.length) continue;
    const xx = x(levels[0][0]);
    root.append(svg("line", { x1: xx, x2: xx, y1: 0, y2: height - 4, class: "mid" }));
    const text = svg("text", { x: anchor === "end" ? xx - 4 : xx + 4, y: 14, "text-anchor": anchor, class: "axis" });
    text.textContent = fmtPrice(levels[0][0]);
    root.append(text);
  }
  return root;
}
