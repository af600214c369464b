// The quote board (/): every market's daily quote and day, the smelter prices with the
// waste-to-lead ratio, the upstream quotes, live from the `board` channel and each
// market's `trades:` tape (for the sparkline).
//
// Query parameters, for a given display:
//   ?category=ebike,auto_black   only these categories
//   ?region=3305                 only markets whose region starts with one of these
//   ?colors=green-up             green up / red down (default: red up, as Chinese boards)

import { $, h, t, setText, pricePerT, tonnes, Feed, feedBadge, startClock, clock, getCatalogue, marketName, categoryName } from "./common.js";
import { sparkline } from "./charts.js";

const params = new URLSearchParams(location.search);
const list = (name) => (params.get(name) || "").split(",").map((s) => s.trim()).filter(Boolean);
const categories = list("category");
const regions = list("region");
if (params.get("colors") === "green-up") document.body.classList.add("green-up");

const shown = (market) => {
  const [category, region = ""] = market.split(":");
  return (!categories.length || categories.includes(category)) && (!regions.length || regions.some((r) => region.startsWith(r)));
};

const view = { day: null, stale: false, markets: {}, quotes: {}, settlements: {}, indices: {}, sources: {} };
const tapes = new Map();  // market -> [[timeMs, price], ...] today
let catalogue = null;
let feedState = "connecting";
let lastChange = 0;

function fold(type, data) {
  if (type === "snapshot") {
    Object.assign(view, { markets: {}, quotes: {}, settlements: {}, indices: {}, sources: {} }, data);
    return;
  }
  for (const [key, value] of Object.entries(data)) {
    if (value !== null && typeof value === "object" && !Array.isArray(value) && typeof view[key] === "object" && view[key] !== null) {
      for (const [k, v] of Object.entries(value)) {
        if (v === null) delete view[key][k];
        else view[key][k] = v;
      }
    } else {
      view[key] = value;
    }
  }
}

function quote(kind, key) {
  return view.quotes[`${kind}|${key}`] || null;
}

function markets() {
  const all = new Set(Object.keys(view.markets));
  for (const q of Object.values(view.quotes)) if (q.kind === "daily") all.add(q.key);
  return [...all].filter(shown).sort();
}

function changeCell(stats, daily) {
  // against the previous day's settlement; on a first day, against today's quote
  const last = stats ? stats.last_fen_per_t : null;
  let ref = stats ? stats.previous_settlement_fen_per_t : null;
  let refName = ["昨日结算价", "previous settlement"];
  if (ref === null && daily) {
    ref = daily.price_fen_per_t;
    refName = ["今日报价", "today's quote"];
  }
  const td = h("td", { class: "num change", "data-field": "change" });
  if (last === null || ref === null) {
    td.append("—");
    return td;
  }
  const diff = last - ref;
  const pct = ((diff / ref) * 100).toFixed(2);
  const dir = diff > 0 ? "up" : diff < 0 ? "down" : "flat";
  const arrow = diff > 0 ? "▲" : diff < 0 ? "▼" : "■";
  td.classList.add(dir);
  td.title = `相对${refName[0]} / against ${refName[1]}`;
  td.append(h("span", { "aria-hidden": "true" }, arrow + " "), `${diff > 0 ? "+" : ""}${(diff / 100).toLocaleString("en-US")}`,
    h("span", { class: "hide-narrow" }, ` (${pct}%)`));
  td.append(h("span", { class: "sr" }, diff > 0 ? " 上涨 up" : diff < 0 ? " 下跌 down" : " 持平 flat"));
  return td;
}

function sparkFor(market) {
  const tape = tapes.get(market) || [];
  const [zh, en] = marketName(catalogue, market);
  let label;
  if (tape.length) {
    const prices = tape.map((p) => p[1]);
    const words = (a, b, c, d) => `开 ${a} 高 ${b} 低 ${c} 新 ${d}`;
    const en2 = (a, b, c, d) => `open ${a}, high ${b}, low ${c}, last ${d}`;
    const args = [prices[0], Math.max(...prices), Math.min(...prices), prices[prices.length - 1]].map(pricePerT);
    label = `${zh} 今日 ${tape.length} 笔成交：${words(...args)}。${en} today, ${tape.length} trades: ${en2(...args)}.`;
  } else {
    label = `${zh} 今日暂无成交。${en}: no trades yet today.`;
  }
  return sparkline(tape, label);
}

function renderMarkets() {
  const body = $("#markets tbody");
  const rows = markets().map((market) => {
    const stats = view.markets[market] || null;
    const daily = quote("daily", market);
    const [zh, en] = marketName(catalogue, market);
    return h("tr", { "data-market": market },
      h("th", { scope: "row" }, h("span", { lang: "zh-CN" }, zh), " ", h("span", { lang: "en", class: "en" }, en)),
      h("td", { class: "num", "data-field": "daily" }, pricePerT(daily && daily.price_fen_per_t)),
      h("td", { class: "num last", "data-field": "last" }, pricePerT(stats && stats.last_fen_per_t)),
      changeCell(stats, daily),
      h("td", { class: "num hide-narrow", "data-field": "vwap" }, pricePerT(stats && stats.vwap_fen_per_t)),
      h("td", { class: "num hide-narrow", "data-field": "volume" }, stats ? tonnes(stats.volume_kg) : "—",
        stats ? h("span", { class: "sub" }, ` · ${stats.trades} 笔`) : null),
      h("td", { class: "spark-cell" }, sparkFor(market)));
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 7 }, t("暂无行情", "No quotes yet"))));
  body.replaceChildren(...rows);
}

