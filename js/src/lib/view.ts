// The render scaffolding of every widget entry: the root element with its styles, the status
// (progress + error banner), the title, the tooltip, redraws on `change:<key>` (optionally
// batched in a microtask) and the cleanup anywidget calls when the view goes away.
import type { AnyModel } from "@anywidget/types";
import { clear, ensureStyle, h } from "./dom";
import { type Status, bindStatus } from "./status";
import { BASE_CSS } from "./styles";
import { Tooltip } from "./tooltip";

export interface View {
  root: HTMLElement;
  /** null when the view was mounted with `status: false` */
  status: Status | null;
  title: HTMLElement;
  tooltip: Tooltip;
  /** sync the title (unless `syncTitle: false`), run `before`, hide the tooltip, draw */
  redraw: () => void;
}

/** [trait keys, fn, batched]: fn runs at mount and on each change:<key> (batched: once per microtask). */
export type Binding = [keys: readonly string[], fn: () => void, batched?: boolean];

export interface ViewParts {
  /** the root's children in order (view.status.el and view.title where wanted) */
  children: HTMLElement[];
  /** cleared when draw throws */
  body: HTMLElement;
  /** draws into body; an Error it throws shows in the status banner until a draw succeeds */
  draw: () => void;
  /** runs in redraw before draw (syncing the controls) */
  before?: () => void;
  /** set the title from the `title` trait in redraw (default true) */
  syncTitle?: boolean;
  bindings: Binding[];
}

export interface ViewOptions {
  /** class of the root besides xw-root */
  className: string;
  /** [id, css] pairs added after BASE_CSS */
  styles: [string, string][];
  /** bind the status to the `error` / `progress` traits (default true) */
  status?: boolean;
  /** a tooltip in the root (default true) */
  tooltip?: boolean;
  build: (view: View) => ViewParts;
}

/** Mount a view into `el`; returns the cleanup function. */
export function mountView(model: AnyModel, el: HTMLElement, opts: ViewOptions): () => void {
  const root = h("div", { className: `xw-root ${opts.className}` });
  ensureStyle(root, "base", BASE_CSS);
  for (const [id, css] of opts.styles) ensureStyle(root, id, css);
  const [status, unbindStatus] = opts.status === false ? [null, () => {}] : bindStatus(model);
  const title = h("div", { className: "xw-title" });
  const tooltip = new Tooltip(root);
  let parts: ViewParts | null = null;
  let localError = "";
  const redraw = () => {
    const p = parts!;
    if (p.syncTitle !== false) {
      const text = (model.get("title") as string) ?? "";
      title.textContent = text;
      title.style.display = text ? "" : "none";
    }
    p.before?.();
    tooltip.hide();
    if (!status) return p.draw();
    try {
      p.draw();
      if (localError) status.setError((model.get("error") as string) ?? "");
      localError = "";
    } catch (err) {
      clear(p.body);
      localError = err instanceof Error ? err.message : String(err);
      status.setError(localError);
    }
  };
  parts = opts.build({ root, status, title, tooltip, redraw });
  root.append(...parts.children);
  if (opts.tooltip === false) tooltip.el.remove();
  else root.appendChild(tooltip.el);
  el.appendChild(root);

  const listeners: [string, () => void][] = [];
  for (const [keys, fn, batched] of parts.bindings) {
    let listener = fn;
    if (batched) {
      // several changes of one message draw once
      let pending = false;
      listener = () => {
        if (pending) return;
        pending = true;
        queueMicrotask(() => {
          pending = false;
          fn();
        });
      };
    }
    fn();
    for (const key of keys) {
      model.on(`change:${key}`, listener);
      listeners.push([key, listener]);
    }
  }
  return () => {
    for (const [key, listener] of listeners) model.off(`change:${key}`, listener);
    unbindStatus();
    root.remove();
  };
}
