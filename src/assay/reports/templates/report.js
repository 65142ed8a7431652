// The report's behaviour, the same in report.html and in the web app's run page: figures drawn
// from their data-figure JSON, a table of contents, sections that fold, galleries shown a page
// at a time.
(function () {
  "use strict";
  window.assayReport = function (scope) {
    scope.querySelectorAll("[data-figure]").forEach(function (el) {
      const f = JSON.parse(el.getAttribute("data-figure"));
      if (f && window.Plotly) window.Plotly.newPlot(el, f.data, f.layout, { displaylogo: false, responsive: true });
    });
    const toc = scope.querySelector("nav.toc");
    if (toc && !toc.dataset.filled) {
      toc.dataset.filled = "1";
      scope.querySelectorAll("section[id] > h2:first-child").forEach(function (h) {
        const a = document.createElement("a");
        a.href = "#" + h.parentElement.id;
        a.textContent = h.textContent.replace(/:.*$/, "");
        toc.appendChild(a);
      });
    }
    scope.querySelectorAll("section[id] > h2:first-child").forEach(function (h) {
      h.setAttribute("role", "button");
      h.setAttribute("tabindex", "0");
      h.setAttribute("aria-expanded", "true");
      const fold = function () {
        const closed = h.parentElement.classList.toggle("collapsed");
        h.setAttribute("aria-expanded", String(!closed));
      };
      h.addEventListener("click", fold);
      h.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fold(); } });
    });
    const PAGE = 24;
    scope.querySelectorAll(".gallery").forEach(function (g) {
      const cards = g.querySelectorAll(".card");
      if (cards.length <= PAGE) return;
      cards.forEach(function (c, i) { if (i >= PAGE) c.classList.add("later"); });
      const more = document.createElement("button");
      more.className = "more link";
      const label = function () {
        const hidden = g.querySelectorAll(".card.later").length;
        more.textContent = "show " + Math.min(PAGE, hidden) + " more (" + hidden + " hidden)";
        more.hidden = hidden === 0;
      };
      more.addEventListener("click", function () {
        Array.prototype.slice.call(g.querySelectorAll(".card.later"), 0, PAGE).forEach(function (c) { c.classList.remove("later"); });
        label();
      });
      label();
      g.after(more);
    });
  };
  if (document.querySelector("main.report")) window.assayReport(document);
})();
