// Render tests of the CEMWidget ESM with a mock model (happy-dom + recording canvas mock).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import widget, { isCurrent } from "./cem_widget";
import { f32, installCanvasMock, mockModel, mountWidget, pixels } from "./lib/testing";

let restore: () => void;
beforeEach(() => {
  restore = installCanvasMock();
});
afterEach(() => {
  restore();
  vi.useRealTimers();
  document.body.innerHTML = "";
});

const XSS = '<img src=x onerror="window.__xss=1">';
const SETTINGS = { kappa: 0.2, beta: 0.1, gamma: 0, c_init: 10, max_iterations: 100 };

function panel(mode: string, extra: Record<string, unknown> = {}) {
  return {
    mode,
    status: "found",
    complete: true,
    class: mode === "PN" ? 9 : 4,
    label: mode === "PN" ? XSS : "four",
    probability: mode === "PN" ? 0.61 : 0.83,
    steps: 100,
    total_steps: 100,
    c: 10,
    distance: 1.5,
    message: "",
    ...extra,
  };
}

// a 2x2 grey original; PN adds +0.5 at pixel 0, PP keeps pixel 3 (delta -0.25 there)
function frame(generation: number, panels = [panel("PN"), panel("PP")], settings = SETTINGS) {
  return {
    generation,
    settings,
    panels,
    images: f32([0.5, 0, 0, 0, 0, 0, 0, 1], [2, 2, 2, 1]),
    deltas: f32([0.5, 0, 0, 0, 0, 0, 0, -0.25], [2, 2, 2, 1]),
  };
}

function state(extra: Record<string, unknown> = {}) {
  return {
    ...SETTINGS,
    modes: ["PN", "PP"],
    original: f32([0, 0, 0, 1], [2, 2, 1]),
    original_label: "4",
    original_proba: 0.97,
    frame: frame(3),
    generation: 3,
    running: false,
    has_autoencoder: false,
    ranges: { kappa: [0, 1, 0.01], beta: [0, 1, 0.01], gamma: [0, 200, 1], c_init: [0.01, 1000, 0], max_iterations: [10, 1000, 10] },
    show_advanced: false,
    cell_size: 40,
    title: "CEM",
    error: "",
    progress: -1,
    ...extra,
  };
}

