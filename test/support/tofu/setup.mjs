/** fmt, init and validate: the commands that read the configuration but no state. */
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIgnoredFile, readModule, structure } from './config.mjs';
import { PROVIDER, PROVIDER_VERSION } from './local-file.mjs';
import { diagText, wrap } from './render.mjs';
import { errOut, fail, initialized, load, out, sourcesOf } from './common.mjs';
import { initBackend } from './backend.mjs';

export function fmt(dir, { flags, args }) {
  // fmtSupportedExts: .tf .tofu .tfvars .tftest.hcl .tofutest.hcl; *.tf.json is not among them.
  const HCL = ['.tf', '.tofu', '.tfvars', '.tftest.hcl', '.tofutest.hcl'];
  const found = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      if (isIgnoredFile(name)) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) {
        if (flags.recursive) walk(p);
      } else if (HCL.some((e) => name.endsWith(e))) found.push(p);
    }
  };
  for (const target of args.length ? args : ['.']) {
    const p = join(dir, target);
    if (statSync(p).isDirectory()) walk(p);
    else if (HCL.some((e) => target.endsWith(e))) found.push(p);
    else {
      fail([
        {
          severity: 'error',
          summary: 'Invalid file extension',
          detail:
            'Only .tf, .tofu, .tfvars, .tftest.hcl, and .tofutest.hcl files can be processed with tofu fmt',
        },
      ]);
      return 2;
    }
  }
  if (found.length) {
    fail([
      {
        severity: 'error',
        summary: 'Native syntax is not supported (tofu stand-in)',
        detail: `The tofu stand-in cannot parse or format HCL native syntax; found ${found.join(', ')}.`,
      },
    ]);
    return 2; // fmt's exit status for an error
  }
  return 0; // nothing it formats: JSON configuration is left alone, as by real tofu fmt
}

export function init(dir, { flags }) {
  const files = readModule(dir);
  const { diags, backend, backendDiags } = structure(files);
  if (files.length === 0) {
    out(
      '\nOpenTofu initialized in an empty directory!\n\nThe directory has no OpenTofu configuration files. You may begin working\nwith OpenTofu immediately by creating OpenTofu configuration files.\n',
    );
    return 0;
  }
  out('\nInitializing the backend...\n');
  if (diags.length) {
    errOut(
      diagText({
        severity: 'error',
        summary:
          'OpenTofu encountered problems during initialisation, including problems\nwith the configuration, described below.\n\nThe OpenTofu configuration must be valid before initialization so that\nOpenTofu can determine which modules and providers need to be installed.',
      }),
    );
    return fail(diags, sourcesOf(files));
  }
  if (backendDiags.length) return fail(backendDiags, sourcesOf(files));
  if (flags.backend !== false) {
    // -backend=false: the saved backend stays as it is.
    const configured = initBackend(dir, backend, flags);
    if (configured.diags) return fail(configured.diags);
    out(configured.message);
  }
  const lockFile = join(dir, '.terraform.lock.hcl');
  const had = existsSync(lockFile);
  mkdirSync(
    join(dir, '.terraform', 'providers', ...PROVIDER.split('/'), PROVIDER_VERSION, 'linux_amd64'),
    { recursive: true },
  );
  out('\nInitializing provider plugins...\n');
  if (had)
    out(
      `- Reusing previous version of hashicorp/local from the dependency lock file\n- Using previously-installed hashicorp/local v${PROVIDER_VERSION}\n`,
    );
  else {
    out(
      `- Finding latest version of hashicorp/local...\n- Installing hashicorp/local v${PROVIDER_VERSION}...\n- Installed hashicorp/local v${PROVIDER_VERSION} (tofu stand-in: built in, nothing downloaded)\n`,
    );
    writeFileSync(
      lockFile,
      `# This file is maintained automatically by "tofu init".\n# Manual edits may be lost in future updates.\n\nprovider "${PROVIDER}" {\n  version = "${PROVIDER_VERSION}"\n  hashes  = []\n}\n`,
    );
    out(
      '\n' +
        wrap(
          'OpenTofu has created a lock file .terraform.lock.hcl to record the provider selections it made above. Include this file in your version control repository so that OpenTofu can guarantee to make the same selections by default when you run "tofu init" in the future.',
        ) +
        '\n',
    );
  }
  out('\nOpenTofu has been successfully initialized!\n');
  return 0;
}

export function validate(dir, { flags }) {
  const { files, resources, diags } = load(dir);
  if (!diags.length && resources.length && !initialized(dir))
    diags.push({
      severity: 'error',
      summary: 'Missing required provider',
      detail: `This configuration requires provider ${PROVIDER}, but that provider isn't available. You may be able to install it automatically by running:\n  tofu init`,
    });
  const sources = sourcesOf(files);
  if (flags.json) {
    const errors = diags.filter((d) => d.severity === 'error').length;
    const body = {
      format_version: '1.0',
      valid: errors === 0,
      error_count: errors,
      warning_count: diags.length - errors,
      diagnostics: diags.map((d) => (d.range ? { ...d, snippet: snippet(d.range, sources) } : d)),
    };
    out(`${JSON.stringify(body, null, 2)}\n`);
  } else if (diags.length) fail(diags, sources);
  else out('Success! The configuration is valid.\n\n');
  return diags.some((d) => d.severity === 'error') ? 1 : 0;
}

function snippet(range, sources) {
  const code = (sources[range.filename] ?? '').split('\n')[range.start.line - 1] ?? '';
  const end = range.end.line === range.start.line ? range.end.column - 1 : code.length;
  return {
    context: null,
    code,
    start_line: range.start.line,
    highlight_start_offset: range.start.column - 1,
    highlight_end_offset: end,
    values: [],
  };
}
