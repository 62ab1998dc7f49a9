import { defineConfig } from "vite";

// The build output (dist/) is what Tauri embeds (src-tauri/tauri.conf.json).
export default defineConfig({
  clearScreen: false,
  build: { target: "es2022", outDir: "dist", emptyOutDir: true },
  test: { environment: "jsdom", globals: true },
});
