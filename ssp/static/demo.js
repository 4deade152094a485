// The Gavel demo publisher page: lays out a catalog site's slots and fills each through POST /ad.
//
// For each slot of the layout (desktop or mobile, by viewport width): POST /ad with the site, the
// slot, the page, a reader id kept in localStorage and optional ?segments=IAB17,IAB20. A 200 is
// rendered in a sandboxed iframe (srcdoc = adm, or src = markup_url); its load fires the
// impression beacon; a click on the slot fires the click beacon. State lands in data attributes
// (data-state = loading | filled | empty | error, data-impression, data-clicked) for tests.
"use strict";

const ARTICLES = {
  IAB12: ["World", "City council approves the new riverside light-rail line",
    "After two years of hearings, the council voted 9 to 4 on Tuesday night to fund the first " +
    "eight kilometres of track, linking the old docks to the university quarter.",
    "Supporters say the line will take twelve thousand cars off the bridges every weekday; " +
    "opponents worry about the cost overruns that dogged the last tram project."],
  IAB17: ["Running", "Amateur runners set a record turnout at the spring half marathon",
    "More than eleven thousand runners crossed the line on Sunday, most of them first-timers " +
    "drawn by a flat course along the harbour and a cool, still morning.",
    "Shoe shops near the start reported a rush on carbon-plated trainers the week before."],
  IAB20: ["Travel", "Three days in Lisbon: trams, tiles and the best custard tarts",
    "Lisbon rewards slow walkers. Start in Alfama before the day-trippers arrive, and let the " +
    "number 28 tram carry you up the hills your legs would rather not climb.",
    "In the evening, cross the river to Cacilhas for grilled fish and the best view of the city."],
  IAB19: ["Reviews", "The new ultralight laptops, tested for a week of real work",
    "We carried five of this season's thinnest laptops for a week of email, video calls and " +
    "the occasional compile, and measured what the spec sheets leave out.",
    "Battery life varied by a factor of two, and the keyboard mattered more than the chip."],
};
const GENERIC = ["Today", "What our readers asked us this week",
  "Every week we gather the questions readers send us and put them to the people who can " +
  "answer them. This week: prices, weekend plans and what to cook when nobody is hungry.",
  "The answers were, as always, more interesting than the questions."];
const FILLER = [
  "Local businesses along the route said they were cautiously optimistic. \u201cAnything that " +
  "brings people past the door on a weekday helps,\u201d said the owner of a bakery on the corner.",
  "Analysts pointed out that similar projects in other cities took longer than promised but " +
  "ended up carrying more passengers than forecast within five years of opening.",
  "Readers can follow the story as it develops; we will update this page as new details emerge.",
];

