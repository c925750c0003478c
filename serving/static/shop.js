// The demo storefront: a shopper (known or new), their "Recommended for you" row, product pages
// with "Customers also bought" and "Recommended with this". Clicking a card posts a `click`,
// "Add to cart" an `add_to_cart`, each with the request id and rank of the list it came from,
// as a shop's front end would. The served-list log counts impressions: the page posts none.
"use strict";

(() => {
  const { el, api, setStatus, formats } = RecOps;
  const token = document.querySelector('meta[name="recops-web-token"]').content;
  const saved = window.sessionStorage;
  const $ = (id) => document.getElementById(id);
  const status = $("status");
  const K = 10;
  const USER_ID = /^[A-Za-z0-9_.:@-]{1,64}$/;
  let drawing = 0; // the newest view being drawn: older answers are dropped

  function newId(prefix) {
    const bytes = crypto.getRandomValues(new Uint8Array(4));
    return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }

  const load = (key, fallback) => JSON.parse(saved.getItem(key) || "null") ?? fallback;
  const state = {
    shopper: load("recops.shopper", null),
    session: load("recops.session", null) || newId("session"),
    cart: load("recops.cart", []),
    items: load("recops.items", {}), // item id -> what the shopper saw of it (title, price, list)
  };

  function save() {
    for (const key of ["shopper", "session", "cart", "items"]) {
      saved.setItem(`recops.${key}`, JSON.stringify(state[key]));
    }
  }

  function setShopper(id) {
    state.shopper = id;
    $("shopper").value = id;
    save();
  }

  function showCart() {
    const n = state.cart.length;
    $("cart").textContent = `Cart: ${n} item${n === 1 ? "" : "s"}`;
  }

  const capitalise = (text) => text.charAt(0).toUpperCase() + text.slice(1);

  function thumb(item) {
    const name = item.title || item.item_id;
    const letters = name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
    let hash = 0;
    for (const ch of item.item_id) hash = (hash * 31 + ch.charCodeAt(0)) % 360;
    const node = el("div", { class: "thumb", "aria-hidden": "true" }, letters);
    node.style.background = `hsl(${hash} 42% 46%)`;
    return node;
  }

  function remember(item, response) {
    state.items[item.item_id] = {
      item_id: item.item_id, title: item.title, price_amount: item.price_amount,
      request_id: response ? response.request_id : null, rank: response ? item.rank : null,
    };
    save();
  }

  async function feedback(eventType, item, extra = {}) {
    const event = { user_id: state.shopper, item_id: item.item_id, event_type: eventType, session_id: state.session, ...extra };
    if (item.request_id) Object.assign(event, { request_id: item.request_id, rank: item.rank });
    return api("/feedback", { token, method: "POST", body: { events: [event] } });
  }

  async function addToCart(item, button) {
    button.disabled = true;
    try {
      await feedback("add_to_cart", item, { quantity: 1, price_amount: item.price_amount });
      state.cart.push(item.item_id);
      save();
      showCart();
      button.textContent = "In your cart";
      button.classList.add("added");
      setStatus(status, `Added ${item.title || item.item_id} to your cart.`);
    } catch (error) {
      button.disabled = false;
      setStatus(status, `Could not add to the cart: ${error.message}`, true);
    }
  }

  async function openProduct(item) {
    try {
      await feedback("click", item);
    } catch (error) {
      setStatus(status, `Click not recorded: ${error.message}`, true);
    }
    window.location.hash = `#/item/${encodeURIComponent(item.item_id)}`;
  }

  function card(item, response) {
    const seen = { ...item, request_id: response.request_id };
    const add = el("button", { type: "button", class: "add" }, "Add to cart");
    add.addEventListener("click", () => addToCart(seen, add));
    if (state.cart.includes(item.item_id)) {
      add.textContent = "In your cart";
      add.classList.add("added");
      add.disabled = true;
    }
    const link = el("a", { href: `#/item/${encodeURIComponent(item.item_id)}`, class: "card-link" },
      thumb(item), el("h3", { class: "title" }, item.title || item.item_id));
    link.addEventListener("click", (event) => {
      event.preventDefault();
      remember(item, response);
      openProduct(seen);
    });
    return el("article", { class: "card", "data-item-id": item.item_id, "data-rank": item.rank, "data-request-id": response.request_id },
      link,
      el("p", { class: "price" }, formats.price(item.price_amount)),
      el("ul", { class: "reasons" }, (item.reasons || []).map((reason) => el("li", {}, capitalise(reason)))),
      el("span", { class: "rank" }, `#${item.rank}`),
      add);
  }

  // Ask the API for a list and draw it as a row of cards (unless a newer view started meanwhile).
  async function fillRow(node, view, ask) {
    node.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    node.removeAttribute("data-request-id");
    try {
      const response = await ask();
      if (view !== drawing) return null;
      node.replaceChildren(...response.items.map((item) => card(item, response)));
      if (!response.items.length) node.replaceChildren(el("p", { class: "muted" }, "Nothing to show here yet."));
      node.dataset.requestId = response.request_id;
      return response;
    } catch (error) {
      if (view === drawing) node.replaceChildren(el("p", { class: "status error" }, error.message));
      return null;
    }
  }

  async function showHome(view) {
    $("home-view").hidden = false;
    $("product-view").hidden = true;
    const path = `/recommendations/${encodeURIComponent(state.shopper)}`;
    const response = await fillRow($("for-you"), view, () => api(path, { token, params: { k: K, exclude: state.cart.slice(-100) } }));
    if (response) {
      $("for-you-title").textContent = response.fallback ? "Popular right now (we do not know you yet)" : "Recommended for you";
    }
  }

  async function showProduct(view, itemId) {
    $("home-view").hidden = true;
    $("product-view").hidden = false;
    const item = state.items[itemId] || { item_id: itemId, title: null, price_amount: null };
    const add = el("button", { type: "button", class: "add" }, "Add to cart");
    add.addEventListener("click", () => addToCart(item, add));
    $("product").replaceChildren(thumb(item), el("div", {},
      el("h1", { class: "title" }, item.title || itemId),
      el("p", { class: "price" }, formats.price(item.price_amount)),
      el("p", { class: "muted" }, `Item ${itemId}`),
      add));
    const id = encodeURIComponent(itemId);
    const exclude = [...state.cart.slice(-99)];
    const [, withThis] = await Promise.all([
      fillRow($("also-bought"), view, () => api(`/items/${id}/similar`, { token, params: { k: K, exclude } })),
      fillRow($("with-this"), view, () => api(`/recommendations/${encodeURIComponent(state.shopper)}`,
        { token, params: { k: K, item_id: itemId, exclude: [itemId, ...exclude] } })),
    ]);
    if (withThis) $("with-this-title").textContent = withThis.fallback ? "Recommended with this" : "More for you";
  }

  async function route() {
    drawing += 1;
    const view = drawing;
    const match = window.location.hash.match(/^#\/item\/(.+)$/);
    setStatus(status, "");
    if (match) await showProduct(view, decodeURIComponent(match[1]));
    else await showHome(view);
  }

  function go(shopper) {
    setShopper(shopper);
    if (window.location.hash === "#/" || window.location.hash === "") route();
    else window.location.hash = "#/";
  }

  async function knownShoppers() {
    try {
      const { users } = await api("/shop/users", { token });
      $("known-users").replaceChildren(...users.map((u) => el("option", { value: u })));
      for (const user of users) {
        const chip = el("button", { type: "button", class: "secondary", "data-user": user }, user);
        chip.addEventListener("click", () => go(user));
        $("known").append(chip);
      }
      if (!users.length) $("known").append(el("span", { class: "muted" }, "none listed: type a user id"));
    } catch (error) {
      $("known").append(el("span", { class: "status error" }, error.message));
    }
  }

  $("who").addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = $("shopper").value.trim();
    if (!USER_ID.test(typed)) {
      setStatus(status, "A user id is 1 to 64 letters, digits or _ . : @ -", true);
      return;
    }
    go(typed);
  });
  $("new-visitor").addEventListener("click", () => go(newId("visitor")));
  window.addEventListener("hashchange", route);

  const asked = new URLSearchParams(window.location.search).get("user");
  setShopper(asked && USER_ID.test(asked) ? asked : state.shopper || newId("visitor"));
  showCart();
  document.body.dataset.ready = "true";
  knownShoppers();
  route();
})();
