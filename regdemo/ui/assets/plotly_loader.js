// Loads Plotly once per page from the server's own route; the board and the static charts
// both start with this file (ui/board.py joins it to each component's module).
function loadPlotly(url) {
  // One load per page, shared by every board and chart (and every rerun).
  if (!window.__regdemoPlotly) {
    window.__regdemoPlotly = new Promise((resolve, reject) => {
      if (window.Plotly) return resolve(window.Plotly);
      const s = document.createElement("script");
      s.src = url;
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => { window.__regdemoPlotly = null; reject(new Error("plotly")); };
      document.head.appendChild(s);
    });
  }
  return window.__regdemoPlotly;
}
