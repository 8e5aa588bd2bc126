// The reports page's chart: the page's JSON (#chart-data) drawn with plotly.js.
(function () {
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var traces = data.lines.map(function (line) {
    return { x: data.x, y: line.y, name: line.name, type: "scatter", mode: "lines+markers" };
  });
  var layout = {
    margin: { t: 10, r: 10, b: 40, l: 60 },
    yaxis: { title: { text: data.metric + (data.unit ? " (" + data.unit + ")" : "") }, rangemode: "tozero" },
    legend: { orientation: "h" },
    height: 320,
  };
  Plotly.newPlot("chart", traces, layout, { responsive: true, displaylogo: false });
})();
