// CSS shared by every view (status, tooltip, labels, colour bar, controls). Scoped by `xw-`.
import { CELL_SIZE_CSS } from "./attribution_cells";

export const BASE_CSS = `
${CELL_SIZE_CSS}
.xw-root { position: relative; display: inline-block; max-width: 100%; box-sizing: border-box;
  font-family: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", sans-serif);
  font-size: 12px; color: var(--jp-ui-font-color1, #1f2328); padding: 4px 2px; }
.xw-title { font-size: 13px; font-weight: 600; margin: 0 0 6px; }
.xw-progress { height: 4px; background: rgba(127,127,127,.2); border-radius: 2px; overflow: hidden; margin: 0 0 6px; }
.xw-progress-fill { height: 100%; width: 0; background: #2f6fdf; transition: width .15s linear; }
.xw-error { display: flex; align-items: flex-start; gap: 6px; margin: 0 0 6px; padding: 6px 8px;
  border: 1px solid #f0b4b4; border-radius: 4px; background: #fdeeee; color: #86181d;
  white-space: pre-wrap; overflow-wrap: anywhere; }
.xw-error-message { flex: 1; }
.xw-error-close { border: none; background: transparent; color: inherit; cursor: pointer; font-size: 14px; line-height: 1; padding: 0 2px; }
.xw-tooltip { position: absolute; z-index: 20; pointer-events: none; padding: 5px 8px; border-radius: 4px;
  background: rgba(28,30,34,.94); color: #f5f5f5; font-size: 11px; line-height: 1.45; white-space: nowrap;
  font-variant-numeric: tabular-nums; box-shadow: 0 2px 8px rgba(0,0,0,.25); }
.xw-tooltip-title { font-weight: 600; margin-bottom: 2px; }
.xw-tooltip-row { display: flex; justify-content: space-between; gap: 10px; }
.xw-tooltip-label { opacity: .72; }
.xw-label { height: var(--xw-label-height); line-height: var(--xw-label-height); font-size: 11px; text-align: center; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.xw-label-prob { color: var(--jp-ui-font-color2, #59636e); font-variant-numeric: tabular-nums; }
.xw-cbar { display: flex; flex-direction: column; }
.xw-cbar-body { display: flex; }
.xw-cbar-canvas { box-sizing: content-box; border: 1px solid rgba(127,127,127,.5); }
.xw-cbar-ticks { position: relative; min-width: 46px; }
.xw-cbar-tick { position: absolute; left: 0; transform: translateY(-50%); padding-left: 7px; font-size: 10px;
  line-height: 12px; white-space: nowrap; font-variant-numeric: tabular-nums; }
.xw-cbar-tick::before { content: ""; position: absolute; left: 0; top: 50%; width: 4px; border-top: 1px solid currentColor; }
.xw-cbar-caption { margin-top: 4px; font-size: 10px; color: var(--jp-ui-font-color2, #59636e); }
.xw-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 16px; margin: 0 0 8px; font-size: 11px; }
.xw-control { display: inline-flex; align-items: center; gap: 6px; }
.xw-control-label { color: var(--jp-ui-font-color2, #59636e); }
.xw-control-value { min-width: 3.5em; font-variant-numeric: tabular-nums; }
.xw-seg { display: inline-flex; border: 1px solid rgba(127,127,127,.45); border-radius: 4px; overflow: hidden; }
.xw-seg-button { border: none; background: transparent; color: inherit; padding: 2px 8px; font: inherit; cursor: pointer; }
.xw-seg-button + .xw-seg-button { border-left: 1px solid rgba(127,127,127,.45); }
.xw-seg-button[aria-pressed="true"] { background: #2f6fdf; color: #fff; }
.xw-slider { width: 110px; }
`;
