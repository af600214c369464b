// The recycler page (/recycler): a market's depth ladder and trade tape, my standing
// bids (place, amend, cancel), my buying power, and an auction room per lot with a
// server-synchronised countdown, the minimum next bid, a proxy maximum, and outbid /
// leading / won notices as they happen.

import { $, h, t, startClock, signIn, say, sayError, marketName, pricePerT, amount, kg, yuanToFen, debounce, privateFeed, replaceKeepingEdits } from "./common.js";
import { depthChart, intraday } from "./charts.js";
import { openRoomPage } from "./room.js";

let api = null;
let catalogue = null;
let feed = null;
let room = null;
let market = null;
let lotInRoom = null;
let book = { bids: new Map(), asks: new Map() };
let tape = [];
const status = new Map();  // lot -> ["leading" | "outbid" | "won", paddle]

// -- market: depth and tape ---------------------------------------------------------------

function applyBook(type, data) {
  if (type === "snapshot") book = { bids: new Map(), asks: new Map() };
  for (const side of ["bids", "asks"]) {
    for (const [p, q, n] of data[side] || []) {
      if (q === 0) book[side].delete(p);
      else book[side].set(p, [q, n]);
    }
  }
  renderBook();
}

function levels(side) {
  const rows = [...book[side].entries()].map(([p, [q, n]]) => [p, q, n]);
  rows.sort((a, b) => (side === "bids" ? b[0] - a[0] : a[0] - b[0]));
  return rows;
}

function renderBook() {
  const bids = levels("bids");
  const asks = levels("asks");
  const [zh, en] = marketName(catalogue, market);
  const best = bids.length ? pricePerT(bids[0][0]) : "—";
  const label = `${zh} 买盘 ${bids.length} 档，最高买价 ${best}，共 ${kg(bids.reduce((s, b) => s + b[1], 0))}；卖盘 ${asks.length} 档。` +
    `${en}: ${bids.length} bid levels, best ${best}, ${kg(bids.reduce((s, b) => s + b[1], 0))} in all; ${asks.length} lot levels.`;
  $("#depth-chart").replaceChildren(depthChart(bids, asks, label, pricePerT));
  const rows = [];
  for (let i = 0; i < Math.max(bids.length, asks.length, 1) && i < 10; i++) {
    const b = bids[i];
    const a = asks[i];
    rows.push(h("tr", {},
      h("td", { class: "num up" }, b ? pricePerT(b[0]) : ""),
      h("td", { class: "num" }, b ? kg(b[1]) : ""),
      h("td", { class: "num hide-narrow" }, b ? String(b[2]) : ""),
      h("td", { class: "num down" }, a ? pricePerT(a[0]) : ""),
      h("td", { class: "num" }, a ? kg(a[1]) : "")));
  }
  $("#ladder tbody").replaceChildren(...rows);
}

function applyTape(type, data) {
  if (type === "snapshot") tape = [];
  tape.push(...(data.trades || []));
  tape = tape.slice(-200);
  const points = tape.map((tr) => [Date.parse(tr.at), tr.price_fen_per_t]);
  const [zh, en] = marketName(catalogue, market);
  const last = tape.length ? pricePerT(tape[tape.length - 1].price_fen_per_t) : "—";
  const label = `${zh} 最近 ${tape.length} 笔成交，最新 ${last}。${en}: the last ${tape.length} trades, latest ${last}.`;
  $("#tape-chart").replaceChildren(intraday(points, label, pricePerT));
  const fmt = (iso) => new Date(iso).toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
  $("#tape tbody").replaceChildren(...tape.slice(-12).reverse().map((tr) =>
    h("tr", {}, h("td", {}, fmt(tr.at)), h("td", { class: "num" }, pricePerT(tr.price_fen_per_t)), h("td", { class: "num" }, kg(tr.weight_kg)))));
}

function chooseMarket(next) {
  if (market) {
    feed.unsubscribe(`book:${market}`);
    feed.unsubscribe(`trades:${market}`);
  }
  market = next;
  book = { bids: new Map(), asks: new Map() };
  tape = [];
  feed.subscribe(`book:${market}`);
  feed.subscribe(`trades:${market}`);
  loadBids();
  loadAuctions();
  loadOffers();
}

// -- standing bids ------------------------------------------------------------------------

