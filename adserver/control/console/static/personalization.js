// The personalization page's chart: each policy's expected reward and its interval.
(function () {
  var rows = JSON.parse(document.getElementById("pz-data").textContent);
  Plotly.newPlot("pz-chart", [{
    type: "bar",
    x: rows.map(function (r) { return r.name; }),
    y: rows.map(function (r) { return r.reward; }),
    error_y: {
      type: "data", symmetric: false,
      array: rows.map(function (r) { return r.high === null ? 0 : r.high - r.reward; }),
      arrayminus: rows.map(function (r) { return r.low === null ? 0 : r.reward - r.low; }),
    },
  }], {
    margin: { t: 10, r: 10, b: 40, l: 60 }, height: 300,
    yaxis: { title: { text: "expected reward" }, rangemode: "tozero" },
  }, { responsive: true, displaylogo: false });
})();
