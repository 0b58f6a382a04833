// Bundles every widget entry js/src/*.ts into xaiwidgets/static/<name>.js (ESM, for anywidget).
// `node js/build.mjs --watch` rebuilds on change (pair with ANYWIDGET_HMR=1 in the kernel).
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
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

// The widget manager of static HTML exports (xaiwidgets/export.py inlines these two files so
// that an exported page draws its widgets with no network): require.js and the embed bundle of
// @jupyter-widgets/html-manager, copied from node_modules next to the widget bundles.
const staticDir = join(root, "xaiwidgets", "static");
mkdirSync(staticDir, { recursive: true });
copyFileSync(join(root, "node_modules", "requirejs", "require.js"), join(staticDir, "require.js"));
const manager = join(root, "node_modules", "@jupyter-widgets", "html-manager");
const managerVersion = JSON.parse(readFileSync(join(manager, "package.json"), "utf8")).version;
const embed = readFileSync(join(manager, "dist", "embed-amd.js"), "utf8").replace(
  /^\/\/# sourceMappingURL=.*$/gm,
  "",
);
writeFileSync(
  join(staticDir, "embed-amd.js"),
  `/*! @jupyter-widgets/html-manager ${managerVersion} embed-amd.js | BSD-3-Clause | ` +
    `Copyright (c) Jupyter Development Team */\n${embed}`,
);

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
