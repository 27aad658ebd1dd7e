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

async function viewModels() {
  const main = show("t-models");
  const filter = $("#status-filter", main);
  const refresh = async () => {
    const q = filter.value ? `&status=${encodeURIComponent(filter.value)}` : "";
    const page = await api("GET", `models?limit=200${q}`);
    $("#models-empty", main).hidden = page.items.length > 0;
    fill($("#models-table tbody", main), page.items.map((m) => [
      el("a", { href: `#/models/${m.id}`, text: m.name }),
      el("span", { class: `badge ${m.status}`, text: m.status }),
      el("span", { class: `badge ${m.phase.toLowerCase()}`, text: m.phase }),
      el("code", { text: m.endpointUrl }),
      String(m.requestCount),
      when(m.lastUsed),
    ]));
  };
  filter.addEventListener("change", refresh);
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

function snippets(model, key) {
  const shown = key || "$MODELPORT_KEY";
  const url = `${model.endpointUrl.replace(/\/$/, "")}/predict`;
  const curl = `curl -X POST ${url} \\\n  -H "Authorization: Bearer ${shown}" \\\n  -H "Content-Type: application/json" \\\n  -d '{"inputData": [[0.0, 0.0, 0.0, 0.0]]}'`;
  const py = `import httpx\n\nresponse = httpx.post(\n    "${url}",\n    headers={"Authorization": "Bearer ${shown}"},\n    json={"inputData": [[0.0, 0.0, 0.0, 0.0]]},\n)\nprint(response.json()["predictions"])`;
  return { curl, py };
}

function drawUsage(box, buckets) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const w = 600, h = 120;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const max = Math.max(1, ...buckets.map((b) => b.requests));
  const bw = w / Math.max(buckets.length, 1);
  buckets.forEach((b, i) => {
    const bh = (h - 4) * (b.requests / max);
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", String(i * bw + 1));
    r.setAttribute("y", String(h - bh));
    r.setAttribute("width", String(Math.max(bw - 2, 1)));
    r.setAttribute("height", String(bh));
    const t = document.createElementNS(ns, "title");
    t.textContent = `${new Date(b.start).toLocaleString()}: ${b.requests} requests`;
    r.append(t);
    svg.append(r);
  });
  box.replaceChildren(svg);
}

async function viewModel(id) {
  const main = show("t-model");
  const key = () => sessionStorage.getItem("mp.key") || "";
  $("#try-key", main).value = key();

  const render = async () => {
    const m = await api("GET", `models/${id}`);
    $("#m-name", main).textContent = m.name;
    $("#m-description", main).textContent = m.description;
    $("#m-status", main).textContent = m.status;
    $("#m-phase", main).textContent = m.phase;
    $("#m-format", main).textContent = m.fileFormat;
    $("#m-version", main).textContent = String(m.version);
    $("#m-requests", main).textContent = String(m.requestCount);
    $("#m-last-used", main).textContent = when(m.lastUsed);
    $("#m-url", main).textContent = m.endpointUrl;
    const s = snippets(m, key());
    $("#snippet-curl", main).textContent = s.curl;
    $("#snippet-python", main).textContent = s.py;
    const usage = await api("GET", `models/${id}/usage?window=24h`);
    drawUsage($("#usage-chart", main), usage.buckets);
    $("#usage-summary", main).textContent = `${usage.requests} requests, ${usage.errors} errors in the last 24 hours` +
      (usage.latencyMs && usage.latencyMs.p50 != null ? `; p50 ${usage.latencyMs.p50.toFixed(1)} ms, p99 ${usage.latencyMs.p99.toFixed(1)} ms` : "");
    const versions = await api("GET", `models/${id}/versions`);
    fill($("#versions-table tbody", main), versions.items.map((v) => [
      `v${v.number}${v.active ? " (serving)" : ""}`, v.originalName, size(v.size), when(v.createdAt),
      v.active ? "" : el("button", { type: "button", text: `Roll back to v${v.number}`, onclick: () => act(() => api("POST", `models/${id}/rollback`, { version: v.number }), `Rolled back to v${v.number}.`) }),
    ]));
    return m;
  };

  const act = async (fn, message) => {
    try { await fn(); flash(message); await render(); } catch (err) { flash(describe(err), "error"); }
  };
  const setStatus = (status) => act(() => api("PATCH", `models/${id}`, { status }), `Model is now ${status}.`);
  main.querySelector('[data-action="activate"]').addEventListener("click", () => setStatus("active"));
  main.querySelector('[data-action="deactivate"]').addEventListener("click", () => setStatus("inactive"));
  main.querySelector('[data-action="archive"]').addEventListener("click", () => setStatus("archived"));
  main.querySelector('[data-action="delete"]').addEventListener("click", async () => {
    if (!confirm("Delete this model, its endpoint and every stored version?")) return;
    try { await api("DELETE", `models/${id}`); flash("Model deleted."); location.hash = "#/models"; } catch (err) { flash(describe(err), "error"); }
  });

  $("#try-form", main).addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = $("#try-result", main);
    let input;
    try { input = JSON.parse($("#try-input", main).value); } catch (_) { out.textContent = "The input is not valid JSON."; return; }
    const k = $("#try-key", main).value.trim();
    sessionStorage.setItem("mp.key", k);
    const m = await api("GET", `models/${id}`);
    const res = await fetch(`${m.endpointUrl.replace(/\/$/, "")}/predict`, {
      method: "POST", headers: { Authorization: `Bearer ${k}`, "Content-Type": "application/json" },
      body: JSON.stringify({ inputData: input }),
    });
    const body = await res.json().catch(() => null);
    if (!res.ok) { out.textContent = describe(new ApiError(res.status, body)); return; }
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
    try { await uploadFile(`models/${id}/versions`, data, () => {}); flash("New version uploaded."); await render(); }
    catch (err) { box.textContent = describe(err); box.hidden = false; }
  });

  await render();
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
    if (m) await viewModel(decodeURIComponent(m[1]));
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