function renderChain() {
  const lead = quote("end_of_chain", "lead");
  const rows = [];
  const cats = new Set();
  for (const q of Object.values(view.quotes)) if (q.kind === "end_of_chain" && q.key !== "lead") cats.add(q.key);
  for (const i of Object.keys(view.indices)) cats.add(i);
  for (const code of [...cats].filter((c) => !categories.length || categories.includes(c)).sort()) {
    const q = quote("end_of_chain", code);
    const idx = view.indices[code];
    const [zh, en] = categoryName(catalogue, code);
    const ratio = q && lead ? (q.price_fen_per_t / lead.price_fen_per_t).toFixed(3) : "—";
    rows.push(h("tr", { "data-category": code },
      h("th", { scope: "row" }, h("span", { lang: "zh-CN" }, zh), " ", h("span", { lang: "en", class: "en" }, en)),
      h("td", { class: "num" }, pricePerT(q && q.price_fen_per_t)),
      h("td", { class: "num" }, ratio),
      h("td", { class: "num" }, pricePerT(idx && idx.index_fen_per_t))));
  }
  rows.push(h("tr", { class: "lead" },
    h("th", { scope: "row" }, t("铅锭（参考）", "Lead ingot (reference)")),
    h("td", { class: "num", "data-field": "lead" }, pricePerT(lead && lead.price_fen_per_t)),
    h("td", { class: "num" }, lead ? "1.000" : "—"),
    h("td", { class: "num" }, "")));
  $("#chain tbody").replaceChildren(...rows);
}

function renderUpstream() {
  const ups = Object.values(view.quotes).filter((q) => q.kind === "upstream" && shown(q.key));
  ups.sort((a, b) => (a.key === b.key ? b.price_fen_per_t - a.price_fen_per_t : a.key < b.key ? -1 : 1));
  const rows = ups.map((q) => {
    const [zh, en] = marketName(catalogue, q.key);
    return h("tr", {},
      h("th", { scope: "row" }, q.publisher),
      h("td", {}, h("span", { lang: "zh-CN" }, zh), " ", h("span", { lang: "en", class: "en" }, en)),
      h("td", { class: "num" }, pricePerT(q.price_fen_per_t)));
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 3 }, t("暂无上游报价", "No upstream quotes yet"))));
  $("#upstream tbody").replaceChildren(...rows);
}

function renderStale() {
  const late = Object.entries(view.sources).filter(([, s]) => s && s.stale).map(([name]) => name);
  const stale = feedState !== "live" || view.stale || late.length > 0;
  document.body.classList.toggle("is-stale", stale);
  const banner = $("#stale");
  banner.hidden = !stale;
  if (stale) {
    const since = lastChange ? new Date(lastChange).toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }) : "—";
    const why = feedState !== "live"
      ? t(`行情延迟：实时连接中断，正在重连。最后更新 ${since}`, `Stale: the live feed is down, reconnecting. Last update ${since}`)
      : late.length
        ? t(`行情延迟：价格来源 ${late.join("、")} 未更新`, `Stale: price source ${late.join(", ")} is late`)
        : t("行情延迟：价格数据暂未更新", "Stale: prices are not up to date");
    banner.replaceChildren(why);
  }
  $("#sources").replaceChildren(...Object.entries(view.sources).map(([name, s]) =>
    h("span", { class: s.stale ? "src bad" : "src" }, `${name}: ${s.stale ? "延迟 stale" : "正常 ok"}`)));
}

function render() {
  setText($("#day"), view.day ? `· ${view.day}` : "");
  renderMarkets();
  renderChain();
  renderUpstream();
  renderStale();
}

let pending = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

function onTrades(market, type, data) {
  const today = view.day;
  const points = type === "snapshot" ? [] : tapes.get(market) || [];
  for (const tr of data.trades || []) {
    const when = Date.parse(tr.at);
    if (today && tr.at && !sameDay(when, today)) continue;
    points.push([when, tr.price_fen_per_t]);
  }
  tapes.set(market, points.slice(-500));
}

function sameDay(ms, day) {
  const d = new Date(ms).toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });
  return d === day;
}

async function main() {
  startClock($("#clock"));
  $("#fullscreen").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen().catch(() => {});
  });
  try {
    catalogue = await getCatalogue();
  } catch {
    catalogue = null;  // names fall back to codes
  }
  const badge = feedBadge($("#feed"));
  const feed = new Feed({
    onState: (state) => {
      feedState = state;
      badge(state);
      renderStale();
    },
    onMessage: (channel, type, data) => {
      lastChange = clock.now();
      if (channel === "board") {
        fold(type, data);
        for (const market of markets()) feed.subscribe("trades:" + market);
      } else if (channel.startsWith("trades:")) {
        onTrades(channel.slice(7), type, data);
      }
      schedule();
    },
  });
  feed.subscribe("board");
  feed.connect();
  render();
}

main();
