// ESLint with typescript-eslint's recommended rules over all TypeScript (npm run lint).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.norn/', 'coverage/', 'examples/', 'dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // The dashboard runs in a browser; TypeScript (ui/tsconfig.json, DOM lib) checks its names.
    files: ['ui/**/*.{ts,tsx}'],
    rules: { 'no-undef': 'off' },
  },
);