const mount = (extra: Record<string, unknown> = {}) => mountWidget(widget, state(extra));

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("CEMWidget render", () => {
  it("draws the original, PN and PP with class labels as text and two delta maps", () => {
    const { el } = mount();
    const images = el.querySelectorAll('canvas[data-kind="image"]');
    expect(Array.from(images).map((c) => c.getAttribute("data-panel"))).toEqual(["original", "PN", "PP"]);
    expect(el.querySelectorAll('canvas[data-kind="delta"]').length).toBe(2);
    const labels = Array.from(el.querySelectorAll(".xw-cem-class")).map((n) => n.textContent);
    expect(labels).toEqual([`${XSS} 0.61`, "four 0.83"]);
    expect(el.querySelector("img")).toBeNull();
    expect((window as unknown as { __xss?: number }).__xss).toBeUndefined();
    // the PN delta: pixel 0 red (added), the rest near white/grey; the PP delta pixel 3 blue
    const pn = pixels.get(el.querySelector('canvas[data-panel="PN"][data-kind="delta"]')!)!;
    expect(pn[0]).toBeGreaterThan(200);
    expect(pn[2]).toBeLessThan(120);
    const pp = pixels.get(el.querySelector('canvas[data-panel="PP"][data-kind="delta"]')!)!;
    expect(pp[12 + 2]).toBeGreaterThan(pp[12]);
    expect(el.querySelector(".xw-cem-body")!.getAttribute("data-generation")).toBe("3");
    const ticks = Array.from(el.querySelectorAll(".xw-cbar-tick")).map((t) => t.textContent);
    expect(ticks).toContain("0");
  });

  it("says 'no PN found' instead of an empty picture", async () => {
    const { el, model } = mount();
    model.set("frame", frame(3, [panel("PN", { status: "not_found", message: "no PN found at this kappa" }), panel("PP")]));
    await flush();
    expect(el.querySelector('canvas[data-panel="PN"]')).toBeNull();
    const empty = el.querySelector('.xw-cem-empty[data-panel="PN"][data-kind="image"]')!;
    expect(empty.textContent).toBe("no PN found at this kappa");
    expect(empty.getAttribute("data-status")).toBe("not_found");
    expect(el.querySelector('canvas[data-panel="PP"][data-kind="image"]')).not.toBeNull();
  });

  it("never draws a frame of an older generation or of other settings", async () => {
    const { el, model } = mount();
    const before = pixels.get(el.querySelector('canvas[data-panel="PN"][data-kind="image"]')!);
    // the user moved kappa: the frame on screen fades, nothing new is drawn from it
    model.set("kappa", 0.5);
    await flush();
    expect(el.querySelector(".xw-cem-stale")).not.toBeNull();
    expect(el.querySelector(".xw-cem-body")!.getAttribute("data-current")).toBe("false");
    // a late frame of the superseded generation arrives: still not current
    model.set("generation", 4);
    model.set("frame", { ...frame(3), images: f32([1, 1, 1, 1, 1, 1, 1, 1], [2, 2, 2, 1]) });
    await flush();
    expect(el.querySelector(".xw-cem-body")!.getAttribute("data-generation")).toBe("3");
    expect(el.querySelector(".xw-cem-body")!.getAttribute("data-current")).toBe("false");
    const still = pixels.get(el.querySelector('canvas[data-panel="PN"][data-kind="image"]')!);
    expect(still).toEqual(before); // the kept, faded picture is the last current one
    // the current generation's frame for kappa 0.5 draws
    model.set("frame", { ...frame(4, undefined, { ...SETTINGS, kappa: 0.5 }), images: f32([1, 0, 1, 0, 0, 0, 0, 1], [2, 2, 2, 1]) });
    await flush();
    expect(el.querySelector(".xw-cem-stale")).toBeNull();
    expect(el.querySelector(".xw-cem-body")!.getAttribute("data-generation")).toBe("4");
  });

  it("shows streamed best-so-far steps and 'searching' for a mode never found yet", async () => {
    const first = frame(3, [panel("PN", { complete: false, steps: 20 }), panel("PP", { status: "searching", complete: false, steps: 20 })]);
    const { el } = mount({ running: true, frame: first });
    const captions = Array.from(el.querySelectorAll(".xw-cem-caption")).map((c) => c.textContent);
    expect(captions).toContain("best so far · step 20 of 100");
    expect(captions).toContain("searching · step 20 of 100");
    expect(el.querySelector('.xw-cem-empty[data-panel="PP"][data-kind="image"]')!.textContent).toBe("searching…");
    expect(el.querySelector(".xw-cem-state")!.textContent).toBe("searching…");
  });

  it("a new search keeps each panel's last picture (faded) until it finds one: never a blank", async () => {
    const { el, model } = mount();
    const before = pixels.get(el.querySelector('canvas[data-panel="PN"][data-kind="image"]')!);
    // the user moved kappa; the new search streams its first update: nothing found yet
    model.set("kappa", 0.5);
    model.set("generation", 4);
    const settings = { ...SETTINGS, kappa: 0.5 };
    const searching = (steps: number) => panel("PN", { status: "searching", complete: false, steps, c: null, distance: null });
    model.set("frame", frame(4, [searching(10), panel("PP", { complete: false, steps: 10 })], settings));
    await flush();
    expect(el.querySelector(".xw-cem-body")!.getAttribute("data-current")).toBe("true");
    const pn = el.querySelector('canvas[data-panel="PN"][data-kind="image"]')!;
    expect(pn).not.toBeNull();
    expect(pixels.get(pn)).toEqual(before);
    expect(pn.classList.contains("xw-cem-stale")).toBe(true);
    expect(pn.getAttribute("data-status")).toBe("kept");
    expect(el.querySelector('canvas[data-panel="PN"][data-kind="delta"]')).not.toBeNull();
    expect(el.querySelector('.xw-cem-caption[data-panel="PN"]')!.textContent).toBe("searching · step 10 of 100");
    // the search finds one: drawn, not faded, with its c and distance
    model.set("frame", { ...frame(4, [panel("PN", { c: 1000, distance: 2.4125 }), panel("PP")], settings), images: f32([1, 0, 1, 0, 0, 0, 0, 1], [2, 2, 2, 1]) });
    await flush();
    const found = el.querySelector('canvas[data-panel="PN"][data-kind="image"]')!;
    expect(found.classList.contains("xw-cem-stale")).toBe(false);
    expect(pixels.get(found)).not.toEqual(before);
    const caption = el.querySelector('.xw-cem-caption[data-panel="PN"]')!;
    expect(caption.textContent).toBe("c 1000 · distance 2.41");
    expect(caption.getAttribute("title")).toContain("attack weight c = 1000");
  });

  it("captions say the c that was found and the distance, per panel", () => {
    const { el } = mount({ frame: frame(3, [panel("PN", { c: 0.1, distance: 0.5 }), panel("PP", { c: 100, distance: 3 })]) });
    const captions = Array.from(el.querySelectorAll(".xw-cem-caption[data-panel]")).map((c) => c.textContent);
    expect(captions).toEqual(["c 0.1 · distance 0.5", "c 100 · distance 3"]);
  });

  it("a held slider keeps the user's position: values from the kernel do not move it", async () => {
    vi.useFakeTimers();
    const { el, model } = mount();
    const input = el.querySelector('[data-setting="kappa"] input') as HTMLInputElement;
    const out = el.querySelector('[data-setting="kappa"] .xw-control-value')!;
    const commits: number[] = [];
    model.on("change:kappa", () => commits.push(model.get("kappa") as number));
    input.dispatchEvent(new Event("pointerdown"));
    input.value = "0.5";
    input.dispatchEvent(new Event("input")); // committed at once
    input.value = "0.8";
    input.dispatchEvent(new Event("input")); // waits for the throttle
    // a frame and an older value arrive from the kernel during the drag: redraws
    model.set("frame", frame(3));
    model.set("kappa", 0.5);
    await vi.advanceTimersByTimeAsync(0);
    expect(Number(input.value)).toBeCloseTo(0.8);
    expect(out.textContent).toBe("0.80");
    input.value = "1";
    input.dispatchEvent(new Event("input"));
    // released at the end; the browser may fire no change event: the release commits
    document.dispatchEvent(new Event("pointerup"));
    expect(model.get("kappa")).toBe(1);
    expect(commits[commits.length - 1]).toBe(1);
    expect(Number(input.value)).toBe(1);
    // released: a value set from Python moves the slider again
    model.set("kappa", 0.25);
    await vi.advanceTimersByTimeAsync(250);
    expect(Number(input.value)).toBeCloseTo(0.25);
    expect(model.get("kappa")).toBe(0.25);
    // a drag whose pointerup never reaches the page still ends with its change event
    input.dispatchEvent(new Event("pointerdown"));
    input.value = "0.6";
    input.dispatchEvent(new Event("input"));
    input.dispatchEvent(new Event("change"));
    expect(model.get("kappa")).toBe(0.6);
    model.set("kappa", 0.1);
    await vi.advanceTimersByTimeAsync(0);
    expect(Number(input.value)).toBeCloseTo(0.1);
  });

  it("a slider commits its value to the model; Python-side changes move the slider", async () => {
    const { el, model, saved } = mount();
    const input = el.querySelector('[data-setting="kappa"] input') as HTMLInputElement;
    input.value = "0.4";
    input.dispatchEvent(new Event("input"));
    input.dispatchEvent(new Event("change"));
    expect(model.get("kappa")).toBe(0.4);
    expect(saved.length).toBeGreaterThan(0);
    model.set("beta", 0.3);
    await flush();
    const beta = el.querySelector('[data-setting="beta"] input') as HTMLInputElement;
    expect(Number(beta.value)).toBeCloseTo(0.3);
    expect(el.querySelector('[data-setting="beta"] .xw-control-value')!.textContent).toBe("0.30");
  });

  it("c_init is a log slider; gamma is disabled without an autoencoder; advanced row toggles", async () => {
    const { el, model } = mount();
    const row = el.querySelector(".xw-cem-advanced") as HTMLElement;
    expect(row.style.display).toBe("none");
    (el.querySelector(".xw-cem-more") as HTMLButtonElement).click();
    await flush();
    expect(model.get("show_advanced")).toBe(true);
    expect(row.style.display).toBe("");
    const gamma = el.querySelector('[data-setting="gamma"] input') as HTMLInputElement;
    expect(gamma.disabled).toBe(true);
    const c = el.querySelector('[data-setting="c_init"] input') as HTMLInputElement;
    expect(Number(c.value)).toBeCloseTo(1); // log10(10)
    c.value = "2";
    c.dispatchEvent(new Event("change"));
    expect(model.get("c_init")).toBe(100);
  });

  it("throttles commits while dragging and always ends on the last position", () => {
    vi.useFakeTimers();
    const { el, model } = mount();
    const input = el.querySelector('[data-setting="beta"] input') as HTMLInputElement;
    const commits: number[] = [];
    model.on("change:beta", () => commits.push(model.get("beta") as number));
    for (const v of ["0.2", "0.3", "0.4", "0.5"]) {
      input.value = v;
      input.dispatchEvent(new Event("input"));
    }
    expect(commits).toEqual([0.2]); // the first at once, the rest wait for the throttle
    vi.advanceTimersByTime(250);
    expect(commits).toEqual([0.2, 0.5]);
    input.value = "0.7";
    input.dispatchEvent(new Event("input"));
    input.dispatchEvent(new Event("change"));
    expect(commits[commits.length - 1]).toBe(0.7);
  });

  it("shows a malformed frame as an error in place and recovers", async () => {
    const { el, model } = mount();
    model.set("frame", { ...frame(3), images: f32([1, 2, 3], [1, 3, 1, 1]) });
    await flush();
    expect(el.querySelector(".xw-error-message")!.textContent).toContain("images: expected shape");
    model.set("frame", frame(3));
    await flush();
    expect((el.querySelector(".xw-error") as HTMLElement).style.display).toBe("none");
    expect(el.querySelectorAll("canvas.xw-cem-canvas").length).toBe(5);
  });

  it("isCurrent compares generation and settings", () => {
    const { model } = mockModel(state());
    expect(isCurrent(model as never, frame(3) as never)).toBe(true);
    expect(isCurrent(model as never, frame(2) as never)).toBe(false);
    expect(isCurrent(model as never, frame(3, undefined, { ...SETTINGS, beta: 0.2 }) as never)).toBe(false);
    expect(isCurrent(model as never, null)).toBe(false);
  });
});
