// The store page (/store): post a lot (one click, auction or offers) with its weight
// estimated from the battery model table, watch its auction live, decide a below-reserve
// result, answer offers, and see my lots and what each sold for.

import { $, h, t, startClock, signIn, say, sayError, marketName, regionName, pricePerT, amount, kg, yuanToFen, debounce, privateFeed, replaceKeepingEdits, REGIONS, LOT_STATES } from "./common.js";
import { openRoomPage } from "./room.js";

let api = null;
let catalogue = null;
let feed = null;
let room = null;
let watching = null;  // the lot whose room is shown
let offersLot = null;
const lots = new Map();  // lot_id -> row from /v1/lots
const sold = new Map();  // lot_id -> award or trade {price_fen_per_t, amount_fen}

const mode = () => $("#sell").elements.mode.value;

function fillCatalogue() {
  const cat = $("#category");
  cat.replaceChildren(...catalogue.categories.map((c) => h("option", { value: c.code }, `${c.name_zh} ${c.name_en}`)));
  $("#voltage").replaceChildren(...Object.entries(catalogue.blocks_per_set).map(([v, n]) =>
    h("option", { value: v, selected: v === "48V" }, `${v}（${n} 只/组）`)));
  fillModels();
}

function fillModels() {
  const code = $("#category").value;
  const models = catalogue.battery_models.filter((m) => m.category === code);
  const opts = models.map((m) => h("option", { value: m.model }, `${m.model}（${(m.block_kg_x10 / 10).toFixed(1)} kg/只）`));
  opts.push(h("option", { value: "" }, "其他 / 按重量 Other: by weight"));
  $("#model").replaceChildren(...opts);
  estimate();
}

// weight = block kg × (blocks, or sets × blocks per set), rounded half up once
function estimate() {
  const model = catalogue.battery_models.find((m) => m.model === $("#model").value);
  const count = Number($("#count").value);
  const hint = $("#weight-hint");
  $("#voltage").hidden = $("#unit").value !== "sets";
  if (!model || !Number.isInteger(count) || count < 1) {
    hint.replaceChildren(t("请直接填写重量", "enter the weight"));
    return quoteSoon();
  }
  const blocks = $("#unit").value === "sets" ? count * catalogue.blocks_per_set[$("#voltage").value] : count;
  const weight = Math.floor((model.block_kg_x10 * blocks + 5) / 10);
  $("#weight").value = String(weight);
  hint.replaceChildren(t(`按型号表估算：${blocks} 只 × ${(model.block_kg_x10 / 10).toFixed(1)} kg`, `from the model table: ${blocks} blocks × ${(model.block_kg_x10 / 10).toFixed(1)} kg`));
  quoteSoon();
}

function market() {
  return `${$("#category").value}:${$("#region").value.trim()}`;
}

function showRegion() {
  const code = $("#region").value.trim();
  const [zh, en] = regionName(code);
  $("#region-name").textContent = REGIONS[code] ? `${zh} ${en}` : "";
}

const quoteSoon = debounce(() => quoteNow(), 150);

// What a one-click sale would fetch now (the server's answer; the sale may still differ)
async function quoteNow() {
  if (mode() !== "one_click") return;
  const out = $("#fetch");
  const weight = Number($("#weight").value);
  if (!/^\d{6}$/.test($("#region").value.trim()) || !Number.isInteger(weight) || weight < 1) {
    out.textContent = "—";
    return;
  }
  try {
    const q = await api.get(`/v1/markets/${encodeURIComponent(market())}/sell-quote?weight_kg=${weight}`);
    out.replaceChildren(q.price_fen_per_t === null
      ? t("现在没有买家能整批收购", "no buyer can take it whole now")
      : `${pricePerT(q.price_fen_per_t)} · ${amount(q.amount_fen)}`);
    out.dataset.price = q.price_fen_per_t ?? "";
  } catch (err) {
    out.textContent = "—";
    if (err.code !== "unknown_market") sayError($("#sell-say"), err);
  }
}

function showMode() {
  const m = mode();
  for (const el of document.querySelectorAll("[data-mode]")) el.hidden = el.dataset.mode !== m;
  const label = { one_click: ["立即投售", "Sell now"], auction: ["开始竞价", "Start the auction"], offers: ["发布议价", "Invite offers"] }[m];
  $("#sell-go").replaceChildren(t(...label));
  quoteSoon();
}

