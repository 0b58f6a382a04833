// The ExplainerComparison's synced state as the view reads it: the model interface (its fields
// are the widget's traits, checked by tests/widgets/test_model_interfaces.py), one explainer
// column and the curve shown.
import type { SerializedArray } from "../lib/arrays";
import type { ScoreRow } from "../lib/score_columns";

export interface Column {
  name: string;
  method: string;
  status: "done" | "running" | "waiting" | "error" | "cancelled";
  message?: string;
}

export interface CurveInfo {
  explainer?: string;
  metric?: string;
  x_label?: string;
  y_label?: string;
  area?: number;
  better?: string;
  threshold?: number;
  kind?: string;
}

export interface ComparisonModel {
  names: string[];
  shown: string[];
  overlay: string; // "heatmap" | "blend" | "mask" (OverlayMode)
  keep_fraction: number;
  scale_mode: string; // "column" | "cell"
  masker: string; // deletion / insertion masker, steps and sanity-check stages: set from Python
  steps: number;
  sanity_stages: number;
  sort_by: string;
  sort_descending: boolean;
  curve: { explainer?: string; metric?: string };
  cell_size: number;
  title: string;
  images: SerializedArray | null;
  row_titles: string[];
  columns: Column[];
  values: SerializedArray | null;
  scales: SerializedArray | null;
  keep: SerializedArray | null;
  scores: ScoreRow[];
  curve_x: SerializedArray | null;
  curve_y: SerializedArray | null;
  curve_info: CurveInfo;
  error: string;
  progress: number;
}
