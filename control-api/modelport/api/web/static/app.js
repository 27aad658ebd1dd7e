// Modelport web UI: a small hash-routed single-page app over the control API.
// User data is always inserted with textContent, never as HTML.
"use strict";

const API = "/api/v1";
const state = { token: sessionStorage.getItem("mp.token"), me: null, timer: null };

// ---------------------------------------------------------------- helpers

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function flash(message, kind = "info") {
  const box = $("#flash");
  box.className = kind;
  box.textContent = message;
  if (message) setTimeout(() => { if (box.textContent === message) box.textContent = ""; }, 6000);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "never";
}

function size(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `request failed (${status})`);
    this.status = status;
    this.code = err.code || `http_${status}`;
    this.details = err.details;
  }
}

// Words for an error body, with the scanner's findings or schema errors listed.
function describe(error) {
  const lines = [error.message];
  const d = error.details;
  const findings = d && (Array.isArray(d) ? d : d.findings);
  if (Array.isArray(findings)) {
    for (const f of findings) {
      if (f && typeof f === "object") lines.push(`• ${f.message || f.msg || JSON.stringify(f)}${f.code ? ` (${f.code})` : ""}`);
    }
  } else if (d && Array.isArray(d.errors)) {
    for (const e of d.errors) lines.push(`• ${e.input}: ${e.error}`);
  }
  if (d && Array.isArray(d.expected)) {
    lines.push(`Expected: ${d.expected.map((t) => `${t.name} ${t.datatype} [${t.shape.join(", ")}]`).join("; ")}`);
  } else if (d && d.supportedFormats) {
    lines.push(`Supported: ${d.supportedFormats.join(", ")}`);
  } else if (d && d.limitBytes) {
    lines.push(`Limit: ${size(d.limitBytes)}`);
  }
  return lines.join("\n");
}

async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path.startsWith("/") ? path : `${API}/${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && state.token && !path.startsWith("http")) {
    signOut("Your session ended; sign in again.");
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// Multipart upload with progress events (fetch cannot report upload progress).
function uploadFile(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${API}/${path}`);
    xhr.setRequestHeader("Authorization", `Bearer ${state.token}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    };
    xhr.onerror = () => reject(new ApiError(0, { error: { message: "the connection broke during the upload" } }));
    xhr.send(form);
  });
}

// A button with data-copy="ID" copies the text of the element with that id.
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // Without the clipboard API (an insecure origin): select a hidden field and copy it.
    const field = el("textarea", { class: "sr-only", "aria-hidden": "true" });
    field.value = text;
    document.body.append(field);
    field.select();
    document.execCommand("copy");
    field.remove();
  }
}

document.addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  await copyText(source ? source.textContent : "");
  flash("Copied to the clipboard.");
});

function show(templateId) {
  clearInterval(state.timer);
  const main = $("#main");
  main.replaceChildren($(`#${templateId}`).content.cloneNode(true));
  return main;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
}

// ---------------------------------------------------------------- auth

function signOut(message) {
  state.token = null;
  state.me = null;
  sessionStorage.removeItem("mp.token");
  $("#nav").hidden = true;
  location.hash = "#/signin";
  if (message) flash(message, "error");
}

async function signIn(email, password) {
  const token = await api("POST", "auth/login", { email, password });
  state.token = token.accessToken;
  sessionStorage.setItem("mp.token", state.token);
  location.hash = "#/models";
}

function viewAuth() {
  const main = show("t-auth");
  $("#signin-form", main).addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    try { await signIn(f.email.value, f.password.value); } catch (err) { flash(describe(err), "error"); }
  });
  $("#signup-form", main).addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    try {
      await api("POST", "auth/signup", { email: f.email.value, password: f.password.value });
      flash("Account created.");
      await signIn(f.email.value, f.password.value);
    } catch (err) { flash(describe(err), "error"); }
  });
  $("#signin-email", main).focus();
}

// ---------------------------------------------------------------- models

const SORTS = {
  newest: () => 0,
  name: (a, b) => a.name.localeCompare(b.name),
  "name-desc": (a, b) => b.name.localeCompare(a.name),
};

