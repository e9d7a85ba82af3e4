// The patient's scores against their dose. Data arrives through json_script, never built as code.
(function () {
  var points = JSON.parse(document.getElementById("history-data").textContent);
  var labels = points.map(function (p) { return p.date; });
  function line(key, label, colour) {
    return { label: label, data: points.map(function (p) { return p[key]; }), borderColor: colour, yAxisID: "scores", spanGaps: true };
  }
  new Chart(document.getElementById("history-chart"), {
    type: "line",
    data: {
      labels: labels,
      datasets: [
        line("pain", "Pain", "#b00020"),
        line("fatigue", "Tiredness", "#6a3d9a"),
        line("sleep", "Sleep", "#1f5fa8"),
        line("mood", "Mood", "#2e7d32"),
        { label: "Dose (mg)", data: points.map(function (p) { return p.dose_mg; }), borderColor: "#555", borderDash: [6, 4], stepped: true, yAxisID: "dose" }
      ]
    },
    options: {
      responsive: true,
      scales: {
        scores: { type: "linear", position: "left", min: 0, max: 10 },
        dose: { type: "linear", position: "right", min: 0, max: 5, grid: { drawOnChartArea: false } }
      }
    }
  });
})();
