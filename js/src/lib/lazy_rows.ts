// Rows of a long view drawn only while they are near the viewport: each row is a placeholder
// element of fixed size; an IntersectionObserver draws a row as it comes within `margin` CSS
// pixels of the viewport and releases it (freeing its canvas memory) when it goes farther.
// Without IntersectionObserver (old browsers) every row is drawn at once.

export interface LazyRowsOptions {
  /** draw row i into its (empty) element */
  draw: (i: number, el: HTMLElement) => void;
  /** undo draw (default: remove the element's children) */
  release?: (i: number, el: HTMLElement) => void;
  /** rows within this many CSS pixels above/below the viewport are drawn (default 300) */
  margin?: number;
}

export class LazyRows {
  private readonly opts: LazyRowsOptions;
  private readonly els = new Map<number, HTMLElement>();
  private readonly index = new WeakMap<Element, number>();
  private readonly drawn = new Set<number>();
  private readonly observer: IntersectionObserver | null;

  constructor(opts: LazyRowsOptions) {
    this.opts = opts;
    const IO = typeof IntersectionObserver === "undefined" ? null : IntersectionObserver;
    this.observer = IO
      ? new IO((entries) => this.onEntries(entries), { rootMargin: `${opts.margin ?? 300}px 0px` })
      : null;
  }

  /** Register row i's placeholder; drawn now when there is no IntersectionObserver. */
  add(i: number, el: HTMLElement): void {
    this.els.set(i, el);
    this.index.set(el, i);
    if (this.observer) this.observer.observe(el);
    else this.draw(i);
  }

  /** Draw row i now (e.g. the first screenful, before the observer's first report). */
  draw(i: number): void {
    const el = this.els.get(i);
    if (!el || this.drawn.has(i)) return;
    this.drawn.add(i);
    this.opts.draw(i, el);
  }

  release(i: number): void {
    const el = this.els.get(i);
    if (!el || !this.drawn.delete(i)) return;
    if (this.opts.release) this.opts.release(i, el);
    else while (el.firstChild) el.removeChild(el.firstChild);
  }

  /** Rows drawn now, in increasing order. */
  drawnRows(): number[] {
    return Array.from(this.drawn).sort((a, b) => a - b);
  }

  /** Release and draw again every drawn row (e.g. after a change of colours). */
  redrawDrawn(): void {
    for (const i of this.drawnRows()) {
      this.release(i);
      this.draw(i);
    }
  }

  disconnect(): void {
    this.observer?.disconnect();
  }

  private onEntries(entries: IntersectionObserverEntry[]): void {
    for (const entry of entries) {
      const i = this.index.get(entry.target);
      if (i === undefined) continue;
      if (entry.isIntersecting) this.draw(i);
      else this.release(i);
    }
  }
}