function readerId() {
  const key = "gavel-demo-user";
  let id = localStorage.getItem(key);
  if (!id) {
    id = "demo-" + Math.random().toString(16).slice(2, 10);
    localStorage.setItem(key, id);
  }
  return id;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function isMobile() {
  return window.matchMedia("(max-width: 767px)").matches;
}

// Where a slot goes: leaderboards and billboards on top, tall units in the rail, mobile banners
// in the footer, "inline" slots inside the article, other rectangles in the rail.
function regionOf(slot) {
  if (slot.w >= 728) return "top";
  if (slot.h >= 600) return "rail";
  if (slot.w <= 320 && slot.h <= 100) return "footer";
  if (slot.id.includes("inline")) return "inline";
  return "rail";
}

function renderArticle(site) {
  const tier1 = (site.cat[0] || "").split("-")[0];
  const [kicker, headline, lede, second] = ARTICLES[tier1] || GENERIC;
  document.title = `${headline} \u2014 ${site.name}`;
  document.getElementById("brand").textContent = site.name;
  document.getElementById("kicker").textContent = kicker;
  document.getElementById("headline").textContent = headline;
  document.getElementById("byline").textContent =
    `By the ${site.name} staff \u00b7 ${new Date().toDateString()} \u00b7 ${site.domain}`;
  const body = document.getElementById("body");
  body.append(el("p", { class: "lede" }, lede), el("p", {}, second));
  body.append(el("div", { class: "inline-ad", id: "region-inline" }));
  for (const text of FILLER) body.append(el("p", {}, text));
  const nav = document.getElementById("sections");
  for (const name of ["Latest", kicker, "Opinion", "Video"]) {
    nav.append(el("a", { href: "#" }, name));
  }
}

function slotElement(slot) {
  const box = el("div", {
    class: "ad-slot", "data-slot": slot.id, "data-state": "loading", "data-impression": "0",
  });
  box.style.width = `${slot.w}px`;
  const frame = el("div", { class: "ad-frame" });
  frame.style.width = `${slot.w}px`;
  frame.style.height = `${slot.h}px`;
  box.append(el("div", { class: "ad-label" }, "Advertisement"), frame, el("div", { class: "ad-meta" }));
  return box;
}

async function beacon(url) {
  const resp = await fetch(url, { method: "GET", keepalive: true, cache: "no-store" });
  return resp.ok;
}

// The creative's markup as a document of its own, without the browser's default body margin.
function creativeDocument(adm) {
  return '<!doctype html><html><head><meta charset="utf-8"><style>' +
    "html,body{margin:0;padding:0;overflow:hidden;background:transparent}</style></head>" +
    `<body>${adm}</body></html>`;
}

function render(box, ad) {
  const frame = box.querySelector(".ad-frame");
  frame.style.width = `${ad.w}px`;
  frame.style.height = `${ad.h}px`;
  const iframe = el("iframe", {
    sandbox: "allow-popups allow-popups-to-escape-sandbox",
    width: String(ad.w), height: String(ad.h), scrolling: "no",
    title: `Advertisement from ${(ad.adomain || [])[0] || ad.bidder}`,
  });
  iframe.addEventListener("load", async () => {
    box.dataset.state = "filled";
    try {
      box.dataset.impression = (await beacon(ad.impression_url)) ? "1" : "failed";
    } catch (err) {
      box.dataset.impression = "failed";
    }
    showStatus();
  }, { once: true });
  if (ad.adm) iframe.srcdoc = creativeDocument(ad.adm); else iframe.src = ad.markup_url;
  // A sandboxed creative cannot script its parent: the click is caught by a transparent overlay.
  const overlay = el("a", { class: "ad-click", href: "#", "aria-label": "Open the ad" });
  overlay.addEventListener("click", async (event) => {
    event.preventDefault();
    if (box.dataset.clicked) return;
    box.dataset.clicked = "pending";
    try {
      box.dataset.clicked = (await beacon(ad.click_url)) ? "1" : "failed";
    } catch (err) {
      box.dataset.clicked = "failed";
    }
    showStatus();
    const landing = (ad.adomain || [])[0];
    box.querySelector(".ad-meta").textContent =
      `clicked \u2713 ${landing ? `(would open https://${landing})` : ""}`;
  });
  frame.append(iframe, overlay);
  const cpm = Number(ad.price).toFixed(2);
  box.querySelector(".ad-meta").textContent =
    `${ad.bidder} \u00b7 $${cpm} CPM \u00b7 ${(ad.adomain || []).join(", ") || ad.crid || ""}`;
}

function showStatus() {
  const count = (selector) => document.querySelectorAll(selector).length;
  document.getElementById("status").textContent =
    `slots ${count(".ad-slot")}, filled ${count('.ad-slot[data-state="filled"]')}, ` +
    `impressions ${count('.ad-slot[data-impression="1"]')}, ` +
    `clicks ${count('.ad-slot[data-clicked="1"]')} (reader ${readerId()})`;
}

async function fill(site, slot, box, reader, segments) {
  const body = {
    site: site.id, slot: slot.id, page: site.page, user: reader,
    device: {
      ua: navigator.userAgent, devicetype: isMobile() ? 4 : 2,
      lang: (navigator.language || "en").slice(0, 2),
    },
    ts: Date.now() / 1000,
  };
  if (segments.length) body.segments = segments;
  try {
    const resp = await fetch("/ad", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (resp.status === 204) {
      box.dataset.state = "empty";
    } else if (resp.ok) {
      render(box, await resp.json());
    } else {
      box.dataset.state = "error";
      box.querySelector(".ad-meta").textContent = `HTTP ${resp.status}: ${await resp.text()}`;
    }
  } catch (err) {
    box.dataset.state = "error";
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  const status = document.getElementById("status");
  const { sites } = await (await fetch("/demo/sites")).json();
  if (!sites.length) {
    status.textContent = "this SSP has no sites in its catalog";
    return;
  }
  const site = sites.find((s) => s.id === params.get("site")) || sites[0];
  const picker = document.getElementById("site-picker");
  for (const s of sites) {
    const option = el("option", { value: s.id }, s.name);
    if (s.id === site.id) option.selected = true;
    picker.append(option);
  }
  picker.addEventListener("change", () => {
    params.set("site", picker.value);
    location.search = params.toString();
  });
  renderArticle(site);
  const layout = isMobile() ? "mobile" : "desktop";
  // above the fold (pos 1) before the rest, as a page lays them out
  const rank = (slot) => (slot.pos === 1 ? 0 : slot.pos === 3 ? 2 : 1);
  const slots = site.slots
    .filter((s) => s.device === "any" || s.device === layout)
    .sort((a, b) => rank(a) - rank(b));
  const reader = readerId();
  const segments = (params.get("segments") || "").split(",").filter(Boolean);
  const jobs = slots.map((slot) => {
    const box = slotElement(slot);
    document.getElementById(`region-${regionOf(slot)}`).append(box);
    return fill(site, slot, box, reader, segments);
  });
  document.body.dataset.slots = String(slots.length);
  await Promise.all(jobs);
  showStatus();
  document.body.dataset.ready = "1";
}

main();