async function sell(ev) {
  ev.preventDefault();
  const out = $("#sell-say");
  const weight = Number($("#weight").value);
  if (!Number.isInteger(weight) || weight < 1) return say(out, "bad", "请填写重量（公斤，整数）。", "Enter the weight in whole kilograms.");
  if (!/^\d{6}$/.test($("#region").value.trim())) return say(out, "bad", "地区代码是 6 位数字。", "The region code is six digits.");
  const body = { mode: mode(), market: market(), weight_kg: weight };
  if (body.mode === "auction") {
    body.start_price_fen_per_t = yuanToFen($("#start").value);
    if (body.start_price_fen_per_t === null) return say(out, "bad", "请填写起拍价（元/吨）。", "Enter a start price in yuan per tonne.");
    for (const [id, field] of [["reserve", "reserve_fen_per_t"], ["buynow", "buy_now_fen_per_t"]]) {
      const raw = $("#" + id).value.trim();
      if (!raw) continue;
      const fen = yuanToFen(raw);
      if (fen === null) return say(out, "bad", "价格请填写元/吨，最多两位小数。", "Prices are yuan per tonne, at most two decimals.");
      body[field] = fen;
    }
    const minutes = Number($("#minutes").value);
    if (!(minutes > 0)) return say(out, "bad", "请填写时长（分钟）。", "Enter a duration in minutes.");
    body.duration_s = Math.round(minutes * 60);
  } else if (body.mode === "offers") {
    const hours = Number($("#hours").value);
    if (!(hours > 0)) return say(out, "bad", "请填写接受报价的小时数。", "Enter how many hours to take offers.");
    body.expires_at = new Date(Date.now() + hours * 3600000).toISOString();
  }
  $("#sell-go").disabled = true;
  try {
    const answer = await api.post("/v1/lots", body);
    const lot = answer.id;
    const trade = answer.events.find((e) => e.type === "traded");
    if (trade) {
      sold.set(lot, trade);
      say(out, "good", `已成交：${pricePerT(trade.price_fen_per_t)}，货款 ${amount(trade.amount_fen)}（第 ${lot} 号货）`,
        `Sold: ${pricePerT(trade.price_fen_per_t)}, ${amount(trade.amount_fen)} (lot ${lot})`);
    } else if (body.mode === "auction") {
      say(out, "good", `第 ${lot} 号货已开始竞价。`, `Lot ${lot} is in auction.`);
      watch(lot);
    } else if (body.mode === "offers") {
      say(out, "good", `第 ${lot} 号货正在接受报价。`, `Lot ${lot} is taking offers.`);
      showOffers(lot);
    } else {
      say(out, "good", `第 ${lot} 号货已发布。`, `Lot ${lot} posted.`);
    }
    await loadLots();
  } catch (err) {
    sayError(out, err);
  } finally {
    $("#sell-go").disabled = false;
    quoteSoon();
  }
}

function watch(lot) {
  if (watching !== null && watching !== lot) feed.unsubscribe(`auction:${watching}`);
  watching = lot;
  room.show(lot);
  $("#decide").hidden = true;
  feed.subscribe(`auction:${lot}`);
}

async function decide(which) {
  const out = $("#room-say");
  try {
    await api.post(`/v1/lots/${watching}/${which}-result`, {});
    say(out, "good", which === "accept" ? "已接受最高出价。" : "已拒绝。", which === "accept" ? "Accepted the best bid." : "Declined.");
    $("#decide").hidden = true;
    loadLots();
  } catch (err) {
    sayError(out, err);
  }
}

const MODES = { one_click: ["一键", "one click"], auction: ["竞价", "auction"], offers: ["议价", "offers"] };

async function loadLots() {
  try {
    const [page, awards, trades] = await Promise.all([
      api.get("/v1/lots?limit=50"), api.get("/v1/awards?limit=200"), api.get("/v1/trades?limit=200"),
    ]);
    lots.clear();
    for (const lot of page.items) lots.set(lot.lot_id, lot);
    for (const a of [...trades.items, ...awards.items]) {
      const prev = sold.get(a.lot_id);
      if (!prev || a.trade_id === undefined) sold.set(a.lot_id, a);
    }
    renderLots();
  } catch (err) {
    sayError($("#lots-say"), err);
  }
}

function renderLots() {
  const rows = [...lots.values()].map((lot) => {
    const [zh, en] = marketName(catalogue, lot.market);
    const s = sold.get(lot.lot_id);
    const state = LOT_STATES[lot.state] || [lot.state, lot.state];
    const actions = [];
    if (lot.kind === "auction") actions.push(h("button", { type: "button", onclick: () => watch(lot.lot_id) }, t("观看", "Watch")));
    if (lot.kind === "offers" && lot.state === "taking_offers") actions.push(h("button", { type: "button", onclick: () => showOffers(lot.lot_id) }, t("报价", "Offers")));
    if (["open", "in_auction", "taking_offers"].includes(lot.state)) {
      actions.push(h("button", { type: "button", onclick: () => cancelLot(lot.lot_id) }, t("撤销", "Cancel")));
    }
    return h("tr", { "data-lot": lot.lot_id },
      h("th", { scope: "row" }, String(lot.lot_id)),
      h("td", {}, h("span", { lang: "zh-CN" }, zh), " ", h("span", { lang: "en", class: "en hide-narrow" }, en)),
      h("td", { class: "num" }, kg(lot.weight_kg)),
      h("td", {}, t(...(MODES[lot.kind] || [lot.kind, lot.kind]))),
      h("td", { "data-field": "state" }, t(...state)),
      h("td", { class: "num", "data-field": "sold" }, s ? `${pricePerT(s.price_fen_per_t)} · ${amount(s.amount_fen)}` : "—"),
      h("td", {}, h("span", { class: "actions" }, ...actions)));
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 7 }, t("还没有货", "No lots yet"))));
  $("#lots tbody").replaceChildren(...rows);
}