async function placeBid(ev) {
  ev.preventDefault();
  const out = $("#place-say");
  const price = yuanToFen($("#bid-price").value);
  const qty = Number($("#bid-qty").value);
  const min = Number($("#bid-min").value || 0);
  if (price === null) return say(out, "bad", "请填写价格（元/吨）。", "Enter a price in yuan per tonne.");
  if (!Number.isInteger(qty) || qty < 1) return say(out, "bad", "请填写数量（公斤，整数）。", "Enter a quantity in whole kilograms.");
  if (!Number.isInteger(min) || min < 0) return say(out, "bad", "最小批量是不小于 0 的整数。", "The minimum lot is a whole number, 0 or more.");
  const body = { market, price_fen_per_t: price, qty_kg: qty, join_auctions: $("#bid-join").checked };
  if (min) body.min_lot_kg = min;
  try {
    const answer = await api.post("/v1/bids", body);
    const fills = answer.events.filter((e) => e.type === "traded");
    say(out, "good", `挂单 ${answer.id} 已生效${fills.length ? `，成交 ${fills.length} 笔` : ""}。`, `Bid ${answer.id} placed${fills.length ? `; ${fills.length} trades` : ""}.`);
  } catch (err) {
    sayError(out, err);
  }
  loadBids();
}

async function loadBids() {
  try {
    const page = await api.get("/v1/bids?state=open&limit=100");
    const mine = page.items.filter((b) => b.market === market);
    const rows = mine.map((b) => {
      const price = h("input", { inputmode: "decimal", size: 8, value: String(b.price_fen_per_t / 100), "data-keep": `${b.bid_id}-price`, "aria-label": `新价格（元/吨）挂单 ${b.bid_id} · New price, ¥/t, bid ${b.bid_id}` });
      const qty = h("input", { type: "number", min: 1, size: 7, value: String(b.open_kg), "data-keep": `${b.bid_id}-qty`, "aria-label": `新数量（公斤）挂单 ${b.bid_id} · New quantity, kg, bid ${b.bid_id}` });
      return h("tr", { "data-bid": b.bid_id },
        h("th", { scope: "row" }, String(b.bid_id)),
        h("td", { class: "num" }, pricePerT(b.price_fen_per_t)),
        h("td", { class: "num" }, kg(b.open_kg)),
        h("td", {}, h("span", { class: "actions" }, price, qty,
          h("button", { type: "button", onclick: () => amend(b, price.value, qty.value) }, t("修改", "Amend")),
          h("button", { type: "button", onclick: () => cancel(b.bid_id) }, t("撤销", "Cancel")))));
    });
    if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 4 }, t("这个市场没有挂单", "No bids in this market"))));
    replaceKeepingEdits($("#bids tbody"), rows);
  } catch (err) {
    sayError($("#bids-say"), err);
  }
}

async function amend(bid, priceText, qtyText) {
  const out = $("#bids-say");
  const body = {};
  const price = yuanToFen(priceText);
  const qty = Number(qtyText);
  if (price === null) return say(out, "bad", "请填写价格（元/吨）。", "Enter a price in yuan per tonne.");
  if (!Number.isInteger(qty) || qty < 1) return say(out, "bad", "请填写数量（公斤，整数）。", "Enter a quantity in whole kilograms.");
  if (price !== bid.price_fen_per_t) body.price_fen_per_t = price;
  if (qty !== bid.open_kg) body.qty_kg = qty;
  if (!Object.keys(body).length) return say(out, "", "没有改动。", "Nothing changed.");
  try {
    await api.post(`/v1/bids/${bid.bid_id}/amend`, body);
    say(out, "good", `挂单 ${bid.bid_id} 已修改。`, `Bid ${bid.bid_id} amended.`);
  } catch (err) {
    sayError(out, err);
  }
  loadBids();
}

async function cancel(bidId) {
  const out = $("#bids-say");
  try {
    await api.post(`/v1/bids/${bidId}/cancel`, {});
    say(out, "good", `挂单 ${bidId} 已撤销。`, `Bid ${bidId} cancelled.`);
  } catch (err) {
    sayError(out, err);
  }
  loadBids();
}

function showPower(p) {
  if (!p) return;
  $("#power").replaceChildren(t(`保证金额度：可用 ${amount(p.available_fen)} / 共 ${amount(p.limit_fen)}`,
    `Buying power: ${amount(p.available_fen)} free of ${amount(p.limit_fen)}`));
}

// -- auctions -----------------------------------------------------------------------------