async function viewModels() {
  const main = show("t-models");
  const filter = $("#status-filter", main);
  const search = $("#model-search", main);
  const sort = $("#model-sort", main);
  let items = [];
  const draw = () => {
    const words = search.value.trim().toLowerCase();
    const shown = items.filter((m) => m.name.toLowerCase().includes(words)).sort(SORTS[sort.value]);
    $("#models-empty", main).hidden = items.length > 0;
    $("#models-none-match", main).hidden = items.length === 0 || shown.length > 0;
    fill($("#models-table tbody", main), shown.map((m) => [
      el("a", { href: `#/models/${m.id}`, text: m.name }),
      el("span", { class: `badge ${m.status}`, text: m.status }),
      el("span", { class: `badge ${m.phase.toLowerCase()}`, text: m.phase }),
      el("code", { text: m.endpointUrl }),
      String(m.requestCount),
      when(m.lastUsed),
    ]));
  };
  const refresh = async () => {
    const q = filter.value ? `&status=${encodeURIComponent(filter.value)}` : "";
    items = (await api("GET", `models?limit=200${q}`)).items;
    draw();
  };
  filter.addEventListener("change", refresh);
  search.addEventListener("input", draw);
  sort.addEventListener("change", draw);
  await refresh();
  state.timer = setInterval(() => refresh().catch(() => {}), 3000);
}

function viewUpload() {
  const main = show("t-upload");
  const form = $("#upload-form", main);
  const input = $("#upload-file", main);
  const drop = $("#drop", main);
  const errorBox = $("#upload-error", main);
  const chosen = () => { $("#drop-text", main).textContent = input.files[0] ? input.files[0].name : "Drop a model file here, or press to choose one"; };
  input.addEventListener("change", chosen);
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    input.files = e.dataTransfer.files;
    chosen();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    errorBox.hidden = true;
    $("#upload-done", main).hidden = true;
    const data = new FormData();
    data.append("modelName", $("#upload-name", main).value);
    data.append("description", $("#upload-description", main).value);
    data.append("file", input.files[0]);
    const bar = $("#upload-bar", main);
    $("#upload-progress", main).hidden = false;
    const started = performance.now();
    try {
      const res = await uploadFile("models", data, (sent, total) => {
        bar.value = Math.round((100 * sent) / total);
        const secs = (performance.now() - started) / 1000;
        const speed = sent / Math.max(secs, 0.001);
        const left = (total - sent) / Math.max(speed, 1);
        $("#upload-pct", main).textContent = `${bar.value}% · ${size(speed)}/s · ${left.toFixed(0)} s left`;
      });
      bar.value = 100;
      $("#upload-pct", main).textContent = "100% · uploaded and scanned";
      const done = $("#upload-done", main);
      done.replaceChildren(
        el("p", { text: res.message || "Uploaded." }),
        el("a", { href: `#/models/${res.modelId}`, text: "Open the model" }),
      );
      done.hidden = false;
    } catch (err) {
      errorBox.textContent = describe(err);
      errorBox.hidden = false;
      $("#upload-progress", main).hidden = true;
    }
  });
}

// ---------------------------------------------------------------- examples from the schema

// JSON text of a zero-filled tensor, one row where a dimension is free: [[0.0, 0.0]].
function exampleTensor(tensor) {
  const zero = { BOOL: "false", BYTES: '""' }[tensor.datatype]
    || (tensor.datatype.startsWith("FP") ? "0.0" : "0");
  return tensor.shape.reduceRight((inner, size) => `[${Array(Math.max(size, 1)).fill(inner).join(", ")}]`, zero);
}

// The value of inputData: the rows for a model with one input, else an object of named rows.
function exampleInput(schema) {
  if (schema.inputs.length === 1) return exampleTensor(schema.inputs[0]);
  return `{${schema.inputs.map((t) => `"${t.name}": ${exampleTensor(t)}`).join(", ")}}`;
}

const NUMPY = {
  BOOL: "bool", UINT8: "uint8", UINT16: "uint16", UINT32: "uint32", UINT64: "uint64",
  INT8: "int8", INT16: "int16", INT32: "int32", INT64: "int64",
  FP16: "float16", FP32: "float32", FP64: "float64", BYTES: "object",
};

