// The patient chart's scores over the LDN dose, and the wallet card's print button.
// Data arrives through json_script, never built as code (no inline script: strict CSP).
// The x axis is linear in days since 1970-01-01, so time is to scale without a date adapter.
(function () {
  "use strict";

  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  var source = document.getElementById("score-data");
  var canvas = document.getElementById("score-chart");
  if (!source || !canvas || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var DAY = 86400000;

  function iso(x) { return new Date(Math.round(x) * DAY).toISOString().slice(0, 10); }

  function scores(key) {
    return data.scores.map(function (p) { return { x: p.x, y: p[key] }; });
  }

  // Colour, dash and point shape differ for each line, so no line is told apart by colour alone.
  function scoreLine(key, label, colour, dash, point) {
    return {
      label: label, data: scores(key), yAxisID: "scores", borderColor: colour, backgroundColor: colour,
      borderDash: dash, pointStyle: point, pointRadius: 3, borderWidth: 2, spanGaps: true, tension: 0
    };
  }

  function dosePoints() {
    return data.dose.map(function (p) { return { x: p.x, y: p.mg }; });
  }

  function holdPoints() {
    var points = [];
    data.holds.forEach(function (h) {
      if (points.length) { points.push({ x: h.x0, y: null }); }
      points.push({ x: h.x0, y: h.mg }, { x: h.x1, y: h.mg });
    });
    return points;
  }

  var xs = data.scores.map(function (p) { return p.x; }).concat(data.dose.map(function (p) { return p.x; }));
  var first = xs.length ? Math.min.apply(null, xs) : data.start;

  // Held periods shaded across both panels (scores and dose), drawn under the lines.
  var shadeHolds = {
    id: "shadeHolds",
    beforeDatasetsDraw: function (chart) {
      var area = chart.chartArea;
      var x = chart.scales.x;
      var ctx = chart.ctx;
      ctx.save();
      ctx.fillStyle = "rgba(212, 167, 44, 0.18)";
      data.holds.forEach(function (h) {
        var left = Math.max(x.getPixelForValue(h.x0), area.left);
        var right = Math.min(x.getPixelForValue(h.x1), area.right);
        if (right > left) { ctx.fillRect(left, area.top, right - left, area.bottom - area.top); }
      });
      ctx.restore();
    }
  };

  new Chart(canvas, {
    type: "line",
    data: {
      datasets: [
        scoreLine("pain", "Pain", "#b00020", [], "circle"),
        scoreLine("fatigue", "Fatigue", "#6a3d9a", [6, 3], "triangle"),
        scoreLine("sleep", "Sleep quality", "#1f5fa8", [2, 2], "rect"),
        scoreLine("mood", "Mood", "#2e7d32", [8, 3, 2, 3], "rectRot"),
        {
          label: "LDN dose (mg)", data: dosePoints(), yAxisID: "dose", stepped: "before", borderColor: "#12324f",
          backgroundColor: "rgba(18, 50, 79, 0.12)", fill: "origin", borderWidth: 2, pointRadius: 0, pointStyle: "line",
          spanGaps: false
        },
        {
          label: "Held", data: holdPoints(), yAxisID: "dose", borderColor: "#b07800", backgroundColor: "#b07800",
          borderWidth: 5, pointRadius: 0, pointStyle: "line", spanGaps: false
        }
      ]
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      scales: {
        x: {
          type: "linear", min: first, max: data.end,
          ticks: { maxTicksLimit: 8, callback: function (value) { return iso(value); } }
        },
        // Stacked axes: the first listed is drawn at the bottom, so the dose sits under the scores.
        dose: {
          type: "linear", position: "left", min: 0, max: 5, stack: "chart", stackWeight: 1.4,
          ticks: { stepSize: 1.5 }, title: { display: true, text: "Dose (mg)" }
        },
        scores: {
          type: "linear", position: "left", min: 0, max: 10, stack: "chart", stackWeight: 3, offset: true,
          ticks: { stepSize: 2 }, title: { display: true, text: "Score 0–10" }
        }
      },
      plugins: {
        legend: { position: "bottom", labels: { usePointStyle: true } },
        tooltip: {
          callbacks: {
            title: function (items) { return items.length ? iso(items[0].parsed.x) : ""; },
            label: function (item) {
              return item.dataset.label + ": " + (item.parsed.y === null ? "–" : item.parsed.y);
            }
          }
        }
      }
    },
    plugins: [shadeHolds]
  });
})();
