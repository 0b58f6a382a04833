import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["js/src/**/*.test.ts"],
    // DOM for the render tests of the views (canvas 2D contexts are mocked in the tests)
    environment: "happy-dom",
  },
});