// curl, requests and tritonclient calls of the model; the key is always $MODELPORT_INFERENCE_KEY.
function snippets(model, schema) {
  const base = model.endpointUrl.replace(/\/$/, "");
  const input = exampleInput(schema);
  const curl = [
    `curl -X POST ${base}/predict \\`,
    '  -H "Authorization: Bearer $MODELPORT_INFERENCE_KEY" \\',
    '  -H "Content-Type: application/json" \\',
    `  -d '{"inputData": ${input}}'`,
  ].join("\n");
  const py = [
    "import os", "", "import requests", "",
    "response = requests.post(",
    `    "${base}/predict",`,
    '    headers={"Authorization": "Bearer " + os.environ["MODELPORT_INFERENCE_KEY"]},',
    `    json={"inputData": ${input.replace(/\btrue\b/g, "True").replace(/\bfalse\b/g, "False")}},`,
    "    timeout=30,",
    ")",
    "response.raise_for_status()",
    'print(response.json()["predictions"])',
  ].join("\n");
  const url = new URL(base);
  const tensors = schema.inputs.map((t, i) => {
    const shape = `[${t.shape.map((d) => Math.max(d, 1)).join(", ")}]`;
    const fill = t.datatype === "BYTES"
      ? `np.full(${shape}, b"", dtype=object)`
      : `np.zeros(${shape}, dtype=np.${NUMPY[t.datatype] || "float32"})`;
    return [
      `inputs.append(httpclient.InferInput("${t.name}", ${shape}, "${t.datatype}"))`,
      `inputs[${i}].set_data_from_numpy(${fill})`,
    ];
  }).flat();
  const triton = [
    "import os", "", "import numpy as np", "import tritonclient.http as httpclient", "",
    `client = httpclient.InferenceServerClient("${url.host}${url.pathname}", ssl=${url.protocol === "https:" ? "True" : "False"})`,
    'headers = {"Authorization": "Bearer " + os.environ["MODELPORT_INFERENCE_KEY"]}',
    "inputs = []",
    ...tensors,
    `result = client.infer("${model.id}", inputs, headers=headers)`,
    ...schema.outputs.map((t) => `print(result.as_numpy("${t.name}"))`),
  ].join("\n");
  return { curl, py, triton };
}

// ---------------------------------------------------------------- usage charts

const SVG = "http://www.w3.org/2000/svg";

function svgNode(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function chartFrame(box, label) {
  const svg = svgNode("svg", { viewBox: "0 0 600 120", preserveAspectRatio: "none", "aria-hidden": "true" });
  box.setAttribute("aria-label", label);
  box.replaceChildren(svg);
  return svg;
}

function bucketTime(iso, span) {
  const d = new Date(iso);
  return span === "1h" || span === "24h"
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { month: "short", day: "numeric" }) + (span === "7d" ? ` ${d.getHours()}h` : "");
}

// Time labels under a chart: the first bucket, the middle one, and now.
function drawAxis(box, buckets, span) {
  const mid = buckets[Math.floor(buckets.length / 2)];
  box.replaceChildren(
    el("span", { text: bucketTime(buckets[0].start, span) }),
    el("span", { text: bucketTime(mid.start, span) }),
    el("span", { text: "now" }),
  );
}

// One slot per bucket: requests as a bar, errors as a bar over it; empty buckets stay empty.
function drawRequests(box, buckets) {
  const total = buckets.reduce((n, b) => n + b.requests, 0);
  const busy = buckets.filter((b) => b.requests).length;
  const svg = chartFrame(box, `Requests per bucket: ${total} in all, ${busy} of ${buckets.length} buckets with traffic`);
  const max = Math.max(1, ...buckets.map((b) => b.requests));
  const w = 600 / buckets.length;
  buckets.forEach((b, i) => {
    for (const [count, cls] of [[b.requests, "requests"], [b.errors, "errors"]]) {
      if (!count) continue;
      const h = 116 * (count / max);
      const bar = svgNode("rect", { x: i * w + 1, y: 120 - h, width: Math.max(w - 2, 1), height: h, class: cls });
      const tip = document.createElementNS(SVG, "title");
      tip.textContent = `${new Date(b.start).toLocaleString()}: ${b.requests} requests, ${b.errors} errors`;
      bar.append(tip);
      svg.append(bar);
    }
  });
  return max;
}

// p50, p90 and p99 as lines across the buckets, broken where a bucket had no requests.
function drawLatency(box, buckets) {
  const svg = chartFrame(box, "Latency percentiles per bucket");
  const values = buckets.flatMap((b) => [b.latencyMs.p50, b.latencyMs.p90, b.latencyMs.p99]).filter((v) => v != null);
  const max = Math.max(1, ...values);
  const w = 600 / buckets.length;
  for (const p of ["p50", "p90", "p99"]) {
    let run = [];
    const flush = () => {
      // A lone bucket between gaps is drawn as a short level stroke across its slot.
      if (run.length === 1) run = [[run[0][0] - w / 3, run[0][1]], [run[0][0] + w / 3, run[0][1]]];
      if (run.length) svg.append(svgNode("polyline", { points: run.map((pt) => pt.join(",")).join(" "), class: p }));
      run = [];
    };
    buckets.forEach((b, i) => {
      const v = b.latencyMs[p];
      if (v == null) flush(); else run.push([i * w + w / 2, 118 - 114 * (v / max)]);
    });
    flush();
  }
  return values.length ? max : null;
}

