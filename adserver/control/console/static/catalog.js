// The catalog import: the chosen file read here, split into rows (a CSV row may hold a
// quoted line break), sent in chunks to /console/catalog/import; progress and the rejected
// rows shown as the answers come back.
(function () {
  var box = document.getElementById("import");
  if (!box) return;
  var CHUNK = 500;
  var status = document.getElementById("import-status");
  var progress = document.getElementById("import-progress");
  var table = document.getElementById("import-rejected");

  function rows(text, csv) {
    var lines = text.replace(/\r\n?/g, "\n").split("\n");
    if (!csv) return lines;
    var out = [], open = false, row = null;
    lines.forEach(function (line) {
      row = row === null ? line : row + "\n" + line;
      open = open !== ((line.split('"').length - 1) % 2 === 1);
      if (!open) { out.push(row); row = null; }
    });
    if (row !== null) out.push(row);
    return out;
  }

  function reject(r) {
    var tr = document.createElement("tr");
    [r.line, r.id || "", r.reason].forEach(function (v) {
      var td = document.createElement("td");
      td.textContent = String(v);
      tr.appendChild(td);
    });
    table.tBodies[0].appendChild(tr);
    table.hidden = false;
  }

  async function run(file) {
    var text = await file.text();
    var csv = /\.csv$/i.test(file.name) || (!/^\s*\{/.test(text) && /^[^\n]*\bid\b/.test(text));
    var all = rows(text, csv);
    var header = csv ? all.shift() : "";
    var first = csv ? 2 : 1, done = 0, upserted = 0, rejected = 0;
    table.tBodies[0].textContent = "";
    progress.max = Math.max(all.length, 1);
    for (var i = 0; i < all.length; i += CHUNK) {
      var lines = all.slice(i, i + CHUNK);
      var r = await fetch("/console/catalog/import", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": box.dataset.csrf },
        body: JSON.stringify({
          network_id: Number(box.dataset.network), format: csv ? "csv" : "jsonl",
          header: header, lines: lines, first_line: first + i,
        }),
      });
      var answer = await r.json();
      if (!r.ok) { status.textContent = "stopped: " + (answer.error || r.status); return; }
      upserted += answer.upserted;
      rejected += answer.rejected.length;
      answer.rejected.forEach(reject);
      done += lines.length;
      progress.value = done;
      status.textContent = done + " of " + all.length + " rows read";
    }
    status.textContent = "done: " + upserted + " imported, " + rejected + " rejected";
  }

  document.getElementById("import-start").addEventListener("click", function () {
    var file = document.getElementById("import-file").files[0];
    if (!file) { status.textContent = "choose a file first"; return; }
    run(file).catch(function (e) { status.textContent = "stopped: " + e; });
  });
})();
