// A tiny inline line chart (SVG) of a curve over x in 0..1, e.g. a deletion curve.
const SVG = "http://www.w3.org/2000/svg";

/**
 * An SVG of `values` (equally spaced over x = 0..1) on a y range of 0..`top` (default: the
 * larger of 1 and the maximum), with the area under the curve shaded.
 */
export function sparkline(values: number[], width = 64, height = 18, top?: number): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "xw-sparkline");
  const finite = values.filter((v) => Number.isFinite(v));
  if (values.length < 2 || finite.length !== values.length) return svg;
  const hi = top ?? Math.max(1, ...finite);
  const pts = values.map((v, i) => {
    const x = (i / (values.length - 1)) * (width - 2) + 1;
    const y = height - 1 - (Math.max(0, v) / hi) * (height - 2);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const area = document.createElementNS(SVG, "polygon");
  area.setAttribute("points", `1,${height - 1} ${pts.join(" ")} ${width - 1},${height - 1}`);
  area.setAttribute("fill", "rgba(47,111,223,.18)");
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", pts.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#2f6fdf");
  line.setAttribute("stroke-width", "1.2");
  svg.append(area, line);
  return svg;
}