const ms = (v) => (v == null ? "-" : v.toFixed(1));

function drawUsage(main, usage, span) {
  const buckets = usage.buckets;
  const peak = drawRequests($("#usage-chart", main), buckets);
  $("#usage-peak", main).textContent = `(top of the chart: ${peak})`;
  const slowest = drawLatency($("#latency-chart", main), buckets);
  $("#latency-peak", main).textContent = slowest == null ? "(no requests)" : `(top of the chart: ${ms(slowest)} ms)`;
  drawAxis($("#usage-axis", main), buckets, span);
  drawAxis($("#latency-axis", main), buckets, span);
  const lat = usage.latencyMs;
  $("#usage-summary", main).textContent = `${usage.requests} requests, ${usage.errors} errors; ` +
    `latency p50 ${ms(lat.p50)} ms, p90 ${ms(lat.p90)} ms, p99 ${ms(lat.p99)} ms`;
  fill($("#usage-table tbody", main), buckets.map((b) => [
    bucketTime(b.start, span), String(b.requests), String(b.errors), ms(b.latencyMs.p50), ms(b.latencyMs.p90), ms(b.latencyMs.p99),
  ]));
}

// ---------------------------------------------------------------- one model

// Which lifecycle buttons make sense in each status.
const ACTIONS = {
  active: ["deactivate", "archive", "delete"],
  inactive: ["activate", "archive", "delete"],
  archived: ["activate", "delete"],
};

function viewNotFound(id) {
  const main = show("t-not-found");
  $("#nf-id", main).textContent = id;
}

