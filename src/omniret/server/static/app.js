/* omniret search page: plain JS, no build step. Talks to the JSON API of the same origin. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const form = $("search-form"), q = $("q"), fileInput = $("file"), zone = $("drop-zone");
  const results = $("results"), statusEl = $("status"), errorEl = $("error");
  let previewUrl = null;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children || []) if (c) node.appendChild(c);
    return node;
  }

  function showError(msg) {
    errorEl.textContent = msg || "";
    errorEl.hidden = !msg;
  }

  function options() {
    const out = {};
    const k = parseInt($("k").value, 10);
    if (k > 0) out.k = Math.min(k, 1000);
    if ($("modality").value) out.modality = [$("modality").value];
    if ($("path-glob").value.trim()) out.path_glob = $("path-glob").value.trim();
    if ($("granularity").value) out.granularity = $("granularity").value;
    for (const id of ["compose", "hubness", "hybrid"]) if ($(id).value) out[id] = $(id).value;
    return out;
  }

  function clearResults() {
    results.replaceChildren();
    statusEl.textContent = "";
  }

  async function runSearch(extra) {
    showError("");
    clearResults();  /* a new query never shows the last one's results under its own status or error */
    const opts = Object.assign(options(), extra || {});
    const text = q.value.trim();
    const file = fileInput.files && fileInput.files[0];
    let init;
    if (file && !opts.like) {
      const fd = new FormData();
      fd.append("file", file, file.name);
      if (text) fd.append("text", text);
      for (const [key, v] of Object.entries(opts)) {
        if (Array.isArray(v)) v.forEach((x) => fd.append(key, x)); else fd.append(key, String(v));
      }
      init = { method: "POST", body: fd };
    } else {
      if (!text && !opts.like) { showError("Type a query, or drop an image or sound."); return; }
      if (text && !opts.like) opts.text = text;
      init = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(opts) };
    }
    statusEl.textContent = "Searching…";
    results.setAttribute("aria-busy", "true");
    try {
      const resp = await fetch("/search", init);
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(data.error || ("search failed: HTTP " + resp.status));
      render(data.hits || []);
      const what = opts.like ? "items like the chosen one" : (file ? (text ? "composed query" : "query by example") : "text query");
      statusEl.textContent = `${data.hits.length} result(s) for ${what} in ${Math.round(data.took_ms)} ms`;
    } catch (e) {
      statusEl.textContent = "";
      showError(e.message);
    } finally {
      results.removeAttribute("aria-busy");
    }
  }

  function timeFragment(span) {
    return span && span.length === 2 ? `#t=${Number(span[0]).toFixed(2)},${Number(span[1]).toFixed(2)}` : "";
  }

  function visual(hit) {
    if (hit.modality === "video") {
      return el("video", { controls: "", preload: "metadata", src: hit.media_url + timeFragment(hit.span),
        poster: hit.thumb_url, "aria-label": "Video " + hit.name });
    }
    if (hit.modality === "audio") {
      return el("audio", { controls: "", preload: "metadata", src: hit.media_url + timeFragment(hit.span),
        "aria-label": "Audio " + hit.name });
    }
    if (!hit.thumb_url) return null;
    const img = el("img", { src: hit.thumb_url, alt: hit.name, loading: "lazy", class: "result-img" });
    const box = el("div", { class: "thumb" }, [img]);
    const rects = boxesOf(hit);
    if (rects.length) {
      const draw = () => placeBoxes(box, img, rects);
      if (img.complete && img.naturalWidth) requestAnimationFrame(draw);  // cached: once the card is laid out
      else img.addEventListener("load", draw, { once: true });
    }
    return box;
  }

  function isBox(r) {  /* [x0, y0, x1, y1] as fractions of the page, origin top-left */
    return Array.isArray(r) && r.length === 4 && r.every((x) => typeof x === "number" && x >= 0 && x <= 1)
      && r[2] > r[0] && r[3] > r[1];
  }

  function boxesOf(hit) {  /* the hit's own region or block, and the matched blocks of a page hit */
    const md = hit.metadata || {};
    const out = [];
    if (isBox(md.region)) out.push(md.region); else if (isBox(md.bbox)) out.push(md.bbox);
    for (const m of Array.isArray(md.matched) ? md.matched : []) if (m && isBox(m.bbox)) out.push(m.bbox);
    return out;
  }

  function placeBoxes(box, img, rects) {
    /* object-fit: contain letterboxes the page inside the card's 4:3 frame: map page fractions onto the
       picture as drawn, as percentages of the frame (they stay right when the card is resized) */
    const cw = box.clientWidth, ch = box.clientHeight, nw = img.naturalWidth, nh = img.naturalHeight;
    if (!cw || !ch || !nw || !nh) return;
    const s = Math.min(cw / nw, ch / nh), ox = (cw - nw * s) / 2, oy = (ch - nh * s) / 2;
    rects.forEach((r, i) => {
      const outline = el("div", { class: i ? "region matched" : "region", "aria-hidden": "true" });
      outline.style.left = ((ox + r[0] * nw * s) / cw) * 100 + "%";
      outline.style.top = ((oy + r[1] * nh * s) / ch) * 100 + "%";
      outline.style.width = (((r[2] - r[0]) * nw * s) / cw) * 100 + "%";
      outline.style.height = (((r[3] - r[1]) * nh * s) / ch) * 100 + "%";
      box.appendChild(outline);
    });
  }

  function pageOf(hit) {  /* ingest numbers pages from 1: metadata.page, and span = [page, page] */
    const p = hit.metadata && hit.metadata.page;
    return Number.isInteger(p) ? p : (hit.span ? Number(hit.span[0]) : null);
  }

  function card(hit, rank) {
    const where = hit.span && hit.modality !== "text"
      ? (hit.modality === "document" ? ` · page ${pageOf(hit)}` : ` · ${Number(hit.span[0]).toFixed(1)}s`) : "";
    const more = el("button", { type: "button", class: "secondary more-like",
      "aria-label": `More like ${hit.name}`, text: "More like this" });
    more.addEventListener("click", () => runSearch({ like: [hit.id] }));
    const body = el("div", { class: "body" }, [
      el("span", { class: "name", text: hit.label || hit.name, title: hit.uri }),
      el("span", { class: "meta", text: `#${rank} · ${hit.modality} · ${hit.score.toFixed(3)}${where}` }),
      hit.modality === "text" && hit.text ? el("p", { class: "snippet", text: hit.text.slice(0, 400) }) : null,
      el("div", { class: "actions" }, [more,
        el("a", { href: hit.media_url, target: "_blank", rel: "noopener", text: "Open" })]),
    ]);
    return el("li", { class: "hit", "data-id": hit.id, "data-modality": hit.modality }, [visual(hit), body]);
  }

  function render(hits) {
    results.replaceChildren(...hits.map((h, i) => card(h, i + 1)));
  }

  function setFile(file) {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    const has = !!file;
    $("query-preview").hidden = !has;
    const img = $("query-preview-img");
    if (!has) { fileInput.value = ""; img.hidden = true; img.removeAttribute("src"); return; }
    $("query-preview-name").textContent = file.name;
    if (file.type.startsWith("image/")) { previewUrl = URL.createObjectURL(file); img.src = previewUrl; img.hidden = false; }
    else { img.hidden = true; }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); runSearch(); });
  fileInput.addEventListener("change", () => { setFile(fileInput.files[0]); if (fileInput.files[0]) runSearch(); });
  $("clear-file").addEventListener("click", () => { setFile(null); q.focus(); });
  for (const ev of ["dragenter", "dragover"]) {
    zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.remove("dragging"); });
  }
  zone.addEventListener("drop", (e) => {
    const files = e.dataTransfer && e.dataTransfer.files;
    if (!files || !files.length) return;
    const dt = new DataTransfer();
    dt.items.add(files[0]);
    fileInput.files = dt.files;
    setFile(files[0]);
    runSearch();
  });

  fetch("/healthz").then((r) => r.json()).then((h) => {
    $("index-info").textContent = `${h.items} items · model ${h.model}`;
  }).catch(() => {});
})();
