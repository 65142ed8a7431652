// Assay's pages: plain JavaScript over the REST API (same origin, session cookie). No CDN, no build.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const num = (v, d = 4) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
// Numbers for people: p-values below 1e-4 as such, durations in s/min/h, counts with separators.
const pval = (p) => (p === null || p === undefined ? "–" : p < 1e-4 ? "< 1e-4" : p < 0.001 ? p.toExponential(1) : p.toFixed(3));
const count = (n) => (n === null || n === undefined ? "" : Number(n).toLocaleString());
const duration = (s) => (s === null || s === undefined ? "" : s < 60 ? `${s.toFixed(1)} s` : s < 3600 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${(s / 3600).toFixed(1)} h`);
const headline = (h) => (h && h.value !== null ? `${esc(h.metric.replace(/_/g, " "))} <b>${num(h.value, 3)}</b>${h.ci_low !== null ? ` <span class="ci">[${num(h.ci_low, 3)}, ${num(h.ci_high, 3)}]</span>` : ""}` : "");
const badge = (status) => (status ? `<span class="status ${esc(status)}">${esc(status.replace("_", " "))}</span>` : "");

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
    const form = $("#filters");
    const params = new URLSearchParams(location.search);
    const [models, datasets] = await Promise.all([api("/api/models"), api("/api/datasets")]);
    const names = (list) => [...new Set(list.map((x) => x.name))];
    form.model.innerHTML += names(models).map((n) => `<option>${esc(n)}</option>`).join("");
    form.dataset.innerHTML += names(datasets).map((n) => `<option>${esc(n)}</option>`).join("");
    let tagsShown = false;
    for (const [k, v] of params) if (form.elements[k] && k !== "tag") form.elements[k].value = v;
    const state = { sort: params.get("sort") || "started_at", order: params.get("order") || "desc", offset: Number(params.get("offset") || 0), limit: 50 };
    const chosen = new Set();
    const query = () => {
      const q = new URLSearchParams();
      for (const el of form.elements) if (el.name && el.value) q.set(el.name, el.value);
      if (!form.tag.value && params.get("tag") && !tagsShown) q.set("tag", params.get("tag"));
      q.set("sort", state.sort); q.set("order", state.order); q.set("offset", state.offset); q.set("limit", state.limit);
      return q;
    };
    let drawn = 0; // the latest draw wins: an older request answering late is dropped
    const draw = async () => {
      const seq = ++drawn;
      const q = query();
      // The address shows what differs from the default view, so it can be shared as a link.
      const shown = new URLSearchParams([...q].filter(([k, v]) => !({ sort: "started_at", order: "desc", offset: "0", limit: "50" })[k] || ({ sort: "started_at", order: "desc", offset: "0", limit: "50" })[k] !== v));
      history.replaceState(null, "", shown.toString() ? `/runs?${shown}` : "/runs");
      const page = await api(`/api/runs?${q}`);
      if (seq !== drawn) return;
      if (!tagsShown) {
        form.tag.innerHTML = `<option value="">any</option>` + page.tags.map((t) => `<option>${esc(t)}</option>`).join("");
        form.tag.value = params.get("tag") || "";
        tagsShown = true;
      }
      const end = page.offset + page.runs.length;
      $("#count").textContent = page.total ? `${page.offset + 1}–${end} of ${count(page.total)} runs` : "";
      $("#prev").hidden = page.offset === 0;
      $("#next").hidden = end >= page.total;
      $("#runs").innerHTML = page.runs.length
        ? page.runs.map((r) => `<tr>
            <td><input type="checkbox" class="pick" value="${esc(r.id)}" aria-label="compare ${esc(r.id.slice(0, 12))}"${chosen.has(r.id) ? " checked" : ""}${r.status === "finished" ? "" : " disabled"}></td>
            <td><a href="/runs/${esc(r.id)}"><code>${esc(r.id.slice(0, 10))}</code></a>${r.note ? ` <span class="muted" title="${esc(r.note)}">✎</span>` : ""}</td>
            <td>${badge(r.verdict)}</td><td><a href="/models/${esc(r.model.split("@")[0])}">${esc(r.model)}</a>${r.baseline ? `<div class="muted">vs ${esc(r.baseline)}</div>` : ""}</td><td>${esc(r.dataset)}</td>
            <td class="n">${headline(r.headline)}</td><td class="n">${count(r.n_items)}</td>
            <td class="n${r.n_failed ? " warn" : ""}">${count(r.n_failed)}</td><td class="n">${duration(r.duration_s)}</td>
            <td>${esc(r.origin)}${r.engine !== "local" ? ` · ${esc(r.engine)}` : ""}</td><td>${esc(when(r.started_at))}</td>
            <td>${r.tags.map((t) => `<span class="pill">${esc(t)}</span>`).join(" ")}</td>
            <td>${badge(r.status)}${r.status === "running" && r.progress && r.progress.total ? ` ${Math.round((100 * r.progress.done) / r.progress.total)}%` : ""}</td></tr>`).join("")
        : [...form.elements].some((el) => el.name && el.value)
          ? `<tr><td colspan="13" class="muted">No run matches these filters.</td></tr>`
          : `<tr><td colspan="13" class="muted">No runs yet: <a href="/validate">start a validation</a>, or run <code>assay validate</code>.</td></tr>`;
      document.querySelectorAll("th[data-sort]").forEach((th) => th.classList.toggle("sorted", th.dataset.sort === state.sort));
      document.querySelectorAll("th[data-sort]").forEach((th) => th.setAttribute("aria-sort", th.dataset.sort === state.sort ? (state.order === "asc" ? "ascending" : "descending") : "none"));
      if (page.runs.some((r) => r.status === "queued" || r.status === "running")) setTimeout(draw, 1500);
    };
    form.addEventListener("change", () => { state.offset = 0; draw(); });
    form.addEventListener("reset", () => setTimeout(() => { state.offset = 0; draw(); }));
    document.querySelectorAll("th[data-sort]").forEach((th) => th.addEventListener("click", () => {
      state.order = state.sort === th.dataset.sort && state.order === "desc" ? "asc" : "desc";
      state.sort = th.dataset.sort; state.offset = 0; draw();
    }));
    $("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); draw(); });
    $("#next").addEventListener("click", () => { state.offset += state.limit; draw(); });
    $("#runs").addEventListener("change", (e) => {
      if (!e.target.classList.contains("pick")) return;
      if (e.target.checked) chosen.add(e.target.value); else chosen.delete(e.target.value);
      $("#compare").disabled = chosen.size < 2;
      $("#compare").textContent = chosen.size >= 2 ? `Compare ${chosen.size} runs` : "Compare selected";
    });
    $("#compare").addEventListener("click", () => { location.href = `/compare?runs=${[...chosen].join(",")}`; });
    await draw();
  },

  async items() {
    const id = document.body.dataset.run;
    const run = await api(`/api/runs/${id}`);
    $("#back").href = `/runs/${run.id}`;
    $("#back").textContent = `← ${run.model} on ${run.dataset}`;
    const form = $("#filters");
    const params = new URLSearchParams(location.search);
    const state = { offset: Number(params.get("offset") || 0), limit: 60, page: null, open: params.get("open"), current: -1, seq: 0 };
    // Filters the form does not show (a slice, a group, doubtful labels) stay as chips.
    const hidden = ["slice", "group", "doubtful", "disputed"];
    const query = () => {
      const q = new URLSearchParams();
      for (const k of hidden) if (params.get(k)) q.set(k, params.get(k));
      if (!labelsShown) for (const k of ["correct", "judged"]) if (params.get(k)) q.set(k, params.get(k));
      for (const el of form.elements) {
        if (!el.name || !el.value) continue;
        if (el.name === "outcome") {
          q.delete("correct"); q.delete("judged");
          if (el.value === "unjudged") q.set("judged", "false"); else q.set("correct", el.value === "right" ? "true" : "false");
        } else q.set(el.name, el.value);
      }
      return q;
    };
    let labelsShown = false;
    const chips = () => {
      const names = { slice: "slice", group: "error group", doubtful: "doubtful labels", disputed: "disputed" };
      const show = (k, v) => (k === "slice" ? JSON.parse(v).map((p) => `${p.column} ${/^[<>!=]/.test(p.value) ? "" : /^[[(]/.test(p.value) ? "in " : "= "}${p.value}`).join(" and ") : k === "group" ? `#${Number(v) + 1}` : v);
      $("#chips").innerHTML = hidden.filter((k) => params.get(k)).map((k) => `<span class="chip">${esc(names[k])}: ${esc(show(k, params.get(k)))} <button class="link" data-drop="${k}" aria-label="remove">✕</button></span>`).join("");
    };
    const draw = async () => {
      const q = query();
      const url = new URLSearchParams(q);
      if (state.offset) url.set("offset", state.offset);
      history.replaceState(null, "", `/runs/${run.id}/items?${url}`);
      q.set("offset", state.offset); q.set("limit", state.limit);
      const seq = ++state.seq; // the latest draw wins: an older request answering late is dropped
      let page;
      try {
        page = await api(`/api/runs/${run.id}/items?${q}`);
        if (seq !== state.seq) return;
        $("#count").className = "muted";
      } catch (err) {
        if (seq !== state.seq) return;
        $("#count").textContent = err.message; $("#count").className = "error"; return;
      }
      state.page = page;
      if (!labelsShown) {
        const opts = page.labels.map((l) => `<option>${esc(l)}</option>`).join("");
        form.label.innerHTML += opts; form.predicted.innerHTML += opts;
        for (const el of form.elements) if (el.name && params.get(el.name)) el.value = params.get(el.name);
        if (params.get("judged") === "false") form.outcome.value = "unjudged";
        else if (params.get("correct")) form.outcome.value = params.get("correct") === "true" ? "right" : "wrong";
        $(".needs-baseline").hidden = !page.has_baseline;
        labelsShown = true;
        return draw();
      }
      chips();
      const end = page.offset + page.items.length;
      $("#title").textContent = `${count(page.total)} item${page.total === 1 ? "" : "s"}`;
      $("#count").textContent = page.total ? `${page.offset + 1}–${end} of ${count(page.total)}` : "No item matches.";
      $("#prev").hidden = page.offset === 0;
      $("#next").hidden = end >= page.total;
      const image = page.kind === "image";
      $("#grid").className = image ? "grid" : "grid rows";
      $("#grid").innerHTML = page.items.map((it, i) => `<div class="tile-item ${it.correct === false ? "wrong" : it.correct === null ? "unjudged" : "right"}" role="option" tabindex="${i === 0 ? 0 : -1}" data-i="${i}" aria-label="${esc(it.item_id)}">
          ${image ? `<img src="/api/runs/${encodeURIComponent(run.id)}/items/${it.row}/image?size=160" alt="" loading="lazy">` : ""}
          <div class="id">${esc(it.item_id)}</div>
          <div>${esc(it.label ?? "?")} → <b>${esc(it.predicted ?? "–")}</b>${it.confidence !== null ? ` <span class="muted">${num(it.confidence, 2)}</span>` : ""}</div>
          ${it.error ? `<div class="error">${esc(it.error)}</div>` : ""}
          ${page.has_baseline ? `<div class="muted">baseline: ${esc(it.baseline ?? "–")}</div>` : ""}</div>`).join("");
      if (state.open) {
        const at = page.items.findIndex((it) => it.item_id === state.open);
        state.open = null;
        if (at >= 0) openItem(at);
      }
    };
    const focusTile = (i) => {
      const tiles = [...document.querySelectorAll("#grid .tile-item")];
      if (!tiles.length) return;
      const t = tiles[Math.max(0, Math.min(i, tiles.length - 1))];
      tiles.forEach((x) => x.setAttribute("tabindex", "-1"));
      t.setAttribute("tabindex", "0");
      t.focus();
    };
    const openItem = async (i) => {
      const page = state.page;
      if (i < 0 && page.offset > 0) { state.offset -= state.limit; await draw(); return openItem(state.page.items.length - 1); }
      if (i >= page.items.length && page.offset + page.items.length < page.total) { state.offset += state.limit; await draw(); return openItem(0); }
      if (i < 0 || i >= page.items.length) return;
      state.current = i;
      const it = page.items[i];
      const d = await api(`/api/runs/${run.id}/items/${it.row}`);
      $("#item-title").textContent = d.item_id;
      $("#item-picture").innerHTML = d.kind === "image"
        ? `<img src="/api/runs/${encodeURIComponent(run.id)}/items/${d.row}/image?size=1024" alt="${esc(d.item_id)}">`
        : `<table class="list features"><thead><tr><th>column</th><th class="n">value</th></tr></thead><tbody>${Object.entries(d.columns).map(([k, v]) => `<tr><td>${esc(k)}</td><td class="n">${esc(cellValue(v))}</td></tr>`).join("")}</tbody></table>`;
      const scoreRows = (scores, mark) => Object.entries(scores).sort((a, b) => (b[1] ?? -1) - (a[1] ?? -1)).map(([k, v]) => `<div class="score${k === mark ? " mark" : ""}"><span>${esc(k)}</span><div class="track"><div class="fill" data-w="${Math.max(0, Math.min(1, v ?? 0))}"></div></div><b>${num(v, 3)}</b></div>`).join("");
      const facts = [
        `<p class="answer ${d.correct === false ? "wrong" : d.correct ? "right" : ""}">expert <b>${esc(d.label ?? "?")}</b> · model <b class="said">${esc(d.predicted ?? "–")}</b> ${d.correct === null ? "(not judged)" : d.correct ? "✓ right" : "✗ wrong"}</p>`,
        d.error ? `<p class="error">${esc(d.error)}</p>` : "",
        Object.keys(d.scores).length ? `<h3>Scores</h3>${scoreRows(d.scores, d.predicted)}` : "",
        d.anomaly_score !== null && d.anomaly_score !== undefined ? `<p>anomaly score ${num(d.anomaly_score, 4)}</p>` : "",
        Object.keys(d.experts).length ? `<h3>Experts</h3><table class="list"><tbody>${Object.entries(d.experts).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v ?? "–")}</td></tr>`).join("")}</tbody></table>` : "",
        d.baseline ? `<h3>Baseline (${esc(run.baseline || "")})</h3><p>says <b>${esc(d.baseline.predicted ?? "–")}</b> ${d.baseline.correct === null ? "" : d.baseline.correct ? "✓ right" : "✗ wrong"}</p>${scoreRows(d.baseline.scores, d.baseline.predicted)}` : "",
        d.doubtful ? `<h3>Doubtful label</h3><p>the model suggests <b>${esc(d.doubtful.model_suggests)}</b> (${num(d.doubtful.model_confidence, 2)}); label quality ${num(d.doubtful.label_quality, 3)}</p>` : "",
        d.group ? `<h3>Error group</h3><p><a href="/runs/${esc(run.id)}/items?group=${d.group.group}&sort=typical">group ${d.group.group + 1}</a></p>` : "",
        d.kind === "image" && Object.keys(d.columns).length ? `<h3>Metadata</h3><table class="list"><tbody>${Object.entries(d.columns).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(cellValue(v))}</td></tr>`).join("")}</tbody></table>` : "",
        d.path ? `<p class="muted">file ${esc(d.path)} · row ${d.row}</p>` : `<p class="muted">row ${d.row}</p>`,
      ];
      $("#item-facts").innerHTML = facts.join("");
      document.querySelectorAll("#item-facts .fill").forEach((el) => { el.style.width = `${100 * Number(el.dataset.w)}%`; });
      $("#item-prev").disabled = page.offset + i === 0;
      $("#item-next").disabled = page.offset + i + 1 >= page.total;
      if (!$("#item").open) $("#item").showModal();
    };
    form.addEventListener("submit", (e) => { e.preventDefault(); state.offset = 0; draw(); });
    form.addEventListener("change", (e) => { if (e.target.tagName === "SELECT") { state.offset = 0; draw(); } });
    $("#chips").addEventListener("click", (e) => { const k = e.target.dataset.drop; if (k) { params.delete(k); state.offset = 0; draw(); } });
    $("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); draw(); });
    $("#next").addEventListener("click", () => { state.offset += state.limit; draw(); });
    $("#grid").addEventListener("click", (e) => { const t = e.target.closest(".tile-item"); if (t) openItem(Number(t.dataset.i)); });
    $("#grid").addEventListener("keydown", (e) => {
      const t = e.target.closest(".tile-item");
      if (!t) return;
      const i = Number(t.dataset.i);
      const across = Math.max(1, Math.round($("#grid").clientWidth / t.offsetWidth));
      const move = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: across, ArrowUp: -across }[e.key];
      if (move) { e.preventDefault(); focusTile(i + move); }
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openItem(i); }
    });
    $("#item-prev").addEventListener("click", () => openItem(state.current - 1));
    $("#item-next").addEventListener("click", () => openItem(state.current + 1));
    $("#item-close").addEventListener("click", () => $("#item").close());
    $("#item").addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight") { e.preventDefault(); openItem(state.current + 1); }
      if (e.key === "ArrowLeft") { e.preventDefault(); openItem(state.current - 1); }
    });
    $("#item").addEventListener("close", () => focusTile(state.current));
    await draw();
  },

  async compare() {
    const ids = (document.body.dataset.runs || "").split(",").filter(Boolean);
    const c = await api(`/api/compare?runs=${encodeURIComponent(ids.join(","))}`);
    const ref = c.runs[0];
    $("#title").textContent = `Compare ${c.runs.length} runs`;
    const head = `<thead><tr><th></th>${c.runs.map((r, i) => `<th class="n"><a href="/runs/${esc(r.id)}">${esc(r.model)}</a>${i === 0 ? ` <span class="pill">reference</span>` : ""}</th>`).join("")}</tr></thead>`;
    const rows = [
      ["dataset", (r) => esc(r.dataset)],
      ["verdict", (r) => badge(r.verdict)],
      ["items", (r) => `${count(r.n_items)}${r.n_failed ? ` <span class="muted">(${count(r.n_failed)} not judged)</span>` : ""}`],
      ["started", (r) => esc(when(r.started_at))],
      ["run", (r) => `<code>${esc(r.id.slice(0, 12))}</code>`],
    ];
    $("#cmp-runs").innerHTML = head + `<tbody>${rows.map(([k, f]) => `<tr><td>${k}</td>${c.runs.map((r) => `<td class="n">${f(r)}</td>`).join("")}</tr>`).join("")}</tbody>`;
    // A change is coloured only on evidence, the two runs' intervals apart (the paired test is
    // in the table below), and by the metric catalog's direction: for a "lower is better"
    // metric (log loss, false-alarm rate) a fall is the improvement.
    const has = (x) => x && x.ci_low !== null && x.ci_low !== undefined;
    const cell = (v, refv, better) => {
      if (!v || v.value === null) return `<td class="n muted">–</td>`;
      const ci = has(v) ? ` <span class="ci">[${num(v.ci_low, 3)}, ${num(v.ci_high, 3)}]</span>` : "";
      let d = "";
      if (refv && refv.value !== null && refv !== v) {
        const change = v.value - refv.value;
        const apart = has(v) && has(refv) && (v.ci_low > refv.ci_high || v.ci_high < refv.ci_low);
        const way = !apart ? "" : (change > 0) === (better !== "lower") ? " better" : " worse";
        const why = `${better === "lower" ? "lower" : "higher"} is better; ${apart ? "the intervals are apart" : "the intervals overlap: no colour"}`;
        d = ` <span class="delta${way}" title="${why}">${change >= 0 ? "+" : ""}${num(change, 3)}</span>`;
      }
      return `<td class="n">${num(v.value, 4)}${ci}${d}</td>`;
    };
    $("#cmp-metrics").innerHTML = head + `<tbody>${c.metrics.map((m) => `<tr><td>${esc(m.title)}${m.better === "lower" ? ` <span class="muted">(lower is better)</span>` : ""}</td>${m.values.map((v) => cell(v, m.values[0], m.better)).join("")}</tr>`).join("")}</tbody>`;
    const paired = c.pairs;
    const link = (p, q, n) => `<a href="/runs/${esc(p.run)}/items?${new URLSearchParams({ against: ref.id, ...q })}">${count(n)}</a>`;
    $("#cmp-paired").innerHTML = `<thead><tr><th>run</th><th class="n">items both judged</th><th class="n">broken</th><th class="n">fixed</th><th class="n">both wrong</th><th class="n">McNemar p</th><th class="n">accuracy change (${Math.round(100 * c.confidence)}% interval)</th><th class="n">answers differ</th></tr></thead><tbody>` +
      paired.map((p) => {
        const r = c.runs.find((x) => x.id === p.run);
        if (!p.paired) return `<tr><td>${esc(r.model)}</td><td colspan="7" class="muted">${esc(p.note)}</td></tr>`;
        const d = p.accuracy_delta;
        return `<tr><td><a href="/runs/${esc(r.id)}">${esc(r.model)}</a></td><td class="n">${count(p.n_items)}</td>
          <td class="n neg">${link(p, { change: "broken" }, p.n_broken)}</td><td class="n pos">${link(p, { change: "fixed" }, p.n_fixed)}</td>
          <td class="n">${link(p, { change: "both_wrong" }, p.n_both_wrong)}</td><td class="n">${pval(p.mcnemar_p)}</td>
          <td class="n">${d.value === null ? "–" : `${d.value >= 0 ? "+" : ""}${num(d.value, 4)} <span class="ci">[${num(d.ci_low, 4)}, ${num(d.ci_high, 4)}]</span>`}</td>
          <td class="n">${link(p, { differs: "true" }, p.n_differ)}</td></tr>`;
      }).join("") + `</tbody>`;
    $("#cmp-slices-box").hidden = !c.slices.length;
    $("#cmp-slices").innerHTML = head + `<tbody>${c.slices.map((s) => `<tr><td>${esc(s.slice)}</td>${s.values.map((v) => (v && v.accuracy ? cell(v.accuracy, s.values[0] && s.values[0].accuracy) : `<td class="n muted">–</td>`)).join("")}</tr>`).join("")}</tbody>`;
    $("#cmp-classes").innerHTML = head + `<tbody>${c.per_class.map((k) => `<tr><td>${esc(k.label)}</td>${k.values.map((v) => cell(v.recall, k.values[0].recall, "higher")).join("")}</tr>`).join("")}</tbody>`;
  },

  async model() {
    const name = document.body.dataset.model;
    const draw = async () => {
      const o = await api(`/api/models/${encodeURIComponent(name)}/overview`);
      $("#title").textContent = `${o.name}: ${o.versions.length} version${o.versions.length === 1 ? "" : "s"}, ${count(o.n_runs)} run${o.n_runs === 1 ? "" : "s"}`;
      const byVersion = (ref) => o.runs.filter((r) => r.model === ref);
      $("#versions").innerHTML = o.versions.slice().reverse().map((m) => {
        const runs = byVersion(m.ref);
        const latest = runs.find((r) => r.verdict);
        return `<tr><td><b>${esc(m.ref)}</b> <code>${esc(m.version.slice(0, 12))}</code></td><td>${m.aliases.map((a) => `<span class="pill">${esc(a)} <button class="link" data-unalias="${esc(a)}" aria-label="remove alias ${esc(a)}">✕</button></span>`).join(" ")}</td>
          <td>${esc(m.runtime)}</td><td>${esc(m.file_name)}</td><td class="n">${bytes(m.size_bytes)}</td><td class="n">${runs.length}</td>
          <td>${latest ? `${badge(latest.verdict)} <span class="muted">on ${esc(latest.dataset)}</span>` : ""}</td><td>${esc(when(m.created_at))}</td></tr>`;
      }).join("");
      const picked = $("#alias-version").value;
      $("#alias-version").innerHTML = o.versions.slice().reverse().map((m) => `<option value="${m.number}">${esc(m.ref)}</option>`).join("");
      if (picked) $("#alias-version").value = picked;
      $("#model-runs").innerHTML = o.runs.map((r) => `<tr><td><a href="/runs/${esc(r.id)}"><code>${esc(r.id.slice(0, 10))}</code></a></td><td>${esc(r.model)}</td><td>${esc(r.dataset)}</td><td>${badge(r.verdict || r.status)}</td><td class="n">${headline(r.headline)}</td><td class="n">${count(r.n_items)}</td><td>${esc(when(r.started_at))}</td></tr>`).join("")
        || `<tr><td colspan="7" class="muted">No runs of this model yet.</td></tr>`;
      const done = o.runs.filter((r) => r.headline && r.headline.value !== null).reverse();
      if (done.length && window.Plotly) {
        const colour = { pass: "#067647", fail: "#b42318", inconclusive: "#b54708" };
        const series = [...new Set(done.map((r) => `${r.model} on ${r.dataset}`))];
        const traces = series.map((name) => {
          const rs = done.filter((r) => `${r.model} on ${r.dataset}` === name);
          return {
            name, type: "scatter", mode: "markers",
            x: rs.map((r) => r.started_at), y: rs.map((r) => r.headline.value),
            text: rs.map((r) => `${r.model} · ${r.verdict || "no verdict"}`), hovertemplate: "%{text}<br>%{y:.4f}<extra>%{fullData.name}</extra>",
            // One colour for the bars: they would take the markers' per-verdict array, which Plotly refuses.
            error_y: { type: "data", symmetric: false, color: "#9ca3af", array: rs.map((r) => (r.headline.ci_high ?? r.headline.value) - r.headline.value), arrayminus: rs.map((r) => r.headline.value - (r.headline.ci_low ?? r.headline.value)) },
            marker: { size: 10, color: rs.map((r) => colour[r.verdict] || "#6b7280") },
          };
        });
        window.Plotly.newPlot($("#history"), traces, { height: 320, margin: { t: 10, r: 10, b: 40, l: 50 }, yaxis: { title: done[0].headline.metric.replace(/_/g, " ") }, legend: { orientation: "h" } }, { displaylogo: false, responsive: true });
      } else $("#history").innerHTML = `<p class="muted">No finished run yet.</p>`;
    };
    $("#alias-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      $("#alias-msg").className = "muted";
      try {
        const a = await api(`/api/models/${encodeURIComponent(name)}/aliases/${encodeURIComponent($("#alias").value.trim())}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ version: Number($("#alias-version").value) }) });
        $("#alias-msg").textContent = `${a.name}@${a.alias} → ${a.name}@${a.number}`;
        await draw();
      } catch (err) { $("#alias-msg").textContent = err.message; $("#alias-msg").className = "error"; }
    });
    $("#versions").addEventListener("click", async (e) => {
      const alias = e.target.dataset.unalias;
      if (!alias) return;
      try { await api(`/api/models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias)}`, { method: "DELETE" }); await draw(); } catch (err) { $("#alias-msg").textContent = err.message; $("#alias-msg").className = "error"; }
    });
    await draw();
  },

  async review() {
    const id = document.body.dataset.run;
    const run = await api(`/api/runs/${id}`);
    $("#back").href = `/runs/${run.id}`;
    $("#back").textContent = `← ${run.model} on ${run.dataset}`;
    $("#title").textContent = `Label review of ${run.dataset}`;
    $("#reviews-csv").href = `/api/runs/${run.id}/reviews.csv`;
    $("#corrections-csv").href = `/api/runs/${run.id}/corrections.csv`;
    const params = new URLSearchParams(location.search);
    $("#queue").value = params.get("queue") === "disputed" ? "disputed" : "doubtful";
    const state = { items: [], total: 0, at: Number(params.get("at") || 0), labels: [], item: null };
    const progress = async () => {
      const r = await api(`/api/runs/${run.id}/reviews`);
      $("#progress").textContent = `${count(r.n_reviewed)} item${r.n_reviewed === 1 ? "" : "s"} reviewed by ${r.reviewers.length} reviewer${r.reviewers.length === 1 ? "" : "s"}; ${count(r.n_corrections)} correction${r.n_corrections === 1 ? "" : "s"} agreed`;
      $("#register").disabled = r.n_corrections === 0;
    };
    const load = async () => {
      const q = $("#queue").value === "disputed" ? { disputed: "true" } : { doubtful: "true", sort: "doubt" };
      try {
        const page = await api(`/api/runs/${run.id}/items?${new URLSearchParams({ ...q, limit: 500 })}`);
        state.items = page.items; state.total = page.total; state.labels = page.labels;
      } catch (err) { state.items = []; state.total = 0; }
      $("#empty").hidden = state.items.length > 0;
      if (state.items.length) await show(Math.min(state.at, state.items.length - 1));
      $("#card").hidden = state.items.length === 0; // shown once it holds an item
    };
    const show = async (i) => {
      if (i < 0 || i >= state.items.length) return;
      state.at = i;
      history.replaceState(null, "", `/runs/${run.id}/review?${new URLSearchParams({ queue: $("#queue").value, at: i })}`);
      const it = state.items[i];
      const [d, r] = await Promise.all([api(`/api/runs/${run.id}/items/${it.row}`), api(`/api/runs/${run.id}/reviews?${new URLSearchParams({ items: it.item_id })}`)]);
      state.item = d;
      $("#item-title").textContent = d.item_id;
      $("#position").textContent = `${i + 1} of ${state.items.length}${state.total > state.items.length ? ` (first ${state.items.length} of ${count(state.total)})` : ""}`;
      $("#item-picture").innerHTML = d.kind === "image"
        ? `<img src="/api/runs/${encodeURIComponent(run.id)}/items/${d.row}/image?size=1024" alt="${esc(d.item_id)}">`
        : `<table class="list features"><tbody>${Object.entries(d.columns).map(([k, v]) => `<tr><td>${esc(k)}</td><td class="n">${esc(cellValue(v))}</td></tr>`).join("")}</tbody></table>`;
      const scores = Object.entries(d.scores).sort((a, b) => (b[1] ?? -1) - (a[1] ?? -1)).slice(0, 6).map(([k, v]) => `<div class="score${k === d.predicted ? " mark" : ""}"><span>${esc(k)}</span><div class="track"><div class="fill" data-w="${Math.max(0, Math.min(1, v ?? 0))}"></div></div><b>${num(v, 3)}</b></div>`).join("");
      $("#item-facts").innerHTML = `<p>expert label <b>${esc(d.label ?? "none (disputed)")}</b> · model says <b>${esc(d.predicted ?? "–")}</b>${d.doubtful ? ` · suggested <b>${esc(d.doubtful.model_suggests)}</b>` : ""}</p>`
        + (Object.keys(d.experts).length ? `<p>experts: ${Object.entries(d.experts).map(([k, v]) => `${esc(k)} <b>${esc(v ?? "–")}</b>`).join(", ")}</p>` : "") + scores;
      document.querySelectorAll("#item-facts .fill").forEach((el) => { el.style.width = `${100 * Number(el.dataset.w)}%`; });
      $("#keep-label").textContent = d.label ?? "";
      $("#keep").disabled = d.label === null;
      $("#relabel").innerHTML = state.labels.filter((l) => l !== d.label).map((l, k) => `<button class="secondary" data-decision="relabel" data-label="${esc(l)}">→ ${esc(l)}${k < 9 ? ` <kbd>${k + 1}</kbd>` : ""}</button>`).join(" ");
      const mine = (r.items[d.item_id] || { reviews: [] }).reviews;
      const entry = r.items[d.item_id];
      $("#others").innerHTML = mine.length ? `<table class="list"><tbody>${mine.map((x) => `<tr><td>${esc(x.reviewer)}</td><td>${esc(x.decision === "relabel" ? `relabel → ${x.label}` : x.decision)}</td><td class="muted">${esc(x.note ?? "")}</td><td class="muted">${esc(when(x.reviewed_at))}</td></tr>`).join("")}</tbody></table>${entry && entry.consensus && entry.consensus !== entry.current ? `<p>consensus: <b>${esc(entry.consensus)}</b> (a correction)</p>` : ""}` : "none yet";
      $("#review-note").value = "";
      $("#decision-msg").textContent = "";
      $("#prev").disabled = i === 0; $("#next").disabled = i + 1 >= state.items.length;
    };
    let busy = false; // one decision at a time: a key pressed twice never records twice
    const decide = async (decision, label) => {
      const d = state.item;
      if (!d || busy) return;
      busy = true;
      try {
        await api(`/api/runs/${run.id}/reviews`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ item_id: d.item_id, decision, label: label ?? null, note: $("#review-note").value || null }) });
        await progress();
        if (state.at + 1 < state.items.length) await show(state.at + 1);
        else { await show(state.at); $("#decision-msg").textContent = "recorded: that was the last item of this queue"; }
      } catch (err) { $("#decision-msg").textContent = err.message; $("#decision-msg").className = "error"; } finally { busy = false; }
    };
    $("#card").addEventListener("click", (e) => { const b = e.target.closest("button[data-decision]"); if (b) decide(b.dataset.decision, b.dataset.label); });
    document.addEventListener("keydown", (e) => {
      if (e.target.tagName === "TEXTAREA" || e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
      if (e.key === "k" || e.key === "K") decide("keep");
      else if (e.key === "u" || e.key === "U") decide("unsure");
      else if (/^[1-9]$/.test(e.key)) { const b = document.querySelectorAll("#relabel button")[Number(e.key) - 1]; if (b) decide("relabel", b.dataset.label); }
      else if (e.key === "ArrowRight") show(state.at + 1);
      else if (e.key === "ArrowLeft") show(state.at - 1);
    });
    $("#prev").addEventListener("click", () => show(state.at - 1));
    $("#next").addEventListener("click", () => show(state.at + 1));
    $("#queue").addEventListener("change", () => { state.at = 0; load(); });
    $("#register").addEventListener("click", async () => {
      try {
        const d = await api(`/api/runs/${run.id}/corrections`, { method: "POST" });
        $("#register-msg").innerHTML = `${d.created ? "registered" : "already registered as"} <a href="/datasets/${esc(d.ref)}">${esc(d.ref)}</a>: <a href="/validate">validate on it</a>`;
        $("#register-msg").className = "ok";
      } catch (err) { $("#register-msg").textContent = err.message; $("#register-msg").className = "error"; }
    });
    await progress();
    await load();
  },

  async validate() {
    const [models, datasets] = await Promise.all([api("/api/models"), api("/api/datasets")]);
    const options = models.map((m) => `<option value="${esc(m.ref)}">${esc(m.ref)}${m.aliases.length ? ` [${esc(m.aliases.join(", "))}]` : ""} (${esc(m.labels.join(", "))})</option>`).join("")
      + models.flatMap((m) => m.aliases.map((a) => `<option value="${esc(`${m.name}@${a}`)}">${esc(`${m.name}@${a}`)} (→ ${esc(m.ref)})</option>`)).join("");
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
      $("#models").innerHTML = models.map((m) => `<tr><td><a href="/models/${encodeURIComponent(m.name)}">${esc(m.ref)}</a></td><td>${m.aliases.map((a) => `<span class="pill">${esc(a)}</span>`).join(" ")}</td><td>${esc(m.runtime)}</td><td>${esc(m.labels.join(", "))}</td><td>${esc(m.file_name)}</td><td>${(m.size_bytes / 1024).toFixed(1)} KiB</td><td>${esc(when(m.created_at))}</td></tr>`).join("") || `<tr><td colspan="7" class="muted">No models yet.</td></tr>`;
    };
    let modelFile = null;
    let specFile = null;
    let weightsFile = null; // an OpenVINO IR's .bin, dropped with its .xml
    const take = (files) => {
      for (const f of files) {
        if (/\.(ya?ml|json)$/i.test(f.name)) specFile = f;
        else if (/\.bin$/i.test(f.name)) weightsFile = f;
        else modelFile = f;
      }
      if (modelFile && !$("#model-name").value) $("#model-name").value = modelFile.name.replace(/\.[^.]+$/, "").replace(/[^A-Za-z0-9._-]/g, "-");
      $("#picked").textContent = [modelFile && `model: ${modelFile.name}`, weightsFile && `weights: ${weightsFile.name}`, specFile && `spec: ${specFile.name}`].filter(Boolean).join(" · ");
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
      if (weightsFile && /\.xml$/i.test(modelFile.name)) form.append("weights", weightsFile);
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
    $("#title").textContent = `${d.ref} · ${count(d.n_items)} items`;
    $("#history-link").href = `/datasets/${encodeURIComponent(d.name)}/history`;
    const max = Math.max(...Object.values(d.label_counts), 1);
    $("#balance").innerHTML = Object.entries(d.label_counts).map(([k, v]) => `<div class="hbar"><span>${esc(k)}</span><div data-w="${(100 * v) / max}"></div><b>${v}</b></div>`).join("");
    document.querySelectorAll("#balance [data-w]").forEach((el) => { el.style.width = `${el.dataset.w}%`; });
    $("#columns").innerHTML = d.columns.map((c) => `<code>${esc(c.name)}</code> <span>${esc(c.type)}</span>`).join("<br>");
    $("#notes").innerHTML = [`<p>role: <b>${esc(d.role)}</b></p>`, ...d.notes.map((n) => `<p>${esc(n)}</p>`)].join("");
    const dec = d.decisions;
    $("#decisions").textContent = `${count(dec.n_on_version)} decision${dec.n_on_version === 1 ? "" : "s"} on this version, ${count(dec.n_on_dataset)} on all versions of ${d.name} (${count(dec.n_models)} model version${dec.n_models === 1 ? "" : "s"}). Each verdict taken on a dataset adapts the next model to it a little: a policy's reuse_budget says how many it may serve before the release needs fresh items.`;
    $("#decision-rows").innerHTML = dec.latest.map((x) => `<tr><td>${esc(when(x.decided_at))}</td><td>${esc(x.kind)}</td><td>${badge(x.verdict)}</td><td>${esc(x.model)}</td><td>${esc(x.dataset)}</td><td>${x.run_id ? `<a href="/runs/${esc(x.run_id)}"><code>${esc(x.run_id.slice(0, 10))}</code></a>` : ""}</td></tr>`).join("") || `<tr><td colspan="6" class="muted">No decision yet.</td></tr>`;
    $("#samples").innerHTML = Object.entries(d.samples).map(([label, rows]) => `<h3>${esc(label)}</h3><div class="gallery">${rows.map((r) => (d.kind === "image" ? `<img src="/api/datasets/${encodeURIComponent(d.ref)}/items/${r}/image" alt="row ${r}">` : `<span class="muted">row ${r}</span>`)).join("")}</div>`).join("");
  },

  async history() {
    const name = document.body.dataset.dataset;
    const params = new URLSearchParams(location.search);
    const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(2)}%`);
    const mark = { right: "✓", wrong: "✗", "not judged": "·" };
    const lists = [
      ["broken", "#history-broken", "Broken by the candidate", "every earlier version that judged the item got it right; the candidate gets it wrong or cannot judge it"],
      ["never_right", "#history-never", "Never right", "judged by two versions or more, right in none: the label itself may be wrong (see the doubtful labels)"],
      ["flip_flop", "#history-flips", "Flip back and forth", "right and wrong in turn, two changes or more"],
    ];
    let drawn = 0;
    const draw = async () => {
      const seq = ++drawn;
      const q = new URLSearchParams({ limit: "25" });
      if (params.get("model")) q.set("model", params.get("model"));
      if (params.get("candidate")) q.set("candidate", params.get("candidate"));
      let h;
      try { h = await api(`/api/datasets/${encodeURIComponent(name)}/history?${q}`); }
      catch (err) { $("#history-msg").textContent = err.message; $("#history-msg").className = "error"; return; }
      if (seq !== drawn) return;
      $("#title").textContent = `${h.dataset}: ${count(h.n_items)} items, ${h.versions.length} model version${h.versions.length === 1 ? "" : "s"}`;
      $("#history-download").href = `/api/datasets/${encodeURIComponent(name)}/history.parquet?${q}`;
      const models = [...new Set(h.versions.map((v) => v.model.split("@")[0]))];
      if ($("#history-model").options.length === 1) $("#history-model").innerHTML += models.map((m) => `<option>${esc(m)}</option>`).join("");
      $("#history-model").value = params.get("model") || "";
      $("#history-candidate").innerHTML = h.versions.map((v) => `<option${v.model === h.candidate ? " selected" : ""}>${esc(v.model)}</option>`).join("");
      $("#history-versions").innerHTML = h.versions.map((v, i) => {
        const c = i ? h.churn[i - 1] : null;
        const cells = c && c.rate !== null ? `<td class="n">${pct(c.rate)}</td><td class="n ci">[${pct(c.ci_low)}, ${pct(c.ci_high)}]</td><td class="n">${count(c.n_broken)}</td><td class="n">${count(c.n_fixed)}</td><td class="n">${pval(c.mcnemar_p)}</td>` : `<td colspan="5"></td>`;
        return `<tr${v.model === h.candidate ? ' class="on"' : ""}><td><b>${esc(v.model)}</b></td><td><a href="/runs/${esc(v.run_id)}"><code>${esc(v.run_id.slice(0, 10))}</code></a></td><td>${esc(v.dataset)}</td><td class="n">${count(v.n_judged)}</td><td class="n">${pct(v.accuracy)}</td>${cells}</tr>`;
      }).join("");
      for (const [key, where, title, meaning] of lists) {
        const block = h[key];
        const head = `<tr><th>item</th><th>label</th>${h.versions.map((v) => `<th class="c" title="${esc(v.model)}">${esc(v.model)}</th>`).join("")}</tr>`;
        const rows = block.items.map((it) => `<tr><td><a href="/runs/${esc(it.run_id)}/items?${new URLSearchParams({ item: it.item_id })}">${esc(it.item_id)}</a></td><td>${esc(it.label)}</td>${it.outcomes.map((o, j) => `<td class="c outcome ${o ? o.replace(" ", "-") : "absent"}" title="${esc(o || "not in its dataset")}${it.predicted[j] ? ": " + esc(it.predicted[j]) : ""}">${o ? mark[o] : ""}<span class="muted"> ${esc(it.predicted[j] ?? "")}</span></td>`).join("")}</tr>`).join("");
        $(where).innerHTML = `<h2>${esc(title)}: ${count(block.n)}</h2><p class="muted">${esc(meaning)}${block.n > block.items.length ? `; the first ${block.items.length} are shown, every one is in the matrix download` : ""}.</p>`
          + (block.n ? `<table class="list history">${head}${rows}</table>` : `<p class="muted">None.</p>`);
      }
    };
    const go = () => {
      const next = new URLSearchParams();
      if ($("#history-model").value) next.set("model", $("#history-model").value);
      if ($("#history-candidate").value) next.set("candidate", $("#history-candidate").value);
      window.history.replaceState(null, "", `?${next}`);
      for (const k of ["model", "candidate"]) params.delete(k);
      for (const [k, v] of next) params.set(k, v);
      draw();
    };
    $("#history-model").addEventListener("change", () => { $("#history-candidate").value = ""; go(); });
    $("#history-candidate").addEventListener("change", go);
    await draw();
  },

  async run() {
    const id = document.body.dataset.run;
    const final = ["finished", "failed", "cancelled", "interrupted"];
    $("#cancel").addEventListener("click", async () => { await api(`/api/runs/${id}/cancel`, { method: "POST" }); });
    let r;
    let annotated = false;
    for (;;) {
      r = await api(`/api/runs/${id}`);
      drawHead(r, annotated);
      annotated = true;
      if (final.includes(r.status)) break;
      await new Promise((ok) => setTimeout(ok, 700));
    }
    if (location.pathname !== `/runs/${r.id}`) history.replaceState(null, "", `/runs/${r.id}`);
    $("#save").addEventListener("click", async () => {
      $("#saved").textContent = "";
      try {
        const tags = $("#tags").value.split(",").map((t) => t.trim()).filter(Boolean);
        const body = (o) => ({ method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(o) });
        await api(`/api/runs/${r.id}/tags`, body({ tags }));
        await api(`/api/runs/${r.id}/note`, body({ note: $("#note").value }));
        $("#saved").textContent = "saved";
      } catch (err) {
        $("#saved").textContent = err.message;
        $("#saved").className = "error";
      }
    });
    if (r.status !== "finished") return;
    $("#actions").hidden = false;
    $("#explore").href = `/runs/${r.id}/items`;
    $("#open-report").href = `/runs/${r.id}/report`;
    $("#compare-link").hidden = !r.baseline;
    const files = await api(`/api/runs/${r.id}/files`);
    $("#downloads").innerHTML = files.map((f) => `<a href="/api/runs/${encodeURIComponent(r.id)}/files/${esc(f.name)}" download>${esc(f.name)}</a> <span class="muted">${bytes(f.size_bytes)}</span>`).join(" · ");
    const html = await api(`/api/runs/${r.id}/view`);
    const box = $("#sections");
    box.innerHTML = html;
    if (window.assayReport) window.assayReport(box);
    box.addEventListener("click", (e) => {
      const card = e.target.closest(".card[data-item]");
      if (card) location.href = `/runs/${r.id}/items?${new URLSearchParams({ item: card.dataset.item, open: card.dataset.item })}`;
    });
    if (r.baseline) {
      const base = await api(`/api/runs?${new URLSearchParams({ model: r.baseline, dataset: r.dataset, status: "finished", limit: 1 })}`);
      if (base.runs.length) $("#compare-link").href = `/compare?runs=${r.id},${base.runs[0].id}`;
      else $("#compare-link").hidden = true;
    }
  },
};

function drawHead(r, annotated) {
  $("#title").textContent = `${r.model} on ${r.dataset}`;
  const p = r.progress;
  const pct = r.status === "finished" ? 100 : p && p.total ? (100 * p.done) / p.total : 0;
  $("#bar").style.width = `${pct}%`;
  $("#bar-box").hidden = !["queued", "running"].includes(r.status);
  $("#status").innerHTML = `${badge(r.status)} ${r.verdict ? `verdict ${badge(r.verdict)}` : ""} ${r.headline ? headline(r.headline) : ""}${p && p.total && r.status === "running" ? ` · ${count(p.done)} of ${count(p.total)} items` : ""}${r.error ? ` <div class="error">${esc(r.error)}</div>` : ""}`;
  $("#cancel").hidden = !r.job_id || !["queued", "running"].includes(r.status);
  const facts = [
    ["run", `<code>${esc(r.id)}</code>`],
    ["from", `${esc(r.origin)}${r.engine !== "local" ? ` (${esc(r.engine)})` : ""}${r.created_by ? `, by ${esc(r.created_by)}` : ""}`],
    ["model", `<a href="/models/${esc(r.model.split("@")[0])}">${esc(r.model)}</a>${r.baseline ? ` vs ${esc(r.baseline)}` : ""}`],
    ["dataset", `<a href="/datasets/${esc(r.dataset)}">${esc(r.dataset)}</a>`],
    ["started", esc(when(r.started_at))],
    ["duration", duration(r.duration_s)],
    ["items", r.n_items === null ? "" : `${count(r.n_items)} (${count(r.n_failed)} not judged)`],
  ].filter(([, v]) => v);
  $("#facts").innerHTML = facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
  if (!annotated) {
    $("#tags").value = r.tags.join(", ");
    $("#note").value = r.note || "";
  }
}

// A dataset column's value: numbers to 6 significant digits, nested values as short JSON.
const cellValue = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? String(Number(v.toPrecision(6))) : typeof v === "object" ? JSON.stringify(v).slice(0, 300) : String(v));
const bytes = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);

document.addEventListener("DOMContentLoaded", () => {
  $("#logout")?.addEventListener("click", async () => { await fetch("/api/session", { method: "DELETE", credentials: "same-origin" }); location.href = "/login"; });
  const page = pages[document.body.dataset.page];
  if (page) Promise.resolve().then(page).catch((err) => { const m = document.createElement("p"); m.className = "error"; m.textContent = err.message; document.querySelector("main").prepend(m); });
});
