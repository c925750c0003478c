// The operations page: asks for an admin token (kept in this tab's sessionStorage), reads
// /ops/data and draws the served versions, the online metrics per day, what this service has
// served since it started, the recent pipeline runs with their gate results, and links.
"use strict";

(() => {
  const { el, api, setStatus, formats } = RecOps;
  const { lineChart, PALETTE } = RecOpsCharts;
  const KEY = "recops.adminToken";
  const $ = (id) => document.getElementById(id);
  const status = $("status");
  const CHARTS = [
    { metric: "impressions", column: "count_impressions", title: "Impressions", format: formats.count },
    { metric: "ctr", column: "ctr_rate", title: "CTR", format: formats.percent },
    { metric: "add_to_cart_rate", column: "add_to_cart_rate", title: "Add-to-cart rate", format: formats.percent },
    { metric: "conversion", column: "conversion_rate", title: "Conversion", format: formats.percent },
    { metric: "cold_start_share", column: "fallback_share_rate", title: "Cold-start share", format: formats.percent },
  ];

  const link = (href, text) => el("a", { href, target: "_blank", rel: "noopener noreferrer" }, text);
  const badge = (value) => (value ? el("span", { class: `badge ${value}` }, value) : "–");

  function panel(title, ...children) {
    return el("section", { class: "panel" }, el("h3", {}, title), ...children);
  }

  function drawServed(served, runs) {
    const aliases = {};
    for (const run of runs || []) for (const alias of run.aliases) aliases[alias] = run.version;
    const describe = (alias) => {
      const model = served[alias];
      if (!model) {
        const registered = aliases[alias];
        return [el("p", { class: "figure" }, registered ? `v${registered}` : "none"),
          el("p", { class: "muted" }, registered ? "registered, not serving (no challenger traffic)" : "no version has this alias")];
      }
      return [el("p", { class: "figure", "data-alias": alias }, `v${model.version}`),
        el("p", { class: "muted" }, `data up to ${formats.when(model.as_of)}; published ${formats.when(model.published_at)}; `
          + `loaded here ${formats.when(model.loaded_at)}`)];
    };
    const share = served.challenger_traffic;
    $("served").replaceChildren(
      panel("Champion", ...describe("champion")),
      panel(`Challenger (${formats.percent(share)} of users)`, ...describe("challenger")),
      panel("Previous champion", el("p", { class: "figure" }, aliases.previous ? `v${aliases.previous}` : "none"),
        el("p", { class: "muted" }, "what `recops rollback` goes back to")),
    );
  }

  function drawCharts(online) {
    if (online.error) {
      $("charts").replaceChildren(el("p", { class: "status error" }, `Online metrics unavailable: ${online.error}`));
      $("legend").replaceChildren();
      return;
    }
    const rows = online.data.daily;
    if (!rows.length) {
      $("charts").replaceChildren(el("p", { class: "muted" },
        "No served traffic in the marts yet: the next pipeline run (or recops_monitor) ingests the API's logs."));
      $("legend").replaceChildren();
      return;
    }
    const days = [...new Set(rows.map((r) => r.served_date))].sort();
    const names = [...new Set(rows.map((r) => `v${r.model_version} ${r.variant}`))].sort();
    const color = Object.fromEntries(names.map((name, i) => [name, PALETTE[i % PALETTE.length]]));
    $("legend").replaceChildren(...names.map((name) => {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = color[name];
      return el("span", {}, swatch, name);
    }));
    const panels = CHARTS.map(({ title }) => panel(title));
    $("charts").replaceChildren(...panels);
    CHARTS.forEach(({ metric, column, title, format }, i) => {
      const series = names.map((name) => ({ name, color: color[name], values: {} }));
      for (const r of rows) {
        series[names.indexOf(`v${r.model_version} ${r.variant}`)].values[r.served_date] = r[column];
      }
      const width = panels[i].querySelector("h3").clientWidth; // the panel's inner width, now laid out
      panels[i].append(lineChart({ metric, title, days, series, format, width }));
    });
  }

  function drawLive(live) {
    const { responses, latency } = live;
    const kinds = Object.entries(responses.by_kind).map(([kind, n]) => `${kind} ${formats.count(n)}`).join(" · ");
    const table = el("table", { id: "latency" },
      el("thead", {}, el("tr", {}, el("th", {}, "route"), el("th", { class: "num" }, "requests"),
        el("th", { class: "num" }, "p50"), el("th", { class: "num" }, "p90"), el("th", { class: "num" }, "p99"))),
      el("tbody", {}, latency.map((r) => el("tr", { "data-route": r.route },
        el("td", {}, `${r.method} ${r.route}`), el("td", { class: "num" }, formats.count(r.requests)),
        el("td", { class: "num" }, formats.ms(r.p50_ms)), el("td", { class: "num" }, formats.ms(r.p90_ms)),
        el("td", { class: "num" }, formats.ms(r.p99_ms))))));
    $("live").replaceChildren(
      panel("Cold-start responses",
        el("p", { class: "figure", id: "live-cold-share" }, formats.percent(responses.cold_start_share)),
        el("p", { class: "muted" }, `${formats.count(responses.total)} ranked lists: ${kinds || "none yet"}`)),
      panel("Latency percentiles", el("div", { class: "table-wrap" }, table)),
    );
  }

  function drawRuns(runs) {
    if (runs.error) {
      $("runs").replaceChildren(el("p", { class: "status error" }, `Registry unavailable: ${runs.error}`));
      return;
    }
    const head = ["version", "registered", "aliases", "cutoff", "dbt", "GX", "gate", "decision", "NDCG@10", "links"];
    const body = runs.data.map((r) => el("tr", { "data-version": r.version },
      el("td", {}, `v${r.version}`), el("td", {}, formats.when(r.registered_at)), el("td", {}, r.aliases.join(", ") || "–"),
      el("td", {}, r.cutoff || "–"), el("td", {}, badge(r.dbt)), el("td", {}, badge(r.gx)),
      el("td", { title: r.gate_reason || "" }, badge(r.gate)),
      el("td", { title: r.decision_reason || "" }, badge(r.decision), el("div", { class: "muted" }, r.decision_reason || "")),
      el("td", { class: "num" }, r.ndcg_at_10 === null ? "–" : r.ndcg_at_10.toFixed(4)),
      el("td", {}, el("div", { class: "links" },
        r.links.airflow_run ? link(r.links.airflow_run, "Airflow run") : el("span", { class: "muted" }, "no Airflow run"),
        r.links.run ? link(r.links.run, "MLflow run") : null,
        r.links.model_version ? link(r.links.model_version, "model version") : null))));
    $("runs").replaceChildren(runs.data.length
      ? el("table", { id: "runs-table" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))), el("tbody", {}, body))
      : el("p", { class: "muted" }, "No version registered yet."));
  }

  function drawLinks(links) {
    const docs = /^https?:/.test(links.data_docs)
      ? link(links.data_docs, "Data Docs")
      : el("span", {}, "Data Docs (open on the host): ", el("code", { class: "path" }, links.data_docs));
    $("links").replaceChildren(link(links.airflow, "Airflow: recops_pipeline"), link(links.mlflow, "MLflow: registered model"), docs);
  }

  async function load() {
    const token = window.sessionStorage.getItem(KEY);
    $("dashboard").hidden = !token;
    $("reload").hidden = !token;
    if (!token) {
      setStatus(status, "Paste an admin token (recops serve prints the embedded one) and press Open.");
      return;
    }
    setStatus(status, "Loading…");
    try {
      const data = await api("/ops/data", { token });
      drawServed(data.served, data.runs.data);
      drawCharts(data.online);
      drawLive(data.live);
      drawRuns(data.runs);
      drawLinks(data.links);
      document.body.dataset.loaded = data.generated_at;
      setStatus(status, `${data.model_name}: figures as of ${formats.when(data.generated_at)}`);
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        window.sessionStorage.removeItem(KEY);
        $("dashboard").hidden = true;
        setStatus(status, `${error.message}: this page needs a token with the admin scope.`, true);
      } else {
        setStatus(status, `Could not load the figures: ${error.message}`, true);
      }
    }
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    if (token) window.sessionStorage.setItem(KEY, token);
    load();
  });
  $("forget").addEventListener("click", () => {
    window.sessionStorage.removeItem(KEY);
    load();
  });
  $("reload").addEventListener("click", load);
  document.body.dataset.ready = "true";
  load();
})();
