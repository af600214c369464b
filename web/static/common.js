// What every page shares: building elements, formatting money and weights, the API
// client with its error sentences, and the live feed (/v1/ws) with reconnect, resync,
// gap detection, a server-synchronised clock and a visible stale state.
// No framework and no build step: ES modules served as they are.

// -- elements ---------------------------------------------------------------------------

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// h("td", {class: "num"}, "text", child...): text goes in as text, never as HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Chinese first, English alongside: <span lang=zh>…</span> <span lang=en>…</span>.
export function t(zh, en) {
  const frag = document.createDocumentFragment();
  frag.append(h("span", { lang: "zh-CN" }, zh), " ", h("span", { lang: "en", class: "en" }, en));
  return frag;
}

// A table that is drawn again while someone types in it (a feed notice reloads it) keeps
// what they typed: its inputs carry `data-keep` keys, and an input that was edited or had
// the focus comes back with its text, and its focus and caret, in the new rows.
export function replaceKeepingEdits(container, rows) {
  const active = document.activeElement;
  const kept = new Map();
  for (const input of container.querySelectorAll("input[data-keep]")) {
    const focused = input === active;
    if (focused || input.value !== input.defaultValue) {
      kept.set(input.dataset.keep, { value: input.value, focused, start: input.selectionStart, end: input.selectionEnd });
    }
  }
  container.replaceChildren(...rows);
  for (const input of container.querySelectorAll("input[data-keep]")) {
    const was = kept.get(input.dataset.keep);
    if (!was) continue;
    input.value = was.value;
    if (!was.focused) continue;
    input.focus();
    if (was.start !== null) input.setSelectionRange(was.start, was.end);  // null: a number input
  }
}

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// -- units ------------------------------------------------------------------------------

const grouped = new Intl.NumberFormat("en-US");
const cents = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

// fen per tonne -> "¥10,125/t" (whole yuan unless there are fen)
export function price(fen) {
  if (fen === null || fen === undefined) return "—";
  const yuan = fen / 100;
  return "¥" + (fen % 100 ? cents.format(yuan) : grouped.format(yuan));
}
export const pricePerT = (fen) => (fen === null || fen === undefined ? "—" : price(fen) + "/t");
// an amount in fen -> "¥12,150.00"
export const amount = (fen) => (fen === null || fen === undefined ? "—" : "¥" + cents.format(fen / 100));
export const kg = (n) => (n === null || n === undefined ? "—" : grouped.format(n) + " kg");
export const tonnes = (n) => (n === null || n === undefined ? "—" : cents.format(n / 1000) + " t");

// "10125.5" yuan per tonne, as typed -> integer fen, or null if it is not a price
export function yuanToFen(text) {
  const s = String(text).trim();
  if (!/^\d{1,7}(\.\d{1,2})?$/.test(s)) return null;
  const [whole, frac = ""] = s.split(".");
  return Number(whole) * 100 + Number((frac + "00").slice(0, 2));
}

export const REGIONS = {
  "33": ["浙江省", "Zhejiang"],
  "3305": ["湖州市", "Huzhou"],
  "330502": ["吴兴区", "Wuxing"],
  "330503": ["南浔区", "Nanxun"],
  "330521": ["德清县", "Deqing"],
  "330522": ["长兴县", "Changxing"],
  "330523": ["安吉县", "Anji"],
};
export function regionName(code) {
  const r = REGIONS[code];
  return r ? r : [code, code];
}

// -- the API ----------------------------------------------------------------------------

