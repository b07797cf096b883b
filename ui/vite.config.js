// Vite build of the Sluice console: fixed file names (dist/index.html,
// dist/app.js, dist/app.css), one chunk, no hashes, no source maps, no
// public dir, so the output is byte-identical from run to run and can be
// embedded in the Rust binary.
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

export default defineConfig({
  base: '/ui/',
  publicDir: false,
  plugins: [preact({ devToolsInProd: false, prerender: { enabled: false } })],
  server: {
    // `npm run dev`: forward the API to a local admin listener.
    proxy: { '/api': 'http://127.0.0.1:8001' },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: '',
    sourcemap: false,
    cssCodeSplit: false,
    modulePreload: false,
    reportCompressedSize: false,
    target: 'es2020',
    rollupOptions: {
      output: {
        entryFileNames: 'app.js',
        chunkFileNames: 'app.js',
        assetFileNames: 'app.css',
        inlineDynamicImports: true,
      },
    },
  },
});