async function loadAuctions() {
  try {
    const page = await api.get(`/v1/lots?state=in_auction&market=${encodeURIComponent(market)}&limit=50`);
    const items = page.items.map((lot) =>
      h("li", {}, h("button", { type: "button", "data-lot": lot.lot_id, onclick: () => enter(lot.lot_id) },
        t(`进入第 ${lot.lot_id} 号货竞价室（${kg(lot.weight_kg)}）`, `Enter the room of lot ${lot.lot_id} (${kg(lot.weight_kg)})`))));
    if (!items.length) items.push(h("li", { class: "hint" }, t("这个市场现在没有竞价", "No auctions in this market now")));
    $("#auctions").replaceChildren(...items);
  } catch (err) {
    sayError($("#bid-say"), err);
  }
}

async function enter(lot) {
  if (lotInRoom !== null && lotInRoom !== lot) feed.unsubscribe(`auction:${lotInRoom}`);
  lotInRoom = lot;
  room.show(lot);
  $("#bid").hidden = false;
  $("#bid-say").replaceChildren();
  feed.subscribe(`auction:${lot}`);
  try {
    const view = await api.get(`/v1/lots/${lot}`);
    if (view.auction && view.auction.leading) status.set(lot, ["leading", null]);
    showStatus();
  } catch (err) {
    sayError($("#bid-say"), err);
  }
  $("#max").focus();
}

function showStatus() {
  const s = status.get(lotInRoom);
  const out = $("#bid-say");
  if (!s) return;
  if (s[0] === "leading") say(out, "good", "您目前领先。", "You are leading.");
  else if (s[0] === "outbid") say(out, "bad", `您的出价已被超过（${s[1]} 号）。`, `You have been outbid (by paddle ${s[1]}).`);
  else if (s[0] === "won") say(out, "good", `您赢得了这批货：${pricePerT(s[1])}`, `You won this lot at ${pricePerT(s[1])}.`);
}

function roomUpdated() {
  const s = room.state;
  if (!s) return;
  const max = $("#max");
  if (s.state === "open" && s.min_next_bid_fen_per_t && document.activeElement !== max) {
    max.placeholder = String(s.min_next_bid_fen_per_t / 100);
  }
  $("#buy-now").hidden = !(s.state === "open" && s.buy_now_fen_per_t);
  for (const b of $("#bid").querySelectorAll("button")) b.disabled = s.state !== "open";
}

async function bid(ev) {
  ev.preventDefault();
  const out = $("#bid-say");
  const max = yuanToFen($("#max").value || $("#max").placeholder);
  if (max === null) return say(out, "bad", "请填写最高代理价（元/吨）。", "Enter your proxy maximum in yuan per tonne.");
  try {
    const answer = await api.post(`/v1/lots/${lotInRoom}/bids`, { max_price_fen_per_t: max });
    const accepted = answer.events.find((e) => e.type === "auction_bid_accepted");
    if (accepted && accepted.leading) {
      status.set(lotInRoom, ["leading", null]);
      showStatus();
    } else if (accepted) {
      say(out, "bad", `出价已受理，但有人的代理价更高：当前价 ${pricePerT(accepted.visible_price_fen_per_t)}。`, `Bid taken, but someone's maximum is higher: price now ${pricePerT(accepted.visible_price_fen_per_t)}.`);
    }
    $("#max").value = "";
  } catch (err) {
    sayError(out, err);
  }
}

async function buyNow() {
  try {
    await api.post(`/v1/lots/${lotInRoom}/buy-now`, {});
  } catch (err) {
    sayError($("#bid-say"), err);
  }
}

// -- offers (议价) ---------------------------------------------------------------------------

const myOffers = new Map();  // lot -> the latest notice about my offer on it

