// au-report: click a column header to sort the table by it (again: the other way). Numbers sort by
// the cell's data-v value (empty: last, whichever the direction), text by the cell's text.
"use strict";
(function () {
  function sortBy(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    var column = th.cellIndex;
    var numeric = th.getAttribute("data-sort") === "number";
    var direction = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, position) {
      var cell = row.cells[column];
      var raw = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
      var key = numeric ? (raw === "" ? NaN : Number(raw)) : raw.toLowerCase();
      return { row: row, key: key, position: position };
    });
    keyed.sort(function (a, b) {
      if (numeric) {
        var an = isNaN(a.key), bn = isNaN(b.key);
        if (an || bn) { return an === bn ? a.position - b.position : (an ? 1 : -1); }
        if (a.key !== b.key) { return direction * (a.key - b.key); }
      } else if (a.key !== b.key) {
        return direction * (a.key < b.key ? -1 : 1);
      }
      return a.position - b.position;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (k) { fragment.appendChild(k.row); });
    body.appendChild(fragment);
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
    th.title = "sort by this column";
  });
})();
