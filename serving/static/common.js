// RecOps demo pages: what the storefront and the operations page share (DOM building, API calls,
// number formats). Plain browser JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

const RecOps = (() => {
  const SVG_NS = "http://www.w3.org/2000/svg";

  // el("p", {class: "x", "data-id": 3}, "text", child): an element with attributes and children
  // (strings become text nodes: nothing is ever parsed as HTML).
  function build(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else {
        node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const el = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

  // fetch JSON from this origin with a bearer token; throws an Error with .status on a non-2xx.
  async function api(path, { token, method = "GET", body, params } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [key, value] of Object.entries(params || {})) {
      for (const one of [].concat(value)) {
        if (one !== null && one !== undefined && one !== "") url.searchParams.append(key, one);
      }
    }
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), keepalive: method !== "GET",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(typeof data.detail === "string" ? data.detail : `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function setStatus(node, message, isError = false) {
    node.textContent = message || "";
    node.classList.toggle("error", Boolean(isError));
  }

  const money = new Intl.NumberFormat("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const count = new Intl.NumberFormat("en");
  const formats = {
    price: (v) => (v === null || v === undefined ? "" : money.format(v)),
    count: (v) => (v === null || v === undefined ? "–" : count.format(v)),
    percent: (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(2)}%`),
    ms: (v) => (v === null || v === undefined ? "–" : `${v.toFixed(1)} ms`),
    // "2026-04-01T09:30:12.5+00:00" -> "2026-04-01 09:30 UTC" (the API speaks UTC)
    when: (iso) => (iso ? `${String(iso).replace("T", " ").slice(0, 16)} UTC` : "–"),
  };

  return { el, svg, api, setStatus, formats };
})();
