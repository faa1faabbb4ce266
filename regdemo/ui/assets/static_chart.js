// A static Plotly chart (compare and sweep figures), redrawn only when its figure changes.
export default function ({ parentElement, data }) {
  let div = parentElement.querySelector(":scope > .rd-static");
  if (!div) {
    div = document.createElement("div");
    div.className = "rd-static";
    div.dataset.chart = data.key;
    parentElement.append(div);
  }
  if (div.__spec === data.spec) return;  // an unchanged figure costs nothing
  div.__spec = data.spec;
  if (!div.offsetWidth) {
    // In a tab not shown yet: Plotly would lay out a zero-width chart (NaN paths). Draw
    // when the chart gets its size.
    if (!div.__waiting) {
      div.__waiting = new ResizeObserver(() => {
        if (!div.offsetWidth) return;
        div.__waiting.disconnect();
        div.__waiting = null;
        const spec = div.__spec;
        div.__spec = null;
        draw(spec);
      });
      div.__waiting.observe(div);
    }
    return;
  }
  draw(data.spec);
  function draw(spec) {
    div.__spec = spec;
    loadPlotly(data.plotly).then((Plotly) => plot(Plotly, spec))
      .catch((err) => console.error("regdemo chart:", err));
  }
  function plot(Plotly, spec) {
    const fig = JSON.parse(spec);
    const layout = Object.assign({ paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
                                   autosize: true }, fig.layout || {});
    layout.font = Object.assign({ family: '"Source Sans", "Source Sans Pro", sans-serif',
                                  color: "#31333F", size: 13 }, layout.font || {});
    return Plotly.react(div, fig.data || [], layout, { responsive: true, displaylogo: false });
  }
}
