// au-report's index: the table of videos, drawn from the data in videos.js (window.AU_REPORT), a page of
// rows at a time (so 5,000 videos load at once), sorted by a click on a column header (again: the other
// way; empty values last), filtered by name. Plain JavaScript, no framework, nothing fetched.
"use strict";
(function () {
  var data = window.AU_REPORT;
  var table = document.getElementById("videos");
  if (!data || !table) { return; }
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  var filter = document.getElementById("filter");
  var sizes = document.getElementById("page-size");
  var status = document.getElementById("status");
  var previous = document.getElementById("previous");
  var next = document.getElementById("next");
  var order = data.rows.map(function (row, i) { return i; });
  var shown = order;
  var page = 0;

  function escape(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c];
    });
  }

  function cell(row, k) {
    var column = data.columns[k];
    var text = row.t[k];
    var kind = column.kind || "";
    if (kind === "link") { return "<td class=\"name\"><a href=\"" + escape(row.href) + "\">" + escape(text) + "</a></td>"; }
    if (kind === "strip") {
      return "<td class=\"strip\">" + (row.strip ? "<img src=\"" + escape(row.strip) + "\" alt=\"AU strip\" width=\"120\" height=\"24\" loading=\"lazy\">" : "") + "</td>";
    }
    return "<td" + (kind === "problems" ? " class=\"problems\"" : "") + ">" + escape(text) + "</td>";
  }

  function render() {
    var size = Number(sizes.value) || shown.length || 1;
    var pages = Math.max(1, Math.ceil(shown.length / size));
    page = Math.min(page, pages - 1);
    var start = page * size;
    var html = shown.slice(start, start + size).map(function (i) {
      var row = data.rows[i];
      var cells = data.columns.map(function (column, k) { return cell(row, k); }).join("");
      return "<tr" + (row.flagged ? " class=\"flagged\"" : "") + ">" + cells + "</tr>";
    });
    body.innerHTML = html.join("");
    status.textContent = shown.length ? "rows " + (start + 1) + "-" + Math.min(start + size, shown.length) + " of " + shown.length
      + (shown.length !== data.rows.length ? " (of " + data.rows.length + ")" : "") : "no video matches";
    previous.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  function applyFilter() {
    var query = filter.value.trim().toLowerCase();
    shown = query ? order.filter(function (i) { return data.rows[i].t[data.name].toLowerCase().indexOf(query) >= 0; }) : order;
    page = 0;
    render();
  }

  function sortBy(k) {
    var th = heads[k];
    var direction = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var numeric = data.columns[k].sort === "number";
    var position = {};
    order.forEach(function (i, p) { position[i] = p; });
    order = order.slice().sort(function (a, b) {
      var x = data.rows[a].v[k], y = data.rows[b].v[k];
      var xn = x === null || x === "", yn = y === null || y === "";
      if (xn || yn) { return xn === yn ? position[a] - position[b] : (xn ? 1 : -1); }
      if (!numeric) { x = String(x).toLowerCase(); y = String(y).toLowerCase(); }
      if (x !== y) { return direction * (x < y ? -1 : 1); }
      return position[a] - position[b];
    });
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
    applyFilter();
  }

  Array.prototype.forEach.call(heads, function (th, k) {
    if (!data.columns[k].sort) { return; }
    th.setAttribute("data-sort", data.columns[k].sort);
    th.title = "sort by this column";
    th.addEventListener("click", function () { sortBy(k); });
  });
  filter.addEventListener("input", applyFilter);
  sizes.addEventListener("change", function () { page = 0; render(); });
  previous.addEventListener("click", function () { page -= 1; render(); });
  next.addEventListener("click", function () { page += 1; render(); });
  render();
})();