// Every refusal code the API or the feed can answer, as a sentence a person understands.
export const SENTENCES = {
  unauthorized: ["登录已失效或令牌不正确，请重新登录。", "That sign-in token is not recognised or has expired; sign in again."],
  forbidden_role: ["您的账户类型不能进行此操作。", "Your kind of account cannot do this."],
  rate_limited: ["操作太频繁，请稍候再试。", "Too many requests at once; wait a moment and try again."],
  invalid_value: ["有一项填写不在允许的范围内。", "One of the values is outside what is allowed."],
  invalid_type: ["有一项填写的格式不对。", "One of the values has the wrong form."],
  missing_field: ["还有必填项没有填写。", "A required field is missing."],
  unknown_field: ["请求中有不认识的字段。", "The request has a field the service does not know."],
  wrong_unit: ["价格以元/吨、重量以公斤填写。", "Prices are per tonne and weights in kilograms."],
  malformed_json: ["请求内容无法读取。", "The request could not be read."],
  unknown_market: ["没有这个市场（品类和地区）。", "There is no such market (category and region)."],
  duplicate_id: ["这个编号已被使用。", "That id is already in use."],
  lot_not_found: ["找不到这批货。", "That lot cannot be found."],
  bid_not_found: ["找不到这笔挂单，可能已成交、撤销或过期。", "That bid cannot be found; it may have traded, been cancelled or expired."],
  offer_not_found: ["找不到这个报价。", "That offer cannot be found."],
  order_not_found: ["找不到这笔订单。", "That order cannot be found."],
  no_buyer: ["现在没有买家能按这个价格整批收购。", "No buyer can take the whole lot at that price right now."],
  lot_not_open: ["这批货现在不接受这个操作（可能已结束）。", "The lot is not open for that now (it may have ended)."],
  illegal_transition: ["这批货当前的状态不能这样变更。", "The lot cannot change that way from where it is."],
  lot_has_bids: ["已经有人出价，不能再撤销。", "Someone has already bid, so it can no longer be withdrawn."],
  below_increment: ["出价低于最低加价，请至少出到最低下一口价。", "The bid is below the minimum next bid; bid at least that."],
  insufficient_buying_power: ["保证金额度不足，请先释放或增加额度。", "Not enough buying power (deposit); free some or raise your limit."],
  self_dealing_forbidden: ["不能对本企业自己的货出价。", "You cannot bid on your own organisation's lot."],
  offer_open: ["您对这批货已有一个有效报价。", "You already have an open offer on this lot."],
  price_out_of_band: ["价格超出当日报价允许的浮动范围。", "The price is outside the band around today's quote."],
  overloaded: ["系统繁忙，请稍后再试。", "The service is busy; try again shortly."],
  journal_unavailable: ["暂时无法保存，请重试。", "It could not be saved just now; try again."],
  tickets_unavailable: ["实时连接暂时无法建立，稍后自动重试。", "The live connection cannot be set up just now; it will retry."],
  idempotency_in_flight: ["上一次提交还在处理中。", "The previous submission is still being processed."],
  idempotency_key_reused: ["重复提交的内容不一致。", "A repeated submission did not match the first."],
  payload_too_large: ["提交的内容太大。", "What was sent is too large."],
  not_found: ["找不到。", "Not found."],
  network: ["连不上服务，请检查网络。", "The service cannot be reached; check the connection."],
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.code || String(status));
    this.status = status;
    this.code = problem.code || "network";
    this.problem = problem;
  }
  // [zh, en] for a person
  get sentence() {
    const known = SENTENCES[this.code];
    if (!known) return [this.problem.detail || "出错了。", this.problem.detail || "Something went wrong."];
    const [zh, en] = known;
    if (this.code === "price_out_of_band" && this.problem.band_low_fen_per_t) {
      const band = `${pricePerT(this.problem.band_low_fen_per_t)} – ${pricePerT(this.problem.band_high_fen_per_t)}`;
      return [`${zh.replace(/。$/, "")}（${band}）。`, `${en.replace(/\.$/, "")} (${band}).`];
    }
    return [zh, en];
  }
}

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);  // works outside secure contexts too (a shop display on a LAN)
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class Api {
  constructor(token = null) {
    this.token = token;
  }
  async call(method, path, body) {
    const headers = {};
    if (this.token) headers.Authorization = "Bearer " + this.token;
    const init = { method, headers };
    if (method === "POST") {
      headers["Idempotency-Key"] = newKey();
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body || {});
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch {
      throw new ApiError(0, { code: "network" });
    }
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new ApiError(resp.status, data);
    return data;
  }
  get(path) {
    return this.call("GET", path);
  }
  post(path, body) {
    return this.call("POST", path, body);
  }
}