// `stale()` says whether a newer navigation overtook this one while the model was read.
async function viewModel(id, stale) {
  let first;
  try { first = await api("GET", `models/${id}`); } catch (err) {
    if (err instanceof ApiError && err.status === 404 && !stale()) { viewNotFound(id); return; }
    throw err;
  }
  if (stale()) return;
  const main = show("t-model");
  const input = $("#try-input", main);
  let schema = null;
  let edited = false;
  input.addEventListener("input", () => { edited = true; });
  $("#try-key", main).value = sessionStorage.getItem("mp.key") || "";
  const windowSelect = $("#usage-window", main);

  const showModel = (m) => {
    $("#m-name", main).textContent = m.name;
    $("#m-description", main).textContent = m.description;
    $("#m-status", main).textContent = m.status;
    $("#m-phase", main).replaceChildren(el("span", { class: `badge ${m.phase.toLowerCase()}`, text: m.phase }));
    $("#m-format", main).textContent = m.fileFormat;
    $("#m-version", main).textContent = String(m.version);
    $("#m-requests", main).textContent = String(m.requestCount);
    $("#m-last-used", main).textContent = when(m.lastUsed);
    $("#m-url", main).textContent = m.endpointUrl;
    // Why the model is not serving, when the API says (reason and message may be absent).
    const problem = m.phase === "Failed" || m.reason;
    $("#m-problem", main).hidden = !(problem && (m.reason || m.message));
    $("#m-reason", main).textContent = m.reason || "";
    $("#m-message", main).textContent = m.message || "";
    for (const button of main.querySelectorAll("[data-action]")) {
      button.hidden = !(ACTIONS[m.status] || []).includes(button.dataset.action);
    }
  };

  const showSchema = async (m) => {
    try {
      schema = await api("GET", `models/${id}/schema`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      $("#schema-status", main).textContent = err.status === 503
        ? `The schema shows once the model is Ready (it is ${m.phase}). Snippets and the example input are built from it.`
        : describe(err);
      $("#schema-wrap", main).hidden = true;
      for (const name of ["curl", "python", "triton"]) $(`#snippet-${name}`, main).textContent = "Shown once the model is Ready.";
      return;
    }
    $("#schema-status", main).textContent = schema.platform ? `Served by ${schema.platform}.` : "";
    $("#schema-wrap", main).hidden = false;
    fill($("#schema-table tbody", main), [
      ...schema.inputs.map((t) => ["input", t.name, t.datatype, `[${t.shape.join(", ")}]`]),
      ...schema.outputs.map((t) => ["output", t.name, t.datatype, `[${t.shape.join(", ")}]`]),
    ]);
    const s = snippets(m, schema);
    $("#snippet-curl", main).textContent = s.curl;
    $("#snippet-python", main).textContent = s.py;
    $("#snippet-triton", main).textContent = s.triton;
    if (!edited) input.value = exampleInput(schema);
  };

  // The runtime's log; a 404 (no logs endpoint, or none kept) hides the panel.
  const showLogs = async () => {
    const panel = $("#logs-panel", main);
    try {
      const logs = await api("GET", `models/${id}/logs?tail=200`);
      $("#logs", main).textContent = logs.lines.length ? logs.lines.join("\n") : "(nothing logged yet)";
      panel.hidden = false;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 404) panel.hidden = true; else $("#logs", main).textContent = describe(err);
    }
  };

  const showUsage = async () => {
    const span = windowSelect.value;
    drawUsage(main, await api("GET", `models/${id}/usage?window=${span}`), span);
  };

  const showVersions = async () => {
    const versions = await api("GET", `models/${id}/versions`);
    fill($("#versions-table tbody", main), versions.items.map((v) => [
      `v${v.number}${v.active ? " (serving)" : ""}`, v.originalName, size(v.size), when(v.createdAt),
      v.active ? "" : el("button", { type: "button", text: `Roll back to v${v.number}`, onclick: () => {
        if (!confirm(`Roll back to version ${v.number}? The endpoint then serves v${v.number}.`)) return;
        act(() => api("POST", `models/${id}/rollback`, { version: v.number }), `Rolled back to v${v.number}.`);
      } }),
    ]));
  };

  const render = async (m) => {
    const model = m || await api("GET", `models/${id}`);
    showModel(model);
    await Promise.all([schema ? null : showSchema(model), showLogs(), showUsage(), showVersions()]);
    if (model.phase !== "Ready") schema = null; // re-read it once the model serves again
  };

  const act = async (fn, message) => {
    try { await fn(); flash(message); schema = null; await render(); } catch (err) { flash(describe(err), "error"); }
  };
  const setStatus = (status) => act(() => api("PATCH", `models/${id}`, { status }), `Model is now ${status}.`);
  main.querySelector('[data-action="activate"]').addEventListener("click", () => setStatus("active"));
  main.querySelector('[data-action="deactivate"]').addEventListener("click", () => setStatus("inactive"));
  main.querySelector('[data-action="archive"]').addEventListener("click", () => setStatus("archived"));
  main.querySelector('[data-action="delete"]').addEventListener("click", async () => {
    if (!confirm("Delete this model, its endpoint and every stored version?")) return;
    try { await api("DELETE", `models/${id}`); flash("Model deleted."); location.hash = "#/models"; } catch (err) { flash(describe(err), "error"); }
  });
  windowSelect.addEventListener("change", () => showUsage().catch((err) => flash(describe(err), "error")));

  $("#openapi-download", main).addEventListener("click", async () => {
    try {
      const doc = await api("GET", `models/${id}/openapi.json`);
      const file = new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" });
      const link = el("a", { href: URL.createObjectURL(file), download: `${id}.openapi.json` });
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    } catch (err) { flash(describe(err), "error"); }
  });

  $("#try-form", main).addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = $("#try-result", main);
    let rows;
    try { rows = JSON.parse(input.value); } catch (_) { out.textContent = "The input is not valid JSON."; return; }
    const k = $("#try-key", main).value.trim();
    sessionStorage.setItem("mp.key", k);
    const m = await api("GET", `models/${id}`);
    const res = await fetch(`${m.endpointUrl.replace(/\/$/, "")}/predict`, {
      method: "POST", headers: { Authorization: `Bearer ${k}`, "Content-Type": "application/json" },
      body: JSON.stringify({ inputData: rows }),
    });
    const body = await res.json().catch(() => null);
    if (!res.ok) { out.replaceChildren(el("p", { class: "error", text: describe(new ApiError(res.status, body)) })); return; }
    out.replaceChildren(
      el("p", { text: `Predictions: ${JSON.stringify(body.predictions)}` }),
      el("p", { text: `Processing time: ${body.processingTime} ms` + (body.confidence != null ? ` · confidence ${body.confidence}` : "") }),
    );
    render().catch(() => {});
  });

  $("#version-form", main).addEventListener("submit", async (e) => {
    e.preventDefault();
    const box = $("#version-error", main);
    box.hidden = true;
    const data = new FormData();
    data.append("file", $("#version-file", main).files[0]);
    try { await uploadFile(`models/${id}/versions`, data, () => {}); flash("New version uploaded."); schema = null; await render(); }
    catch (err) { box.textContent = describe(err); box.hidden = false; }
  });

  await render(first);
  state.timer = setInterval(() => render().catch(() => {}), 5000);
}