async function loadOffers() {
  const out = $("#offers-say");
  let page;
  try {
    page = await api.get(`/v1/lots?state=taking_offers&market=${encodeURIComponent(market)}&limit=50`);
  } catch (err) {
    return sayError(out, err);
  }
  const rows = page.items.map((lot) => {
    const mine = myOffers.get(lot.lot_id);
    const open = mine && (mine.status === "made" || mine.status === "countered");
    const price = h("input", { inputmode: "decimal", size: 8, "data-keep": String(lot.lot_id), "aria-label": `报价（元/吨）第 ${lot.lot_id} 号货 · Offer, ¥/t, lot ${lot.lot_id}` });
    const actions = open
      ? [mine.status === "countered"
          ? h("button", { type: "button", onclick: () => offerAction(mine.offer_id, "accept-counter") }, t(`接受还价 ${pricePerT(mine.counter_price_fen_per_t)}`, "Accept the counter"))
          : null,
        h("button", { type: "button", onclick: () => offerAction(mine.offer_id, "withdraw") }, t("撤回", "Withdraw"))]
      : [price, h("button", { type: "button", onclick: () => makeOffer(lot.lot_id, price.value) }, t("报价", "Make offer"))];
    return h("tr", { "data-lot": lot.lot_id },
      h("th", { scope: "row" }, String(lot.lot_id)),
      h("td", { class: "num" }, kg(lot.weight_kg)),
      h("td", { "data-field": "offer" }, mine ? `${pricePerT(mine.price_fen_per_t)} · ${mine.status}` : "—"),
      h("td", {}, h("span", { class: "actions" }, ...actions)));
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 4 }, t("这个市场没有议价中的货", "No lots taking offers in this market"))));
  replaceKeepingEdits($("#offer-lots tbody"), rows);
}

async function makeOffer(lot, priceText) {
  const out = $("#offers-say");
  const price = yuanToFen(priceText);
  if (price === null) return say(out, "bad", "请填写报价（元/吨）。", "Enter an offer in yuan per tonne.");
  const expires = new Date(Date.now() + 2 * 3600000).toISOString();
  try {
    const answer = await api.post(`/v1/lots/${lot}/offers`, { price_fen_per_t: price, expires_at: expires });
    say(out, "good", `报价 ${answer.id} 已提交（2 小时内有效）。`, `Offer ${answer.id} made (valid 2 hours).`);
  } catch (err) {
    sayError(out, err);
  }
}

async function offerAction(offer, action) {
  const out = $("#offers-say");
  try {
    await api.post(`/v1/offers/${offer}/${action}`, {});
    say(out, "good", "已完成。", "Done.");
  } catch (err) {
    sayError(out, err);
  }
  loadOffers();
}

function notice(n) {
  if (n.event === "buying_power") showPower(n);
  if (n.event === "outbid") status.set(n.lot_id, ["outbid", n.by]);
  if (n.event === "leading") status.set(n.lot_id, ["leading", null]);
  if (n.event === "won") status.set(n.lot_id, ["won", n.price_fen_per_t]);
  if (n.lot_id === lotInRoom) showStatus();
  if (["bid_placed", "bid_amended", "bid_cancelled", "bid_expired", "traded"].includes(n.event)) loadBidsSoon();
  if (n.event === "offer") {
    myOffers.set(n.lot_id, n);
    loadOffersSoon();
  }
}

const loadOffersSoon = debounce(() => loadOffers());
const loadBidsSoon = debounce(() => loadBids());

async function start(signedIn) {
  api = signedIn;
  ({ catalogue, room } = await openRoomPage());
  const [markets, prices, power] = await Promise.all([
    api.get("/v1/markets"), api.get("/v1/prices").catch(() => ({ quotes: [] })), api.get("/v1/buying-power"),
  ]);
  showPower(power);
  const codes = new Set(markets.markets.map((m) => m.market));
  for (const q of prices.quotes || []) if (q.kind === "daily") codes.add(q.key);
  const sel = $("#market");
  const wanted = new URLSearchParams(location.search).get("market");
  sel.replaceChildren(...[...codes].sort().map((m) => h("option", { value: m, selected: m === wanted }, marketName(catalogue, m).join(" · "))));
  sel.addEventListener("change", () => chooseMarket(sel.value));
  $("#place").addEventListener("submit", placeBid);
  $("#bid").addEventListener("submit", bid);
  $("#buy-now").addEventListener("click", buyNow);
  feed = privateFeed(api, {
    onNotice: notice,
    onSnapshot: (data) => showPower(data.buying_power),
    onChannel: (channel, type, data) => {
      if (channel === `book:${market}`) applyBook(type, data);
      else if (channel === `trades:${market}`) applyTape(type, data);
      else if (channel === `auction:${lotInRoom}`) {
        room.apply(type, data);
        roomUpdated();
        if (type === "update" && data.event === "closed") loadAuctions();
      }
    },
  });
  if (sel.value) chooseMarket(sel.value);
  $("#refresh").addEventListener("click", () => {
    loadAuctions();
    loadOffers();
  });
  setInterval(() => {  // new lots in auction or taking offers (rooms themselves are live)
    loadAuctions();
    loadOffers();
  }, 10000);
}

startClock($("#clock"));
signIn($("#signin"), "recycler", start);
