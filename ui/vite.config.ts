/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// The Tauri shell embeds ui/dist (see src-tauri/tauri.conf.json, frontendDist).
export default defineConfig({
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // WebKitGTK 2.40+ on Debian 12.
    target: "safari16",
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
