// Assay's pages: plain JavaScript over the REST API (same origin, session cookie). No CDN, no build.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const num = (v, d = 4) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

async function api(path, options = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...options });
  if (r.status === 401 && !location.pathname.startsWith("/login")) {
    location.href = "/login";
    throw new Error("not logged in");
  }
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error(body?.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : `HTTP ${r.status}`);
  return body;
}

const pages = {
  login() {
    $("#login-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api("/api/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: $("#token").value }) });
        location.href = "/runs";
      } catch (err) {
        $("#login-error").textContent = err.message;
      }
    });
  },

  async runs() {
    const draw = async () => {
      const runs = await api("/api/runs");
      $("#runs").innerHTML = runs.length
        ? runs.map((j) => `<tr>
            <td><a href="/runs/${esc(j.id)}">${esc(j.id.slice(0, 10))}</a></td>
            <td>${esc(j.request.model)}</td><td>${esc(j.request.dataset)}</td><td>${esc(j.request.baseline || "")}</td>
            <td><span class="status ${esc(j.status)}">${esc(j.status)}</span>${j.status === "running" && j.progress.total ? ` ${Math.round((100 * j.progress.done) / j.progress.total)}%` : ""}</td>
            <td>${j.verdict ? `<span class="status ${esc(j.verdict)}">${esc(j.verdict)}</span>` : ""}</td>
            <td>${esc(j.created_by)}</td><td>${esc(when(j.created_at))}</td></tr>`).join("")
        : `<tr><td colspan="8" class="muted">No runs yet: <a href="/validate">start a validation</a>.</td></tr>`;
      if (runs.some((j) => j.status === "queued" || j.status === "running")) setTimeout(draw, 1500);
    };
    await draw();
  },

  async validate() {
    const [models, datasets] = await Promise.all([api("/api/models"), api("/api/datasets")]);
    const options = models.map((m) => `<option value="${esc(m.ref)}">${esc(m.ref)} (${esc(m.labels.join(", "))})</option>`).join("");
    $("#model").innerHTML = options;
    $("#baseline").innerHTML += options;
    $("#datasets").innerHTML = datasets.map((d) => `<label class="check"><input type="checkbox" value="${esc(d.ref)}"> ${esc(d.ref)} <span class="muted">${d.n_items} items, ${esc(d.kind)}</span></label>`).join("") || `<span class="muted">No datasets: register one with <code>assay dataset add</code>.</span>`;
    $("#validate-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = {
        model: $("#model").value,
        datasets: [...document.querySelectorAll("#datasets input:checked")].map((i) => i.value),
        baseline: $("#baseline").value || null,
        policy: $("#policy").value.trim() || null,
        slices: $("#slices").value.split(",").map((s) => s.trim()).filter(Boolean),
        device: $("#device").value.trim() || "cpu",
      };
      try {
        const jobs = await api("/api/runs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        location.href = jobs.length === 1 ? `/runs/${jobs[0].id}` : "/runs";
      } catch (err) {
        $("#validate-error").textContent = err.message;
      }
    });
  },

  async models() {
    const draw = async () => {
      const models = await api("/api/models");
      $("#models").innerHTML = models.map((m) => `<tr><td>${esc(m.ref)}</td><td>${esc(m.runtime)}</td><td>${esc(m.labels.join(", "))}</td><td>${esc(m.file_name)}</td><td>${(m.size_bytes / 1024).toFixed(1)} KiB</td><td>${esc(when(m.created_at))}</td></tr>`).join("") || `<tr><td colspan="6" class="muted">No models yet.</td></tr>`;
    };
    let modelFile = null;
    let specFile = null;
    const take = (files) => {
      for (const f of files) {
        if (/\.(ya?ml|json)$/i.test(f.name)) specFile = f;
        else modelFile = f;
      }
      if (modelFile && !$("#model-name").value) $("#model-name").value = modelFile.name.replace(/\.[^.]+$/, "").replace(/[^A-Za-z0-9._-]/g, "-");
      $("#picked").textContent = [modelFile && `model: ${modelFile.name}`, specFile && `spec: ${specFile.name}`].filter(Boolean).join(" · ");
    };
    const drop = $("#drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); take(e.dataTransfer.files); });
    $("#files").addEventListener("change", (e) => take(e.target.files));
    $("#upload").addEventListener("click", async () => {
      $("#upload-error").textContent = "";
      $("#upload-ok").textContent = "";
      if (!modelFile) { $("#upload-error").textContent = "drop a model file first"; return; }
      const form = new FormData();
      form.append("name", $("#model-name").value);
      form.append("file", modelFile);
      if (specFile) form.append("spec", specFile);
      else if ($("#spec-text").value.trim()) form.append("spec_text", $("#spec-text").value);
      try {
        const m = await api("/api/models", { method: "POST", body: form });
        $("#upload-ok").textContent = m.created ? `added ${m.ref}: the spec matches the model` : `unchanged: already registered as ${m.ref}`;
        await draw();
      } catch (err) {
        $("#upload-error").textContent = err.message;
      }
    });
    await draw();
  },

  async datasets() {
    const rows = await api("/api/datasets");
    $("#datasets").innerHTML = rows.map((d) => `<tr><td><a href="/datasets/${esc(d.ref)}">${esc(d.ref)}</a></td><td>${esc(d.format)}</td><td>${esc(d.kind)}</td><td class="n">${d.n_items}</td><td>${Object.keys(d.label_counts).length}</td><td>${esc(when(d.created_at))}</td></tr>`).join("") || `<tr><td colspan="6" class="muted">No datasets yet.</td></tr>`;
  },

  async dataset() {
    const ref = document.body.dataset.ref;
    const d = await api(`/api/datasets/${encodeURIComponent(ref)}`);
    $("#title").textContent = `${d.ref} · ${d.n_items} items`;
    const max = Math.max(...Object.values(d.label_counts), 1);
    $("#balance").innerHTML = Object.entries(d.label_counts).map(([k, v]) => `<div class="hbar"><span>${esc(k)}</span><div data-w="${(100 * v) / max}"></div><b>${v}</b></div>`).join("");
    document.querySelectorAll("#balance [data-w]").forEach((el) => { el.style.width = `${el.dataset.w}%`; });
    $("#columns").innerHTML = d.columns.map((c) => `<code>${esc(c.name)}</code> <span>${esc(c.type)}</span>`).join("<br>");
    $("#notes").innerHTML = d.notes.map((n) => `<p>${esc(n)}</p>`).join("");
    $("#samples").innerHTML = Object.entries(d.samples).map(([label, rows]) => `<h3>${esc(label)}</h3><div class="gallery">${rows.map((r) => (d.kind === "image" ? `<img src="/api/datasets/${encodeURIComponent(d.ref)}/items/${r}/image" alt="row ${r}">` : `<span class="muted">row ${r}</span>`)).join("")}</div>`).join("");
  },

  async run() {
    const id = document.body.dataset.run;
    const final = ["finished", "failed", "cancelled"];
    $("#cancel").addEventListener("click", async () => { await api(`/api/runs/${id}/cancel`, { method: "POST" }); });
    for (;;) {
      const job = await api(`/api/runs/${id}`);
      $("#title").textContent = `${job.request.model} on ${job.request.dataset}`;
      const p = job.progress;
      const pct = p.total ? (100 * p.done) / p.total : 0;
      $("#bar").style.width = `${job.status === "finished" ? 100 : pct}%`;
      $("#status").innerHTML = `<span class="status ${esc(job.status)}">${esc(job.status)}</span> ${p.total ? `${p.done} of ${p.total} items` : ""}${job.error ? ` <span class="error">${esc(job.error)}</span>` : ""}${job.baseline ? "" : ""}`;
      $("#cancel").hidden = final.includes(job.status);
      if (final.includes(job.status)) {
        if (job.status === "finished") await showResult(id);
        return;
      }
      await new Promise((ok) => setTimeout(ok, 700));
    }
  },
};

