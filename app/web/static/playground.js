// lstm-serve playground: plain DOM and SVG, no libraries, nothing loaded from elsewhere.
// Every panel calls the public REST API exactly as a client would, and shows the API's own words
// when it refuses a request.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

const EXAMPLES = {
  sentiment: [
    "A smart, funny and moving film: the two leads are wonderful, and the ending stayed with me for days.",
    "Two hours I will never get back. The plot made no sense, the dialogue was wooden and the jokes fell flat.",
    "The first half drags and the villain is a cliche, but the final act is gripping and beautifully shot.",
  ],
  ner: [
    "Hewlett-Packard Co said on Monday it would buy a stake in Rolls-Royce, after Angela Merkel met " +
      "Emmanuel Macron in Paris to discuss the European Union budget.",
    "Manchester United beat Juventus 2-1 at Old Trafford on Wednesday, with goals from Wayne Rooney and " +
      "Cristiano Ronaldo.",
    "The United Nations Security Council met in New York as Kofi Annan urged Russia and the United States " +
      "to agree on Iraq.",
  ],
};

// Box & Jenkins' monthly international airline passengers (thousands), 1949-1960.
const AIRLINE = [
  112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118, 115, 126, 141, 135, 125, 149, 170, 170, 158, 133,
  114, 140, 145, 150, 178, 163, 172, 178, 199, 199, 184, 162, 146, 166, 171, 180, 193, 181, 183, 218, 230, 242,
  209, 191, 172, 194, 196, 196, 236, 235, 229, 243, 264, 272, 237, 211, 180, 201, 204, 188, 235, 227, 234, 264,
  302, 293, 259, 229, 203, 229, 242, 233, 267, 269, 270, 315, 364, 347, 312, 274, 237, 278, 284, 277, 317, 313,
  318, 374, 413, 405, 355, 306, 271, 306, 315, 301, 356, 348, 355, 422, 465, 467, 404, 347, 305, 336, 340, 318,
  362, 348, 363, 435, 491, 505, 404, 359, 310, 337, 360, 342, 406, 396, 420, 472, 548, 559, 463, 407, 362, 405,
  417, 391, 419, 461, 472, 535, 622, 606, 508, 461, 390, 432,
];

function forecastExample(name) {
  if (name === "airline") {
    const lines = AIRLINE.map((v, i) => {
      const year = 1949 + Math.floor(i / 12);
      const month = String((i % 12) + 1).padStart(2, "0");
      return `${year}-${month}-01,${v}`;
    });
    return { text: lines.join("\n"), horizon: 24, frequency: "MS" };
  }
  if (name === "weekly") {
    // Deterministic: a slow trend, a weekly cycle and a little pseudo-random noise.
    const values = [];
    let seed = 7;
    for (let i = 0; i < 140; i++) {
      seed = (seed * 16807) % 2147483647;
      const noise = (seed / 2147483647 - 0.5) * 6;
      const weekly = [0, 4, 6, 5, 3, -8, -10][i % 7];
      values.push((100 + 0.15 * i + weekly * 1.5 + noise).toFixed(1));
    }
    return { text: values.join(", "), horizon: 21, frequency: "" };
  }
  return null;
}

// ---------------------------------------------------------------- talking to the API

class ApiError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

// A problem with what was typed, found before anything is sent.
class InputError extends Error {}

function apiHeaders(json) {
  const headers = {};
  if (json) headers["Content-Type"] = "application/json";
  const key = $("api-key").value.trim();
  if (key) headers["X-API-Key"] = key;
  return headers;
}

