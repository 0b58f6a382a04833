// Small DOM helpers shared by every view. User strings go through textContent only.

export interface ElOptions {
  className?: string;
  /** Set with textContent: shown literally, never parsed as HTML. */
  text?: string;
  title?: string;
  style?: Partial<CSSStyleDeclaration>;
  attrs?: Record<string, string>;
}

/** Create an element; `text` is assigned with textContent (never innerHTML). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  opts: ElOptions = {},
  children: (Node | null | undefined)[] = [],
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (opts.className) el.className = opts.className;
  if (opts.text !== undefined) el.textContent = opts.text;
  if (opts.title !== undefined) el.title = opts.title;
  if (opts.style) Object.assign(el.style, opts.style);
  if (opts.attrs) for (const [k, v] of Object.entries(opts.attrs)) el.setAttribute(k, v);
  for (const c of children) if (c) el.appendChild(c);
  return el;
}

/** Remove every child of `el`. */
export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Add a <style> block once per root element (views are scoped by the `xw-` class prefix). */
export function ensureStyle(root: HTMLElement, id: string, css: string): void {
  if (root.querySelector(`style[data-xw-style="${id}"]`)) return;
  const style = document.createElement("style");
  style.setAttribute("data-xw-style", id);
  style.textContent = css;
  root.prepend(style);
}
