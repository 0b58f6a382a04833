// A floating tooltip inside a view's root element. Every string is set as text.
import { h } from "./dom";

export type TooltipRow = [label: string, value: string];

export class Tooltip {
  readonly el: HTMLDivElement;
  private readonly container: HTMLElement;

  /** `container` must be positioned (the view root has position: relative). */
  constructor(container: HTMLElement) {
    this.container = container;
    this.el = h("div", { className: "xw-tooltip", attrs: { role: "tooltip" } });
    this.el.style.display = "none";
    container.appendChild(this.el);
  }

  /** Show `rows` (label, value) next to the client point (clientX, clientY). */
  show(clientX: number, clientY: number, rows: TooltipRow[], title?: string): void {
    const el = this.el;
    while (el.firstChild) el.removeChild(el.firstChild);
    if (title) el.appendChild(h("div", { className: "xw-tooltip-title", text: title }));
    for (const [label, value] of rows) {
      el.appendChild(
        h("div", { className: "xw-tooltip-row" }, [
          h("span", { className: "xw-tooltip-label", text: label }),
          h("span", { className: "xw-tooltip-value", text: value }),
        ]),
      );
    }
    el.style.display = "block";
    const box = this.container.getBoundingClientRect();
    let left = clientX - box.left + 14;
    const top = clientY - box.top + 14;
    const width = el.offsetWidth || 0;
    if (box.width > 0 && left + width > box.width) left = Math.max(0, clientX - box.left - width - 14);
    el.style.left = `${left}px`;
    el.style.top = `${top}px`;
  }

  hide(): void {
    this.el.style.display = "none";
  }
}
