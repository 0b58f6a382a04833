// Writing traits back to Python from a typed model: keys and values are checked against the
// view's model interface (which has no index signature), so a misspelt trait fails `tsc`.
import type { AnyModel } from "@anywidget/types";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Traits = Record<string, any>;

/** `save(key, value)`: set one trait and send it to the kernel. */
export function saver<T extends Traits>(model: AnyModel<T>): <K extends keyof T>(key: K, value: T[K]) => void {
  return (key, value) => {
    model.set(key, value);
    model.save_changes();
  };
}

/** `save({key: value, ...})`: set several traits and send them to the kernel in one message. */
export function batchSaver<T extends Traits>(model: AnyModel<T>): (changes: Partial<T>) => void {
  return (changes) => {
    for (const key of Object.keys(changes) as (keyof T)[]) model.set(key, changes[key] as T[keyof T]);
    model.save_changes();
  };
}