// ---------------------------------------------------------------- keys and admin

async function viewKeys() {
  const main = show("t-keys");
  const refresh = async () => {
    const keys = await api("GET", "keys");
    fill($("#keys-table tbody", main), keys.map((k) => [
      k.name, k.scope, k.models === null ? "all" : (k.models.join(", ") || "none"), when(k.createdAt), when(k.lastUsedAt), k.revokedAt ? `revoked ${when(k.revokedAt)}` : "active",
      k.revokedAt ? "" : el("button", { type: "button", class: "danger", text: `Revoke ${k.name}`, onclick: async () => {
        try { await api("DELETE", `keys/${k.id}`); flash(`Key ${k.name} revoked.`); await refresh(); } catch (err) { flash(describe(err), "error"); }
      } }),
    ]));
  };
  const scope = $("#key-scope", main), models = $("#key-models", main);
  const listModels = async () => {
    const owned = await api("GET", "models?limit=200");
    models.replaceChildren(...owned.items.map((m) => el("option", { value: m.id, text: `${m.name} (${m.id})` })));
  };
  scope.addEventListener("change", () => { models.disabled = scope.value !== "inference"; });
  $("#key-form", main).addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: $("#key-name", main).value, scope: scope.value };
    const chosen = [...models.selectedOptions].map((o) => o.value);
    if (scope.value === "inference" && chosen.length) body.models = chosen;
    try {
      const k = await api("POST", "keys", body);
      if (k.scope === "inference") sessionStorage.setItem("mp.key", k.key);  // the try-it form's key
      $("#key-value", main).textContent = k.key;
      $("#key-created", main).hidden = false;
      await refresh();
    } catch (err) { flash(describe(err), "error"); }
  });
  await Promise.all([refresh(), listModels()]);
}

async function viewAdmin() {
  const main = show("t-admin");
  const refresh = async () => {
    const users = await api("GET", "admin/users?limit=200");
    fill($("#users-table tbody", main), users.items.map((u) => {
      const sub = el("select", { "aria-label": `Subscription of ${u.email}` },
        el("option", { text: "free" }), el("option", { text: "premium" }));
      sub.value = u.subscription;
      const rpm = el("input", { type: "number", min: "0", value: String(u.rateLimits.requestsPerMinute), "aria-label": `Requests per minute of ${u.email}` });
      const ml = el("input", { type: "number", min: "0", value: String(u.rateLimits.modelsLimit), "aria-label": `Models limit of ${u.email}` });
      const save = el("button", { type: "button", text: "Save", onclick: async () => {
        try {
          await api("PATCH", `admin/users/${u.id}`, { subscription: sub.value, requestsPerMinute: Number(rpm.value), modelsLimit: Number(ml.value) });
          flash(`Saved ${u.email}.`);
        } catch (err) { flash(describe(err), "error"); }
      } });
      return [u.email, u.role, sub, rpm, ml, save];
    }));
  };
  await refresh();
}

// ---------------------------------------------------------------- routing

// Each navigation gets a number; a route that an awaited request overtook renders nothing and
// takes no focus, so a slow earlier view never replaces or steals focus from the current one.
let routes = 0;

async function route() {
  const hash = location.hash || "#/models";
  const current = ++routes;
  if (!state.token) { $("#nav").hidden = true; viewAuth(); return; }
  try {
    if (!state.me) {
      state.me = await api("GET", "users/me");
      $("#nav-admin").hidden = state.me.role !== "admin";
      if (current !== routes) return;
    }
    $("#nav").hidden = false;
    const m = hash.match(/^#\/models\/([^/]+)$/);
    if (m) await viewModel(decodeURIComponent(m[1]), () => current !== routes);
    else if (hash === "#/upload") viewUpload();
    else if (hash === "#/keys") await viewKeys();
    else if (hash === "#/admin") await viewAdmin();
    else if (hash === "#/signin") viewAuth();
    else await viewModels();
    if (current === routes) $("#main").focus();
  } catch (err) {
    if (err instanceof ApiError) flash(describe(err), "error"); else throw err;
  }
}

$("#signout").addEventListener("click", () => signOut(""));
window.addEventListener("hashchange", route);
route();