async function readBody(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function post(path, body) {
  const response = await fetch(path, { method: "POST", headers: apiHeaders(true), body: JSON.stringify(body) });
  const data = await readBody(response);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

async function get(path) {
  const response = await fetch(path, { headers: apiHeaders(false) });
  const data = await readBody(response);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// The API's own wording: a string `detail`, or FastAPI's list of {loc, msg} for a 422.
function showError(box, error) {
  box.replaceChildren();
  if (error instanceof ApiError) {
    const body = error.body;
    box.append(el("strong", {}, `The API answered ${error.status}`));
    const detail = body && typeof body === "object" ? body.detail : body;
    if (Array.isArray(detail)) {
      const list = el("ul");
      for (const item of detail) {
        const where = Array.isArray(item.loc) ? item.loc.join(" \u203a ") : "";
        const li = el("li");
        if (where) li.append(el("code", {}, where), ": ");
        li.append(String(item.msg ?? JSON.stringify(item)));
        list.append(li);
      }
      box.append(list);
    } else {
      box.append(el("div", { class: "detail" }, typeof detail === "string" ? detail : JSON.stringify(detail)));
    }
    if (body && typeof body === "object" && body.request_id) {
      box.append(el("div", { class: "meta" }, `request id ${body.request_id}`));
    }
  } else if (error instanceof InputError) {
    box.append(el("strong", {}, "Not sent"), error.message);
  } else {
    box.append(el("strong", {}, "The request did not reach the service"), String(error.message || error));
  }
  box.hidden = false;
}

async function run(panel, action) {
  const section = $(`${panel}-panel`);
  const button = $(`${panel}-run`);
  const errorBox = $(`${panel}-error`);
  button.disabled = true;
  errorBox.hidden = true;
  section.dataset.state = "busy";
  try {
    await action();
    section.dataset.state = "done";
  } catch (error) {
    $(`${panel}-result`).hidden = true;
    showError(errorBox, error);
    section.dataset.state = "error";
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- models and readiness

// GET /models: every served model, each task's default, and what each endpoint's `model` accepts.
const served = { models: [], defaults: {} };

// The model chosen in a panel's select: its key (name@version), or undefined for the default.
function chosenModel(task) {
  const select = document.querySelector(`.model-select[data-task=${task}]`);
  return select && select.value ? select.value : undefined;
}

function modelInfo(task) {
  const key = chosenModel(task) || served.defaults[task];
  return served.models.find((m) => m.key === key);
}

function describeModel(p) {
  const info = modelInfo(p.dataset.model);
  if (!info) {
    p.textContent = "not served by this instance";
    return;
  }
  const arch = info.manifest.architecture || {};
  const runtime = [info.backend, info.device].filter(Boolean).join(" on ");
  const headline = info.headline ? `${info.headline.metric} ${info.headline.value.toFixed(3)}` : "";
  const labels = info.labels.length ? `${info.task === "ner" ? "types" : "labels"}: ${info.labels.join(", ")}` : "";
  p.textContent = [`${info.name} ${info.version}`, arch.summary, headline, labels, runtime]
    .filter(Boolean)
    .join(" \u00b7 ");
}

// A select of the task's served models before its info line, where it serves more than one.
function modelSelect(p) {
  const task = p.dataset.model;
  const choices = served.models.filter((m) => m.task === task);
  let select = document.querySelector(`.model-select[data-task=${task}]`);
  if (choices.length < 2) {
    if (select) select.remove();
    return;
  }
  if (!select) {
    select = el("select", { class: "model-select", "data-task": task, "aria-label": `${task} model` });
    select.addEventListener("change", () => describeModel(p));
    p.before(select);
  }
  select.replaceChildren(
    ...choices.map((m) => {
      const option = el("option", { value: m.key }, `${m.name} ${m.version}${m.default ? " (default)" : ""}`);
      option.selected = m.key === served.defaults[task];
      return option;
    }),
  );
}

async function loadModels() {
  try {
    const ready = await get("readyz");
    $("service-status").textContent = `ready: ${(ready.models || []).join(", ")}`;
    $("service-status").className = "status ok";
  } catch (error) {
    $("service-status").textContent = error instanceof ApiError ? `not ready (${error.status})` : "unreachable";
    $("service-status").className = "status bad";
  }
  try {
    Object.assign(served, await get("models"));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      for (const p of document.querySelectorAll(".model-info")) p.textContent = "enter the API key to see the model";
    }
    return;
  }
  for (const p of document.querySelectorAll(".model-info")) {
    modelSelect(p);
    describeModel(p);
  }
}

// Ask for attention only where the chosen model has an attention head (the API refuses otherwise).
function sentimentHasAttention() {
  const info = modelInfo("sentiment");
  const arch = info && info.manifest && info.manifest.architecture;
  return !arch || arch.head === undefined || arch.head === "attention";
}

// ---------------------------------------------------------------- sentiment

async function runSentiment() {
  const text = $("sentiment-text").value;
  const data = await post("sentiment", {
    texts: [text],
    return_attention: sentimentHasAttention(),
    model: chosenModel("sentiment"),
  });
  const pred = data.predictions[0];
  const label = $("sentiment-label");
  label.textContent = pred.label;
  label.className = `label-badge ${pred.label}`;
  const bars = $("sentiment-probs");
  bars.replaceChildren();
  const probs = Object.entries(pred.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [name, p] of probs) {
    const fill = el("div", { class: "prob-fill", style: `width:${(100 * p).toFixed(1)}%` });
    bars.append(
      el("div", { class: `prob-row ${name}` }, el("span", {}, name), el("div", { class: "prob-track" }, fill),
        el("span", {}, `${(100 * p).toFixed(1)}%`)),
    );
  }
  const meta = [`${pred.tokens} tokens`];
  if (pred.truncated) meta.push(`longer than the model's ${data.max_length}: it read the head and the tail`);
  meta.push(`${data.model} ${data.version}`);
  $("sentiment-meta").textContent = meta.join(" \u00b7 ");
  const box = $("sentiment-attention");
  box.replaceChildren();
  if (Array.isArray(pred.attention) && pred.attention.length) {
    const max = Math.max(...pred.attention.map((t) => t.weight)) || 1;
    pred.attention.forEach((t, i) => {
      // A truncated review is read as head + tail: mark the cut.
      if (pred.truncated && i === Math.floor(pred.attention.length / 2)) box.append(el("span", { class: "gap" }, "\u2026"));
      const alpha = Math.max(0, t.weight / max);
      if (i) box.append(" ");  // a break opportunity between tokens
      box.append(
        el("span", {
          class: "tok",
          style: `background: rgba(224, 122, 31, ${alpha.toFixed(3)})`,
          title: `attention ${t.weight.toFixed(4)}`,
          "data-weight": String(t.weight),
        }, t.token),
      );
    });
  } else {
    box.append(el("span", { class: "meta" }, "This model has no attention head, so there are no weights to show."));
  }
  $("sentiment-result").hidden = false;
}

// ---------------------------------------------------------------- named entities

// The chosen model's entity types, as GET /models lists them: a model trained on your own data
// has its own.
function nerTypes() {
  const info = modelInfo("ner");
  return info && info.labels.length ? info.labels : ["PER", "ORG", "LOC", "MISC"];
}

async function runNer() {
  const text = $("ner-text").value;
  const data = await post("ner", { texts: [text], model: chosenModel("ner") });
  const result = data.results[0];
  const marked = $("ner-marked");
  marked.replaceChildren();
  let pos = 0;
  const entities = [...result.entities].sort((a, b) => a.start - b.start);
  for (const e of entities) {
    if (e.start < pos) continue;
    marked.append(text.slice(pos, e.start));
    const conf = `${e.label} \u00b7 confidence ${(100 * e.confidence).toFixed(1)}%`;
    marked.append(el("mark", { class: `ent ent-${e.label}`, "data-label": e.label, title: conf }, text.slice(e.start, e.end)));
    pos = e.end;
  }
  marked.append(text.slice(pos));
  const legend = $("ner-legend");
  legend.replaceChildren();
  for (const type of nerTypes()) {
    legend.append(el("span", {}, el("span", { class: `swatch ${type}` }), type));
  }
  legend.append(el("span", {}, entities.length ? `${entities.length} entities` : "no entities found"));
  const body = $("ner-table").querySelector("tbody");
  body.replaceChildren();
  for (const e of entities) {
    body.append(
      el("tr", {}, el("td", {}, e.text), el("td", {}, e.label), el("td", {}, `${e.start}\u2013${e.end}`),
        el("td", {}, `${(100 * e.confidence).toFixed(1)}%`)),
    );
  }
  $("ner-table").hidden = entities.length === 0;
  $("ner-result").hidden = false;
}

// ---------------------------------------------------------------- forecast

// "1, 2 3\n4" or "2020-01-01,5\n2020-02-01,6": values, and timestamps when every line has one.
function parseSeries(text) {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (!lines.length) throw new InputError("Paste a series first (or pick an example).");
  const pairs = lines.map((l) => l.split(/\s*[,;\t]\s*/));
  const dated = pairs.every((p) => p.length === 2 && Number.isNaN(Number(p[0])) && p[0] !== "");
  if (dated) {
    return {
      timestamps: pairs.map((p) => p[0]),
      values: pairs.map((p, i) => toNumber(p[1], `line ${i + 1}`)),
    };
  }
  const tokens = lines.join(" ").split(/[\s,;]+/).filter(Boolean);
  return { timestamps: null, values: tokens.map((t, i) => toNumber(t, `value ${i + 1}`)) };
}

function toNumber(token, where) {
  const value = Number(token);
  if (token.trim() === "" || !Number.isFinite(value)) throw new InputError(`${where}: "${token}" is not a number.`);
  return value;
}

async function runForecast() {
  const series = parseSeries($("forecast-values").value);
  // Sent as typed: the API checks the horizon and the frequency and says what is wrong.
  const horizonText = $("forecast-horizon").value.trim();
  const item = { values: series.values, horizon: horizonText === "" ? 12 : Number(horizonText) };
  const frequency = $("forecast-frequency").value.trim();
  if (frequency) item.frequency = frequency;
  if (series.timestamps) item.timestamps = series.timestamps;
  const data = await post("forecast", { series: [item], levels: [80, 95], model: chosenModel("forecast") });
  const forecast = data.forecasts[0];
  drawForecast($("forecast-plot"), series, forecast);
  showFacts(data, forecast);
  $("forecast-result").hidden = false;
}

const BAND_COLOURS = { 95: "rgba(224, 122, 31, 0.16)", 80: "rgba(224, 122, 31, 0.32)" };

function bandColour(level) {
  return BAND_COLOURS[level] || `rgba(224, 122, 31, ${(0.45 - level / 300).toFixed(2)})`;
}

function niceTicks(lo, hi, count) {
  const span = hi - lo;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function shortTime(label) {
  // ISO dates: drop a midnight time; keep hours and minutes otherwise.
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?)?/.exec(String(label));
  if (!m) return String(label);
  return !m[2] || m[2] === "00:00" ? m[1] : `${m[1]} ${m[2]}`;
}

function formatValue(v) {
  const abs = Math.abs(v);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(5)).toLocaleString("en-US");
}

function drawForecast(plot, series, fc) {
  const W = 900, H = 360, M = { l: 64, r: 20, t: 18, b: 46 };
  const history = series.values;
  const n = history.length, h = fc.point.length;
  const total = n + h;
  const intervals = [...(fc.intervals || [])].sort((a, b) => b.level - a.level);
  const all = [...history, ...fc.point, ...intervals.flatMap((iv) => [...iv.lower, ...iv.upper])].filter(Number.isFinite);
  let lo = Math.min(...all), hi = Math.max(...all);
  if (lo === hi) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.06;
  lo -= pad; hi += pad;
  const x = (i) => M.l + (i / Math.max(1, total - 1)) * (W - M.l - M.r);
  const y = (v) => M.t + (1 - (v - lo) / (hi - lo)) * (H - M.t - M.b);
  const labels = (i) => {
    if (i < n) return series.timestamps ? shortTime(series.timestamps[i]) : `${i + 1}`;
    if (fc.timestamps) return shortTime(fc.timestamps[i - n]);
    return `+${i - n + 1}`;
  };
  plot.replaceChildren();
  plot.setAttribute("viewBox", `0 0 ${W} ${H}`);

  const grid = svg("g", { class: "grid" });
  const axis = svg("g", { class: "axis" });
  for (const t of niceTicks(lo, hi, 6)) {
    grid.append(svg("line", { x1: M.l, x2: W - M.r, y1: y(t), y2: y(t) }));
    axis.append(svg("text", { x: M.l - 8, y: y(t) + 4, "text-anchor": "end" }, formatValue(t)));
  }
  const step = Math.max(1, Math.ceil(total / 8));
  const xticks = [];
  for (let i = 0; i < total; i += step) xticks.push(i);
  if (!xticks.includes(n)) xticks.push(n);
  for (const i of xticks.filter((i) => i === n || Math.abs(i - n) >= step / 2)) {
    axis.append(svg("line", { x1: x(i), x2: x(i), y1: H - M.b, y2: H - M.b + 5 }));
    axis.append(svg("text", { x: x(i), y: H - M.b + 19, "text-anchor": "middle" }, labels(i)));
  }
  axis.append(svg("line", { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
  axis.append(svg("line", { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b }));
  plot.append(grid, axis);

  // Bands and the point forecast start at the last observed value, so the forecast joins the history.
  const last = history[n - 1];
  for (const iv of intervals) {
    const upper = [[n - 1, last], ...iv.upper.map((v, k) => [n + k, v])];
    const lower = [[n - 1, last], ...iv.lower.map((v, k) => [n + k, v])].reverse();
    const points = [...upper, ...lower].map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    plot.append(svg("polygon", { class: `band band-${iv.level}`, points, fill: bandColour(iv.level) }));
  }
  plot.append(svg("line", { class: "origin", x1: x(n - 1), x2: x(n - 1), y1: M.t, y2: H - M.b }));
  const path = (pts) => pts.map(([i, v], k) => `${k ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
  plot.append(svg("path", { class: "history", d: path(history.map((v, i) => [i, v])) }));
  plot.append(svg("path", { class: "point", d: path([[n - 1, last], ...fc.point.map((v, k) => [n + k, v])]) }));

  // Hover read-out: the nearest step's value, or its point forecast and intervals.
  const cursor = svg("line", { class: "cursor", y1: M.t, y2: H - M.b, visibility: "hidden" });
  const readout = svg("text", { class: "readout", x: M.l + 8, y: M.t + 12 });
  const overlay = svg("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: "transparent" });
  overlay.addEventListener("mousemove", (event) => {
    const box = plot.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * W;
    const i = Math.min(total - 1, Math.max(0, Math.round(((px - M.l) / (W - M.l - M.r)) * (total - 1))));
    cursor.setAttribute("x1", x(i));
    cursor.setAttribute("x2", x(i));
    cursor.setAttribute("visibility", "visible");
    if (i < n) {
      readout.textContent = `${labels(i)}: ${formatValue(history[i])}`;
    } else {
      const k = i - n;
      const bands = intervals.map((iv) => `${iv.level}%: ${formatValue(iv.lower[k])} \u2013 ${formatValue(iv.upper[k])}`);
      readout.textContent = `${labels(i)}: forecast ${formatValue(fc.point[k])}  ${bands.join("  ")}`;
    }
  });
  overlay.addEventListener("mouseleave", () => {
    cursor.setAttribute("visibility", "hidden");
    readout.textContent = "";
  });
  plot.append(cursor, readout, overlay);

  const legend = $("forecast-legend");
  legend.replaceChildren(
    el("span", {}, el("span", { class: "swatch", style: "background: var(--ink)" }), `history (${n} values)`),
    el("span", {}, el("span", { class: "swatch", style: "background: var(--accent-2)" }), `point forecast (${h} steps)`),
    ...intervals.map((iv) => el("span", {}, el("span", { class: "swatch", style: `background: ${bandColour(iv.level)}` }),
      `${iv.level}% interval`)),
  );
}

// Every scalar the API returned about this forecast, including fields this page does not know yet.
function showFacts(data, fc) {
  const facts = $("forecast-facts");
  facts.replaceChildren();
  const add = (name, value) => facts.append(el("div", {}, el("dt", {}, name), el("dd", {}, value)));
  add("model", `${data.model} ${data.version}`);
  for (const [key, value] of Object.entries(fc)) {
    if (["point", "intervals", "timestamps"].includes(key) || value === null || value === undefined) continue;
    add(key.replaceAll("_", " "), typeof value === "object" ? JSON.stringify(value) : String(value));
  }
}

// ---------------------------------------------------------------- wiring

function loadForecastExample() {
  const example = forecastExample($("forecast-example").value);
  if (!example) return;
  $("forecast-values").value = example.text;
  $("forecast-horizon").value = example.horizon;
  $("forecast-frequency").value = example.frequency;
}

document.addEventListener("DOMContentLoaded", () => {
  $("sentiment-run").addEventListener("click", () => run("sentiment", runSentiment));
  $("ner-run").addEventListener("click", () => run("ner", runNer));
  $("forecast-run").addEventListener("click", () => run("forecast", runForecast));
  for (const button of document.querySelectorAll("button[data-example]")) {
    button.addEventListener("click", () => {
      $(`${button.dataset.example}-text`).value = EXAMPLES[button.dataset.example][Number(button.dataset.index)];
      $(`${button.dataset.example}-run`).click();
    });
  }
  $("forecast-example").addEventListener("change", loadForecastExample);
  $("forecast-values").addEventListener("input", () => { $("forecast-example").value = ""; });
  loadForecastExample();
  loadModels();
});
