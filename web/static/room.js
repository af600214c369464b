// One auction room (the `auction:<lot>` channel), as the store and the recyclers see it:
// the visible price, the minimum next bid, the leader's paddle number, a countdown to the
// close in the server's time, every extension, and the result.

import { $, h, t, setText, pricePerT, kg, countdown, clock, marketName, getCatalogue } from "./common.js";

// A signed-in page opens: its app shown, the catalogue loaded, its (empty) room drawn.
export async function openRoomPage() {
  $("#app").hidden = false;
  const catalogue = await getCatalogue();
  const room = new Room($("#room"), catalogue);
  room.render();
  return { catalogue, room };
}

const RESULTS = {
  awarded: ["成交", "sold"],
  bought_now: ["一口价成交", "bought now"],
  no_bids: ["流拍（无人出价）", "no bids: expired"],
  reserve_not_met: ["未达保留价，等待门店决定", "reserve not met: the store decides"],
};

export class Room {
  constructor(container, catalogue, { me = null } = {}) {
    this.container = container;
    this.catalogue = catalogue;
    this.me = me;  // my paddle number, when known (a recycler learns it from its own bids)
    this.state = null;
    this.log = [];
    this.lot = null;
    this.timer = setInterval(() => this.tick(), 250);
  }

  show(lot) {
    this.lot = lot;
    this.state = null;
    this.log = [];
    this.render();
  }

  apply(type, data) {
    if (type === "snapshot") {
      this.state = { ...data };
      this.log = [];
    } else if (this.state) {
      const { event, ...rest } = data;
      Object.assign(this.state, rest);
      if (event === "awarded") this.state.result = this.state.result || "awarded";
      this.log.unshift(this.describe(event, data));
      this.log = this.log.slice(0, 30);
    }
    this.render();
  }

  describe(event, d) {
    const at = d.at ? new Date(d.at).toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }) : "";
    switch (event) {
      case "bid":
        return [`${at} ${d.bidder} 号${d.auto ? "（代理）" : ""}出价，当前价 ${pricePerT(d.visible_price_fen_per_t)}，领先 ${d.leader} 号`,
          `${at} paddle ${d.bidder} bid${d.auto ? " (proxy)" : ""}; price ${pricePerT(d.visible_price_fen_per_t)}, paddle ${d.leader} leads`];
      case "leader":
        return [`${at} 领先者变为 ${d.leader} 号，${pricePerT(d.visible_price_fen_per_t)}`, `${at} paddle ${d.leader} now leads at ${pricePerT(d.visible_price_fen_per_t)}`];
      case "extended":
        return [`${at} 临近结束有新领先者，延时 ${d.extended_s} 秒`, `${at} a late change of leader: the close is extended by ${d.extended_s} s`];
      case "closed": {
        const [zh, en] = RESULTS[d.result] || [d.result, d.result];
        return [`${at} 竞价结束：${zh} ${d.price_fen_per_t ? pricePerT(d.price_fen_per_t) : ""}`, `${at} closed: ${en} ${d.price_fen_per_t ? pricePerT(d.price_fen_per_t) : ""}`];
      }
      case "awarded":
        return [`成交价 ${pricePerT(d.price_fen_per_t)}`, `awarded at ${pricePerT(d.price_fen_per_t)}`];
      case "decided":
        return [`门店决定：${d.decision === "accepted" ? "接受" : d.decision === "declined" ? "拒绝" : "超时"}`, `the store's decision: ${d.decision}`];
      default:
        return [event, event];
    }
  }

  closesMs() {
    return this.state && this.state.closes_at ? Date.parse(this.state.closes_at) : null;
  }

  tick() {
    const el = this.container.querySelector("[data-field=countdown]");
    if (!el || !this.state) return;
    const until = this.closesMs();
    setText(el, this.state.state === "open" && until ? countdown(until) : "—");
    el.classList.toggle("bad", this.state.state === "open" && until - clock.now() < 60000);
  }

  render() {
    const s = this.state;
    if (!this.lot) {
      this.container.replaceChildren(h("p", { class: "hint" }, t("选择一批竞价中的货进入竞价室。", "Choose a lot in auction to enter its room.")));
      return;
    }
    if (!s) {
      this.container.replaceChildren(h("p", { class: "hint" }, t(`正在载入第 ${this.lot} 号货的竞价室…`, `Loading the room of lot ${this.lot}…`)));
      return;
    }
    const [mzh, men] = marketName(this.catalogue, s.market || "");
    const resultText = s.result ? RESULTS[s.result] || [s.result, s.result] : null;
    const leader = s.leader ? `${s.leader} 号${this.me && this.me === s.leader ? "（您）" : ""}` : "—";
    const rows = [
      [["当前价", "Price now"], h("span", { class: "big", "data-field": "visible" }, pricePerT(s.visible_price_fen_per_t))],
      [["最低下一口价", "Minimum next bid"], h("span", { "data-field": "min-next" }, s.state === "open" ? pricePerT(s.min_next_bid_fen_per_t) : "—")],
      [["剩余时间", "Closes in"], h("span", { class: "big", "data-field": "countdown", role: "timer", "aria-live": "off" }, "—")],
      [["结束时间", "Closes at"], h("time", { "data-field": "closes-at", datetime: s.closes_at || "" }, s.closes_at ? new Date(s.closes_at).toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }) : "—")],
      [["出价次数", "Bids"], h("span", { "data-field": "bids" }, String(s.bids ?? 0))],
      [["领先", "Leader"], h("span", { "data-field": "leader" }, leader)],
      [["保留价", "Reserve"], s.has_reserve ? t(s.reserve_met ? "已达到" : "未达到", s.reserve_met ? "met" : "not met") : t("无", "none")],
      [["起拍价", "Start"], pricePerT(s.start_price_fen_per_t)],
    ];
    if (s.buy_now_fen_per_t) rows.push([["一口价", "Buy now"], pricePerT(s.buy_now_fen_per_t)]);
    if (resultText) rows.push([["结果", "Result"], h("strong", { "data-field": "result" }, t(resultText[0], resultText[1]), s.price_fen_per_t ? ` ${pricePerT(s.price_fen_per_t)}` : "")]);
    this.container.replaceChildren(
      h("h3", {}, t(`第 ${s.lot_id} 号货 · ${mzh} · ${kg(s.weight_kg)}`, `Lot ${s.lot_id} · ${men}`)),
      h("dl", {}, ...rows.flatMap(([[zh, en], value]) => [h("dt", {}, t(zh, en)), h("dd", {}, value)])),
      h("ul", { class: "notices", "aria-label": "竞价记录 Room log" }, ...this.log.map(([zh, en]) => h("li", {}, t(zh, en)))),
    );
    this.tick();
  }
}