// Shows an error (or a success) in a page's status line, for sighted and screen-reader users.
export function say(el, kind, zh, en) {
  el.replaceChildren(t(zh, en));
  el.className = "say " + kind;
}
export function sayError(el, err) {
  const [zh, en] = err instanceof ApiError ? err.sentence : ["出错了。", String(err)];
  say(el, "bad", zh, en);
}

// -- sign-in ----------------------------------------------------------------------------

// A token kept for this tab only (sessionStorage): a shared shop tablet forgets it.
export function signIn(form, role, onSignedIn) {
  const key = "auction.token." + role;
  const status = $(".say", form) || form.appendChild(h("p", { class: "say", role: "status" }));
  async function tryToken(token) {
    const api = new Api(token);
    try {
      await api.get(role === "recycler" ? "/v1/buying-power" : "/v1/lots?limit=1");
    } catch (err) {
      sessionStorage.removeItem(key);
      sayError(status, err);
      return;
    }
    sessionStorage.setItem(key, token);
    form.hidden = true;
    onSignedIn(api);
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = new FormData(form).get("token").trim();
    if (token) tryToken(token);
  });
  const kept = sessionStorage.getItem(key);
  if (kept) tryToken(kept);
}

// -- the server's clock -----------------------------------------------------------------

// Every frame carries the server's time_ms as it was sent; the largest (time_ms - local
// receive time) over recent frames is the best lower bound of the clock offset.
export const clock = {
  offset: 0,
  samples: [],
  observe(timeMs) {
    const now = Date.now();
    this.samples.push([now, timeMs - now]);
    while (this.samples.length && now - this.samples[0][0] > 60000) this.samples.shift();
    this.offset = Math.max(...this.samples.map((s) => s[1]));
  },
  now() {
    return Date.now() + this.offset;
  },
};

// -- the live feed ----------------------------------------------------------------------

const LOSSY = (channel) => channel === "board" || channel.startsWith("stats:");

// A websocket to /v1/ws that stays subscribed to `channels` across drops:
//  - numbered messages per channel; a gap on a lossless channel means subscribe again
//    (a fresh snapshot); conflated channels (board, stats) only move forward;
//  - reconnect with jittered backoff, subscribing with `since` (the last seq seen), so
//    the server sends what was missed or a snapshot;
//  - "stale" when nothing (not even a heartbeat) came for two heartbeats, or the
//    connection is down.
// onMessage(channel, type, data, msg) with channel as subscribed ("private" stays
// "private"); onState("live" | "stale" | "connecting", detail).
export class Feed {
  constructor({ api = null, onMessage, onState = () => {}, onWelcome = () => {} }) {
    this.api = api;
    this.onMessage = onMessage;
    this.onState = onState;
    this.onWelcome = onWelcome;
    this.channels = new Map();  // subscribed name -> {seq, real}
    this.ws = null;
    this.epoch = null;
    this.heartbeatMs = 15000;
    this.lastFrame = 0;
    this.state = "connecting";
    this.backoff = 500;
    this.stopped = false;
    this.timer = setInterval(() => this.check(), 500);
  }

