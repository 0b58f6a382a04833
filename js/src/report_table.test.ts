// Render tests of the ReportTable ESM with a mock model (happy-dom).
import { afterEach, describe, expect, it } from "vitest";
import widget from "./report_table";
import { mountWidget } from "./lib/testing";

const XSS = '<img src=x onerror="window.__xss=1">';

afterEach(() => {
  document.body.innerHTML = "";
});

function render(extra: Record<string, unknown> = {}) {
  return mountWidget(widget, {
    columns: ["class", "precision", "recall", "f1-score", "support"],
    rows: [
      ["cat", "0.900", "0.800", "0.847", "10"],
      [XSS, "0.500", "0.600", "0.545", "5"],
    ],
    footer: [["accuracy", "", "", "0.733", "15"]],
    highlight: -1,
    selected_row: -1,
    title: "Classification report",
    ...extra,
  });
}

describe("ReportTable render", () => {
  it("draws header, body and footer as text", () => {
    const { el } = render();
    const head = Array.from(el.querySelectorAll("thead th")).map((t) => t.textContent);
    expect(head).toEqual(["class", "precision", "recall", "f1-score", "support"]);
    const body = Array.from(el.querySelectorAll("tbody tr")).map((r) => Array.from(r.children).map((c) => c.textContent));
    expect(body[1]).toEqual([XSS, "0.500", "0.600", "0.545", "5"]);
    expect(el.querySelector("table img")).toBeNull();
    expect(el.querySelector("tfoot")!.textContent).toContain("accuracy");
    expect(el.querySelector(".xw-title")!.textContent).toBe("Classification report");
  });

  it("a row click sets selected_row and highlights it; highlight follows the model", () => {
    const { el, model, saved, cleanup, listeners } = render();
    const highlighted = () => Array.from(el.querySelectorAll(".xw-rt-highlight")).map((r) => r.getAttribute("data-row"));
    el.querySelector<HTMLElement>('tbody tr[data-row="1"]')!.click();
    expect(model.get("selected_row")).toBe(1);
    expect(model.get("highlight")).toBe(1);
    expect(highlighted()).toEqual(["1"]);
    expect(saved).toHaveLength(1);
    model.set("highlight", 0); // a confusion cell of true class 0 was clicked
    expect(highlighted()).toEqual(["0"]);
    // the same report row again: selected_row does not change, the highlight does
    el.querySelector<HTMLElement>('tbody tr[data-row="1"]')!.click();
    expect(model.get("highlight")).toBe(1);
    expect(highlighted()).toEqual(["1"]);
    (cleanup as () => void)();
    expect(el.children).toHaveLength(0);
    for (const set of listeners.values()) expect(set.size).toBe(0);
  });
});
