// The shared status element of every view: a progress bar and an error banner shown in place.
// The rest of the view stays usable while either shows.
import type { AnyModel } from "@anywidget/types";
import { h } from "./dom";

export interface Status {
  el: HTMLElement;
  /** fraction 0..1 shows the bar; a negative value (or null) hides it */
  setProgress(fraction: number | null | undefined): void;
  /** a non-empty message shows the banner; "" hides it */
  setError(message: string | null | undefined): void;
}

export function createStatus(onDismiss?: () => void): Status {
  const fill = h("div", { className: "xw-progress-fill" });
  const progress = h("div", { className: "xw-progress", attrs: { role: "progressbar" } }, [fill]);
  const message = h("span", { className: "xw-error-message" });
  const close = h("button", { className: "xw-error-close", text: "×", title: "dismiss" });
  const error = h("div", { className: "xw-error", attrs: { role: "alert" } }, [
    h("span", { className: "xw-error-icon", text: "⚠" }),
    message,
    close,
  ]);
  progress.style.display = "none";
  error.style.display = "none";
  close.addEventListener("click", () => {
    error.style.display = "none";
    onDismiss?.();
  });
  const el = h("div", { className: "xw-status" }, [progress, error]);
  return {
    el,
    setProgress(fraction) {
      if (fraction == null || !(fraction >= 0)) {
        progress.style.display = "none";
        return;
      }
      const f = Math.min(1, fraction);
      progress.style.display = "block";
      progress.setAttribute("aria-valuenow", String(Math.round(f * 100)));
      fill.style.width = `${(f * 100).toFixed(1)}%`;
    },
    setError(msg) {
      message.textContent = msg ?? "";
      error.style.display = msg ? "flex" : "none";
    },
  };
}

/**
 * A status element driven by the model's `error` (str) and `progress` (float, -1 idle)
 * traits. Dismissing the banner clears `error` in the model. Returns the status and an
 * unsubscribe function.
 */
export function bindStatus(model: AnyModel, errorKey = "error", progressKey = "progress"): [Status, () => void] {
  const status = createStatus(() => {
    model.set(errorKey, "");
    model.save_changes();
  });
  const onError = () => status.setError(model.get(errorKey) as string);
  const onProgress = () => status.setProgress(model.get(progressKey) as number);
  onError();
  onProgress();
  model.on(`change:${errorKey}`, onError);
  model.on(`change:${progressKey}`, onProgress);
  return [
    status,
    () => {
      model.off(`change:${errorKey}`, onError);
      model.off(`change:${progressKey}`, onProgress);
    },
  ];
}