  subscribe(channel) {
    if (this.channels.has(channel)) return;
    this.channels.set(channel, { seq: null, real: channel });
    this.send({ op: "subscribe", channel });
  }
  unsubscribe(channel) {
    const sub = this.channels.get(channel);
    if (!sub) return;
    this.channels.delete(channel);
    this.send({ op: "unsubscribe", channel: sub.real });
  }
  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  async connect() {
    if (this.stopped) return;
    this.setState("connecting");
    let query = "";
    if (this.api && this.api.token) {
      try {
        const ticket = await this.api.post("/v1/ws/tickets", {});
        query = "?ticket=" + encodeURIComponent(ticket.ticket);
      } catch (err) {
        if (err.code === "unauthorized") return this.setState("stale", "unauthorized");
        return this.retry();
      }
    }
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/v1/ws" + query);
    this.ws = ws;
    this.lastFrame = Date.now();
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setState("stale", "closed");
      this.retry();
    };
    ws.onerror = () => {};  // onclose follows and retries; nothing to show twice
  }

  retry() {
    const wait = this.backoff * (0.5 + Math.random());
    this.backoff = Math.min(this.backoff * 2, 10000);
    setTimeout(() => this.connect(), wait);
  }

  receive(raw) {
    this.lastFrame = Date.now();
    const msg = JSON.parse(raw);
    if (msg.time_ms) clock.observe(msg.time_ms);
    if (msg.type === "snapshot" || msg.type === "update") return this.channelMessage(msg);
    switch (msg.type) {
      case "welcome": {
        if (msg.heartbeat_s) this.heartbeatMs = msg.heartbeat_s * 1000;
        const sameEpoch = this.epoch === msg.epoch;
        this.epoch = msg.epoch;
        this.backoff = 500;
        this.onWelcome(msg);
        for (const [name, sub] of this.channels) {
          const op = { op: "subscribe", channel: name };
          if (sameEpoch && sub.seq !== null) op.since = sub.seq;
          else sub.seq = null;
          this.send(op);
        }
        this.setState("live");
        break;
      }
      case "subscribed": {
        for (const [name, sub] of this.channels) {
          if (name === msg.channel || (name === "private" && msg.channel.startsWith("private:"))) sub.real = msg.channel;
        }
        break;
      }
      case "error":
        console.warn("feed refused:", msg.code, msg.detail);
        break;
      default:
        break;  // heartbeat, pong
    }
    if (this.state !== "live" && this.ws && this.ws.readyState === WebSocket.OPEN && this.epoch) this.setState("live");
  }

  channelMessage(msg) {
    let name = null;
    let sub = null;
    for (const [n, s] of this.channels) {
      if (s.real === msg.channel) {
        name = n;
        sub = s;
      }
    }
    if (!sub) return;  // a late message for a channel just dropped
    if (msg.type === "update" && sub.seq !== null) {
      if (LOSSY(msg.channel) ? msg.seq <= sub.seq : msg.seq !== sub.seq + 1) {
        if (LOSSY(msg.channel) || msg.seq <= sub.seq) return;  // old or repeated
        sub.seq = null;  // a gap: start again from a snapshot
        this.send({ op: "unsubscribe", channel: sub.real });
        this.send({ op: "subscribe", channel: name });
        return;
      }
    } else if (msg.type === "update") {
      return;  // no snapshot yet: wait for it
    }
    sub.seq = msg.seq;
    if (this.state !== "live") this.setState("live");
    this.onMessage(name, msg.type, msg.data, msg);
  }

  check() {
    if (this.stopped) return;
    const quiet = Date.now() - this.lastFrame;
    if (this.ws && this.state === "live" && quiet > 2 * this.heartbeatMs + 1000) {
      this.setState("stale", "late");
    }
    if (this.ws && quiet > 4 * this.heartbeatMs + 2000) {
      const ws = this.ws;  // silent for too long: drop it and reconnect
      this.ws = null;
      ws.close();
      this.retry();
    }
  }

  setState(state, detail = "") {
    if (this.state === state && state !== "stale") return;
    this.state = state;
    this.onState(state, detail);
  }
}

// The little feed badge every page shows: live, late (stale) or reconnecting.
export function feedBadge(el) {
  return (state) => {
    el.dataset.state = state;
    if (state === "live") el.replaceChildren(t("实时", "Live"));
    else if (state === "stale") el.replaceChildren(t("行情延迟", "Stale"));
    else el.replaceChildren(t("连接中", "Connecting"));
  };
}

// A clock in the server's time, in China Standard Time (the trade's day).
export function startClock(el) {
  const fmt = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const tick = () => {
    const now = new Date(clock.now());
    el.dateTime = now.toISOString();
    setText(el, fmt.format(now));
  };
  tick();
  setInterval(tick, 1000);
}