async function showResult(id) {
  const r = await api(`/api/runs/${id}/result`);
  $("#result").hidden = false;
  const v = r.verdict;
  if (v) {
    const bad = v.checks.filter((c) => c.status !== "pass");
    $("#verdict").className = `verdict ${v.status}`;
    $("#verdict").innerHTML = `<b>${esc(v.status.toUpperCase())}</b> ${esc(v.summary ?? "")}` + (bad.length ? `<ul>${bad.map((c) => `<li><span class="status ${esc(c.status)}">${esc(c.status)}</span> ${esc(c.name)}: ${esc(c.reason)}</li>`).join("")}</ul>` : "");
  }
  const names = ["accuracy", "balanced_accuracy", "macro_f1", "mcc", "roc_auc", "pr_auc", "log_loss", "ece", "false_alarm_rate", "missed_defect_rate"];
  $("#metrics").innerHTML = `<thead><tr><th>metric</th><th class="n">value</th><th class="n">${Math.round(100 * (r.config.confidence || 0.95))}% interval</th></tr></thead><tbody>` + names.filter((n) => r.metrics[n]).map((n) => { const m = r.metrics[n]; return `<tr><td>${n}</td><td class="n">${num(m.value)}</td><td class="n">${m.ci_low === null || m.ci_low === undefined ? "" : `[${num(m.ci_low)}, ${num(m.ci_high)}]`}</td></tr>`; }).join("") + `</tbody>`;
  const cm = r.confusion_matrix;
  const max = Math.max(...cm.flat(), 1);
  $("#confusion").innerHTML = `<table class="cm"><thead><tr><th>expert ↓ / predicted →</th>${r.labels.map((l) => `<th>${esc(l)}</th>`).join("")}</tr></thead><tbody>` + cm.map((row, i) => `<tr><th>${esc(r.labels[i])}</th>${row.map((c, j) => `<td class="cell ${i === j ? "diag" : "off"}" data-label="${esc(r.labels[i])}" data-predicted="${esc(r.labels[j])}" data-a="${(c / max).toFixed(3)}" tabindex="0" role="button" aria-label="${esc(r.labels[i])} predicted ${esc(r.labels[j])}: ${c}">${c}</td>`).join("")}</tr>`).join("") + `</tbody></table>`;
  // Shading through the CSSOM: the Content-Security-Policy forbids inline style attributes.
  document.querySelectorAll("#confusion td.cell").forEach((td) => {
    td.style.setProperty("--a", td.dataset.a);
    td.addEventListener("click", () => showCell(id, r, td.dataset.label, td.dataset.predicted));
    td.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") showCell(id, r, td.dataset.label, td.dataset.predicted); });
  });
  const comp = r.comparison;
  if (comp) {
    $("#changes").hidden = false;
    const ex = (list) => list.map((e) => `<div class="card">${r.dataset_kind === "image" && e.ref !== undefined ? "" : ""}<div class="id">${esc(e.item_id)}</div><div>${esc(e.label)} → ${esc(e.predicted)}</div></div>`).join("");
    $("#changes-body").innerHTML = `<p>vs ${esc(comp.baseline.model)}@${comp.baseline.number}: <b>${comp.fixed}</b> fixed, <b>${comp.broken}</b> broken; McNemar p = ${num(comp.mcnemar_p ?? comp.mcnemar?.p_value, 4)}</p><h3>Broken</h3><div class="gallery">${ex(comp.broken_examples || [])}</div><h3>Fixed</h3><div class="gallery">${ex(comp.fixed_examples || [])}</div>`;
  }
  $("#error-slices").innerHTML = (r.error_slices || []).length ? `<ol>${r.error_slices.slice(0, 10).map((s) => `<li>${esc(s.description)}</li>`).join("")}</ol>` : `<p class="muted">No slice holds significantly more errors than the rest.</p>`;
  const op = r.operating_point;
  const point = (name, p) => (p ? `<tr><td>${esc(name)}</td><td class="n">${num(p.threshold, 3)}</td><td class="n">${num(p.recall)}</td><td class="n">${num(p.precision)}</td><td class="n">${num(p.false_alarm_rate)}</td><td class="n">${num(p.false_alarms_per_1000, 1)}</td></tr>` : "");
  const head = `<thead><tr><th>point</th><th class="n">threshold</th><th class="n">recall</th><th class="n">precision</th><th class="n">false-alarm rate</th><th class="n">false alarms / 1,000</th></tr></thead>`;
  if (op) {
    let html = "";
    if (op.current) html += `<h3>${esc(op.positive)}</h3><table class="list">${head}<tbody>${point("current", op.current)}${point("cost-optimal", op.cost_optimal)}${point(op.constraint || "", op.meeting_constraint)}</tbody></table>`;
    for (const [label, c] of Object.entries(op.one_vs_rest || {})) html += `<h3>${esc(label)} (one-vs-rest)</h3><table class="list">${head}<tbody>${point("current", c.current)}${point("cost-optimal", c.cost_optimal)}${point(c.constraint || "", c.meeting_constraint)}</tbody></table>`;
    $("#threshold").innerHTML = html;
  } else $("#threshold").innerHTML = `<p class="muted">No threshold analysis for this model.</p>`;
  const t = r.timings;
  $("#latency").innerHTML = `<table class="list"><tbody>${[["items per second", num(t.items_per_s, 1)], ["inference per item", `${num((1000 * t.inference_s) / Math.max(r.n_items, 1), 3)} ms`], ["read", `${num(t.read_s, 2)} s`], ["decode", `${num(t.decode_s, 2)} s`], ["inference", `${num(t.inference_s, 2)} s`], ["metrics", `${num(t.metrics_s, 2)} s`], ["model load", `${num(t.model_load_s, 2)} s`], ["finalise (statistics, report)", `${num(t.finalize_s, 2)} s`], ["total", `${num(t.total_s ?? t.engine_s, 2)} s`]].map(([k, v]) => `<tr><td>${k}</td><td class="n">${v}</td></tr>`).join("")}</tbody></table>`;
  const pf = r.profile;
  if (pf && pf.summary) {
    $("#latency").innerHTML += `<h3>Model profile (${esc(pf.machine.cpu)}, ${pf.machine.cpu_count} CPUs)</h3><table class="list"><thead><tr><th>threads</th><th class="n">batch</th><th class="n">p50 ms</th><th class="n">p95 ms</th><th class="n">p99 ms</th><th class="n">items/s</th></tr></thead><tbody>${pf.settings.map((st) => `<tr><td>${esc(st.threads)}</td><td class="n">${st.batch_size}</td><td class="n">${num(st.p50_ms, 3)}</td><td class="n">${num(st.p95_ms, 3)}</td><td class="n">${num(st.p99_ms, 3)}</td><td class="n">${Math.round(st.items_per_s).toLocaleString()}</td></tr>`).join("")}</tbody></table><p>peak memory ${num(pf.summary.peak_memory_mb, 0)} MiB · load ${num(pf.summary.load_time_s, 3)} s · file ${num(pf.summary.model_size_mb, 2)} MiB</p>`;
  }
  $("#downloads").innerHTML = ["report.html", "result.json", "predictions.parquet", "verdict.md", "junit.xml"].map((n) => `<a class="button" href="/api/runs/${encodeURIComponent(id)}/files/${n}" download>${n}</a>`).join(" ");
}