async function cancelLot(lot) {
  try {
    await api.post(`/v1/lots/${lot}/cancel`, {});
    say($("#lots-say"), "good", `第 ${lot} 号货已撤销。`, `Lot ${lot} cancelled.`);
  } catch (err) {
    sayError($("#lots-say"), err);
  }
  loadLots();
}

async function showOffers(lot) {
  offersLot = lot;
  $("#offers-panel").hidden = false;
  $("#offers-lot").textContent = `· 第 ${lot} 号货 Lot ${lot}`;
  const out = $("#offers-say");
  let view;
  try {
    view = await api.get(`/v1/lots/${lot}`);
  } catch (err) {
    return sayError(out, err);
  }
  const offers = view.offers || [];
  const rows = offers.map((o) => {
    const counter = h("input", { inputmode: "decimal", size: 8, "data-keep": String(o.offer_id), "aria-label": `还价（元/吨）报价 ${o.offer_id} · Counter-offer, ¥/t, offer ${o.offer_id}` });
    return h("tr", { "data-offer": o.offer_id },
      h("th", { scope: "row" }, String(o.offer_id)),
      h("td", { class: "num" }, pricePerT(o.price_fen_per_t), o.counter_price_fen_per_t ? h("span", { class: "sub" }, ` · 还价 ${pricePerT(o.counter_price_fen_per_t)}`) : null),
      h("td", {}, o.status),
      h("td", {}, h("span", { class: "actions" },
        h("button", { type: "button", onclick: () => answer(o.offer_id, "accept") }, t("接受", "Accept")),
        h("button", { type: "button", onclick: () => answer(o.offer_id, "reject") }, t("拒绝", "Reject")),
        counter,
        h("button", { type: "button", onclick: () => answer(o.offer_id, "counter", counter.value) }, t("还价", "Counter")))));
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 4 }, t("暂无报价", "No open offers"))));
  replaceKeepingEdits($("#offers tbody"), rows);
}

async function answer(offer, action, counterText) {
  const out = $("#offers-say");
  const body = {};
  if (action === "counter") {
    body.price_fen_per_t = yuanToFen(counterText || "");
    if (body.price_fen_per_t === null) return say(out, "bad", "请填写还价（元/吨）。", "Enter a counter price in yuan per tonne.");
  }
  try {
    await api.post(`/v1/offers/${offer}/${action}`, body);
    say(out, "good", "已答复。", "Answered.");
  } catch (err) {
    sayError(out, err);
  }
  if (offersLot !== null) showOffers(offersLot);
  loadLots();
}

function notice(n) {
  if (n.event === "auction_closed" && n.lot_id === watching && n.result === "reserve_not_met") $("#decide").hidden = false;
  if (n.event === "offer" && n.lot_id === offersLot) showOffers(offersLot);
  if (["traded", "awarded", "auction_closed", "result_decided", "lot_state", "lot_expired", "lot_cancelled"].includes(n.event)) {
    loadSoon();
  }
}

const loadSoon = debounce(() => loadLots());

async function start(signedIn) {
  api = signedIn;
  ({ catalogue, room } = await openRoomPage());
  fillCatalogue();
  const markets = await api.get("/v1/markets").catch(() => ({ markets: [] }));
  const codes = new Set([...Object.keys(REGIONS).filter((c) => c.length === 6), ...markets.markets.map((m) => m.market.split(":")[1])]);
  $("#regions").replaceChildren(...[...codes].sort().map((c) => h("option", { value: c }, regionName(c).join(" "))));
  showRegion();
  $("#category").addEventListener("change", fillModels);
  for (const id of ["model", "count", "unit", "voltage"]) $("#" + id).addEventListener("input", estimate);
  $("#weight").addEventListener("input", quoteSoon);
  $("#region").addEventListener("input", () => {
    showRegion();
    quoteSoon();
  });
  for (const radio of $("#sell").elements.mode) radio.addEventListener("change", showMode);
  $("#sell").addEventListener("submit", sell);
  $("#accept").addEventListener("click", () => decide("accept"));
  $("#decline").addEventListener("click", () => decide("decline"));
  feed = privateFeed(api, {
    onNotice: notice,
    onChannel: (channel, type, data) => {
      if (channel !== `auction:${watching}`) return;
      room.apply(type, data);
      const s = room.state;
      if (s && s.state === "closed" && s.result === "reserve_not_met" && !s.decision) $("#decide").hidden = false;
    },
  });
  showMode();
  await loadLots();
}

startClock($("#clock"));
signIn($("#signin"), "store", start);