// "4:59" until a deadline in the server's time (negative: 0:00)
export function countdown(untilMs) {
  const left = Math.max(0, Math.round((untilMs - clock.now()) / 1000));
  const m = Math.floor(left / 60);
  const s = String(left % 60).padStart(2, "0");
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// The catalogue, once per page.
let catalogue = null;
export async function getCatalogue() {
  if (!catalogue) catalogue = await new Api().get("/v1/catalogue");
  return catalogue;
}
export function categoryName(cat, code) {
  const c = cat && cat.categories.find((x) => x.code === code);
  return c ? [c.name_zh, c.name_en] : [code, code];
}
export function marketName(cat, market) {
  const [category, region] = market.split(":");
  const [czh, cen] = categoryName(cat, category);
  const [rzh, ren] = regionName(region);
  return [`${czh} · ${rzh}`, `${cen} · ${ren}`];
}

export const LOT_STATES = {
  listed: ["已发布", "listed"], open: ["在售", "open"], in_auction: ["竞价中", "in auction"],
  taking_offers: ["议价中", "taking offers"], awarded: ["已成交", "sold"],
  awaiting_acceptance: ["待门店决定", "awaiting the store's decision"], cancelled: ["已撤销", "cancelled"],
  expired: ["已过期", "expired"], declined: ["已拒绝", "declined"], lapsed: ["已超时", "lapsed"],
  relisted: ["已重新发布", "relisted"], sold: ["已成交", "sold"], deposit_paid: ["已付定金", "deposit paid"], weighed: ["已过磅", "weighed"],
  settled: ["已结算", "settled"], disputed: ["有争议", "disputed"],
};

// A private notice (the `private` channel) in words: [tone, zh, en]; tone is
// "good" | "bad" | "" for the colour, and the words say it for everyone.
export function describeNotice(n) {
  const lot = n.lot_id !== undefined ? n.lot_id : "";
  const p = (v) => pricePerT(v);
  switch (n.event) {
    case "traded":
    case "awarded":
      return n.role === "seller"
        ? ["good", `第 ${lot} 号货已成交：${p(n.price_fen_per_t)} × ${kg(n.weight_kg)} = ${amount(n.amount_fen)}`, `Lot ${lot} sold: ${p(n.price_fen_per_t)} × ${kg(n.weight_kg)} = ${amount(n.amount_fen)}`]
        : ["good", `买入第 ${lot} 号货：${p(n.price_fen_per_t)} × ${kg(n.weight_kg)} = ${amount(n.amount_fen)}`, `Bought lot ${lot}: ${p(n.price_fen_per_t)} × ${kg(n.weight_kg)} = ${amount(n.amount_fen)}`];
    case "won":
      return ["good", `您赢得了第 ${lot} 号货的竞价：${p(n.price_fen_per_t)}`, `You won the auction of lot ${lot} at ${p(n.price_fen_per_t)}`];
    case "outbid":
      return ["bad", `第 ${lot} 号货：您的出价已被超过（${n.by} 号），当前价 ${p(n.visible_price_fen_per_t)}`, `Lot ${lot}: you were outbid by paddle ${n.by}; price now ${p(n.visible_price_fen_per_t)}`];
    case "leading":
      return ["good", `第 ${lot} 号货：您现在领先，当前价 ${p(n.visible_price_fen_per_t)}`, `Lot ${lot}: you lead at ${p(n.visible_price_fen_per_t)}`];
    case "auction_bid":
      return ["", `第 ${lot} 号货：出价已受理，最高代理价 ${p(n.max_price_fen_per_t)}`, `Lot ${lot}: bid accepted, proxy maximum ${p(n.max_price_fen_per_t)}`];
    case "auction_started":
      return ["", `第 ${lot} 号货开始竞价`, `Lot ${lot}: the auction started`];
    case "auction_closed":
      return n.result === "reserve_not_met"
        ? ["bad", `第 ${lot} 号货未达保留价，最高出价 ${p(n.price_fen_per_t)}，请决定是否接受`, `Lot ${lot}: the reserve was not met; best bid ${p(n.price_fen_per_t)}. Accept or decline it.`]
        : n.result === "no_bids"
          ? ["", `第 ${lot} 号货流拍（无人出价）`, `Lot ${lot}: the auction closed with no bids`]
          : ["good", `第 ${lot} 号货竞价结束，成交价 ${p(n.price_fen_per_t)}`, `Lot ${lot}: the auction closed at ${p(n.price_fen_per_t)}`];
    case "result_decided":
      return ["", `第 ${lot} 号货：门店${n.decision === "accepted" ? "接受了" : "未接受"}最高出价`, `Lot ${lot}: the store ${n.decision} the best bid`];
    case "offer":
      return ["", `第 ${lot} 号货：报价 ${n.offer_id} ${p(n.price_fen_per_t)}（${n.status}）`, `Lot ${lot}: offer ${n.offer_id} at ${p(n.price_fen_per_t)} (${n.status})`];
    case "bid_placed":
      return ["", `挂单 ${n.bid_id} 已生效：${p(n.price_fen_per_t)}，${kg(n.qty_kg)}`, `Bid ${n.bid_id} placed: ${p(n.price_fen_per_t)}, ${kg(n.qty_kg)}`];
    case "bid_amended":
      return ["", `挂单 ${n.bid_id} 已修改：${p(n.price_fen_per_t)}`, `Bid ${n.bid_id} amended: ${p(n.price_fen_per_t)}`];
    case "bid_cancelled":
      return ["", `挂单 ${n.bid_id} 已撤销`, `Bid ${n.bid_id} cancelled`];
    case "bid_expired":
      return ["", `挂单 ${n.bid_id} 已过期`, `Bid ${n.bid_id} expired`];
    case "lot_posted":
      return ["", `第 ${lot} 号货已发布（${kg(n.weight_kg)}）`, `Lot ${lot} posted (${kg(n.weight_kg)})`];
    case "lot_state": {
      const [fz, fe] = LOT_STATES[n.from_state] || [n.from_state, n.from_state];
      const [tz, te] = LOT_STATES[n.to_state] || [n.to_state, n.to_state];
      return ["", `第 ${lot} 号货：${fz} → ${tz}`, `Lot ${lot}: ${fe} → ${te}`];
    }
    case "lot_cancelled":
      return ["", `第 ${lot} 号货已撤销`, `Lot ${lot} cancelled`];
    case "lot_expired":
      return ["", `第 ${lot} 号货已过期`, `Lot ${lot} expired`];
    case "buying_power":
      return ["", `可用保证金额度 ${amount(n.available_fen)}`, `Buying power available: ${amount(n.available_fen)}`];
    default:
      return ["", n.event, n.event];
  }
}

export function noticeItem(n) {
  const [tone, zh, en] = describeNotice(n);
  return h("li", { class: tone, "data-event": n.event }, t(zh, en));
}

// fn, called at most once per `ms` after the last call (a burst of notices: one reload)
export function debounce(fn, ms = 200) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// The feed of a signed-in page: the badge and the name in the header, and the `private`
// channel shown in #notices (the snapshot's recent notices, then each new one).
// onNotice(n) runs for each notice, onSnapshot(data) for the private snapshot, and
// onChannel(channel, type, data) for every other channel.
export function privateFeed(api, { onNotice = () => {}, onSnapshot = () => {}, onChannel = () => {} }) {
  const list = $("#notices");
  const show = (n) => {
    list.prepend(noticeItem(n));
    while (list.children.length > 30) list.lastChild.remove();
    onNotice(n);
  };
  const feed = new Feed({
    api,
    onState: feedBadge($("#feed")),
    onWelcome: (w) => {
      $("#who").textContent = w.principal ? `· ${w.principal}` : "";
    },
    onMessage: (channel, type, data) => {
      if (channel !== "private") return onChannel(channel, type, data);
      if (type === "update") return show(data);
      list.replaceChildren();
      onSnapshot(data);
      for (const n of data.recent || []) show(n);
    },
  });
  feed.subscribe("private");
  feed.connect();
  return feed;
}