async function showCell(id, r, label, predicted) {
  const q = new URLSearchParams({ label, predicted, limit: "60" });
  const cell = await api(`/api/runs/${id}/items?${q}`);
  const image = r.dataset_kind === "image";
  $("#cell").innerHTML = `<h3 id="cell-title">expert ${esc(label)} → predicted ${esc(predicted)}: ${cell.total} item${cell.total === 1 ? "" : "s"}${cell.total > cell.items.length ? ` (first ${cell.items.length} shown; all in predictions.parquet)` : ""}</h3><div class="gallery" id="cell-items">` + cell.items.map((it) => `<div class="card" data-item="${esc(it.item_id)}">${image ? `<img src="/api/runs/${id}/items/${it.row}/image" alt="${esc(it.item_id)}">` : ""}<div class="id">${esc(it.item_id)}</div></div>`).join("") + `</div>`;
  $("#cell").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

document.addEventListener("DOMContentLoaded", () => {
  $("#logout")?.addEventListener("click", async () => { await fetch("/api/session", { method: "DELETE", credentials: "same-origin" }); location.href = "/login"; });
  const page = pages[document.body.dataset.page];
  if (page) Promise.resolve().then(page).catch((err) => { const m = document.createElement("p"); m.className = "error"; m.textContent = err.message; document.querySelector("main").prepend(m); });
});
