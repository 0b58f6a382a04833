// Bundles every widget entry js/src/*.ts into xaiwidgets/static/<name>.js (ESM, for anywidget).
// `node js/build.mjs --watch` rebuilds on change (pair with ANYWIDGET_HMR=1 in the kernel).
import * as esbuild from "esbuild";
import { readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = join(root, "js", "src");
const entryPoints = readdirSync(srcDir)
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.endsWith(".d.ts"))
  .map((f) => join(srcDir, f));

const options = {
  entryPoints,
  outdir: join(root, "xaiwidgets", "static"),
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: !process.argv.includes("--watch"),
  sourcemap: process.argv.includes("--watch") ? "inline" : false,
  // keep bundled libraries from clashing with RequireJS in classic notebooks
  define: { "define.amd": "false" },
  logLevel: "info",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
