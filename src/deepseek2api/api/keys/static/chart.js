/* A tiny SVG chart module for the keys page: stacked bars and lines, no dependencies, no build step.
 *
 * DSChart.bars(node, {times, series: [{name, values}]}) and DSChart.lines(node, same) draw into `node`
 * with a viewBox (scales to any width, phone included); colours come from the stylesheet's --s0…--s7,
 * so light and dark follow the system. Text goes in with textContent only.
 */
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 600, H = 190, L = 44, R = 8, T = 8, B = 22;
  const COLOURS = 8;

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  function colour(index) { return `var(--s${index % COLOURS})`; }

  function short(value) {
    if (value >= 1e9) return `${(value / 1e9).toFixed(1)}G`;
    if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
    if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
    if (value > 0 && value < 10 && !Number.isInteger(value)) return value.toFixed(2);
    return String(Math.round(value));
  }

  function timeLabel(seconds, span) {
    const d = new Date(seconds * 1000);
    if (span >= 86400 * 2) return `${d.getMonth() + 1}/${d.getDate()}`;
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= value) return m * p;
    return 10 * p;
  }

  function frame(node, times, max, title) {
    node.textContent = "";
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title || "chart" }, null);
    const plotH = H - T - B;
    for (let i = 0; i <= 3; i++) {
      const y = T + plotH - (plotH * i) / 3;
      svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: i ? "gridline" : "axis" }, root);
      const label = svg("text", { x: L - 4, y: y + 3, "text-anchor": "end" }, root);
      label.textContent = short((max * i) / 3);
    }
    const span = times.length > 1 ? times[times.length - 1] - times[0] : 0;
    const picks = times.length > 1 ? [0, Math.floor((times.length - 1) / 2), times.length - 1] : [0];
    for (const i of picks) {
      if (times[i] === undefined) continue;
      const x = L + ((W - L - R) * (i + 0.5)) / times.length;
      const label = svg("text", { x, y: H - 6, "text-anchor": i === 0 ? "start" : i === times.length - 1 ? "end" : "middle" }, root);
      label.textContent = timeLabel(times[i], span);
    }
    node.appendChild(root);
    return root;
  }

  function legend(node, series) {
    const box = document.createElement("div");
    box.className = "legend";
    series.forEach((s, i) => {
      const item = document.createElement("span");
      item.textContent = s.name;
      item.style.setProperty("--swatch", colour(i));
      box.appendChild(item);
    });
    node.appendChild(box);
  }

  function empty(node, series, zeroCounts) {
    // bars of nothing say nothing; a line of zeros (an empty queue) does
    const total = series.reduce((sum, s) => sum + s.values.reduce((a, v) => a + (zeroCounts ? (v === null || v === undefined ? 0 : 1) : (v || 0)), 0), 0);
    if (series.length && total > 0) return false;
    node.textContent = "";
    const note = document.createElement("div");
    note.className = "empty";
    note.textContent = "nothing in this range yet";
    node.appendChild(note);
    return true;
  }

  function bars(node, data) {
    const { times, series } = data;
    if (empty(node, series)) return;
    const totals = times.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
    const max = niceMax(Math.max(...totals));
    const root = frame(node, times, max, data.title);
    const plotH = H - T - B, slot = (W - L - R) / times.length, width = Math.max(1, slot * 0.8);
    times.forEach((_, i) => {
      let base = 0;
      series.forEach((s, k) => {
        const value = s.values[i] || 0;
        if (!value) return;
        const h = (plotH * value) / max, y = T + plotH - ((plotH * base) / max) - h;
        svg("rect", { x: L + slot * i + (slot - width) / 2, y, width, height: Math.max(0.5, h), fill: colour(k) }, root)
          .appendChild(svg("title", {})).textContent = `${s.name}: ${short(value)}`;
        base += value;
      });
    });
    legend(node, series);
  }

  function lines(node, data) {
    const { times, series } = data;
    if (empty(node, series, true)) return;
    const max = niceMax(Math.max(...series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined))));
    const root = frame(node, times, max, data.title);
    const plotH = H - T - B, slot = (W - L - R) / times.length;
    series.forEach((s, k) => {
      let path = "";
      let pen = false;
      s.values.forEach((value, i) => {
        if (value === null || value === undefined) { pen = false; return; }
        const x = L + slot * (i + 0.5), y = T + plotH - (plotH * value) / max;
        path += `${pen ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
        pen = true;
      });
      if (path) svg("path", { d: path, class: "line", stroke: colour(k) }, root);
      const points = s.values.filter((v) => v !== null && v !== undefined).length;
      if (points <= 90) {
        s.values.forEach((value, i) => {
          if (value === null || value === undefined) return;
          svg("circle", { cx: L + slot * (i + 0.5), cy: T + plotH - (plotH * value) / max, r: 2.2, fill: colour(k) }, root);
        });
      }
    });
    legend(node, series);
  }

  window.DSChart = { bars, lines };
})();
