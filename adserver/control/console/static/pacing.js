// The pacing page's charts: the day's cumulative plan against delivery, and a custom curve.
(function () {
  var data = JSON.parse(document.getElementById("pacing-data").textContent);
  var hours = function (n) { var h = []; for (var i = 1; i <= n; i++) h.push(i); return h; };
  var layout = function (title) {
    return { margin: { t: 10, r: 10, b: 40, l: 60 }, height: 300, legend: { orientation: "h" },
             xaxis: { title: { text: "hour of the day" }, dtick: 2 },
             yaxis: { title: { text: title }, rangemode: "tozero" } };
  };
  var config = { responsive: true, displaylogo: false };
  if (document.getElementById("pacing-chart")) {
    Plotly.newPlot("pacing-chart", [
      { x: hours(data.plan.length), y: data.plan, name: "plan in force", type: "scatter", mode: "lines" },
      { x: hours(data.day_plan.length), y: data.day_plan, name: "the day's own plan", type: "scatter",
        mode: "lines", line: { dash: "dot" } },
      { x: hours(data.actual.length), y: data.actual, name: "delivered", type: "scatter", mode: "lines+markers" },
    ], layout(data.metric), config);
  }
  if (document.getElementById("curve-chart")) {
    var total = data.curve.reduce(function (a, b) { return a + b; }, 0) || 1;
    Plotly.newPlot("curve-chart", [{
      x: data.curve.map(function (_, i) { return i; }),
      y: data.curve.map(function (w) { return w / total; }), type: "bar", name: "share",
    }], layout("share of the day"), config);
  }
})();
