/**
 * The human-readable output, in OpenTofu's words (internal/command/jsonformat/plan.go,
 * views/operation.go, views/apply.go, clistate/state.go) as `-no-color` prints it when stdout is
 * not a terminal: wrapped at 78 columns, as Terraform 1.11.4 wraps "Saved plan is stale".
 */
import { counts, hasChanges } from './plan.mjs';
import { COMPUTED } from './local-file.mjs';
import { lockInfoText } from './state.mjs';

export const RULE = '─'.repeat(77);

/** format.WordWrap: paragraphs kept, lines broken at spaces before `width`. */
export function wrap(text, width = 78) {
  return text
    .split('\n')
    .map((line) => {
      if (line.length <= width) return line; // indentation and aligned columns stay as they are
      const out = [];
      let cur = '';
      for (const word of line.split(' ')) {
        if (cur && cur.length + 1 + word.length > width) {
          out.push(cur);
          cur = word;
        } else cur = cur ? `${cur} ${word}` : word;
      }
      out.push(cur);
      return out.join('\n');
    })
    .join('\n');
}

/** A diagnostic as the CLI prints it with -no-color (views/diagnostics without the box). */
export function diagText(d, sources = {}) {
  const head = `\n${d.severity === 'warning' ? 'Warning' : 'Error'}: ${d.summary}\n`;
  let where = '';
  if (d.range) {
    const line = (sources[d.range.filename] ?? '').split('\n')[d.range.start.line - 1] ?? '';
    where = `\n  on ${d.range.filename} line ${d.range.start.line}:\n  ${String(d.range.start.line).padStart(3)}: ${line}\n`;
  }
  return `${head}${where}${d.detail ? `\n${wrap(d.detail)}\n` : ''}`;
}

export function lockErrorText(info) {
  return diagText({
    summary: 'Error acquiring the state lock',
    detail: `Error message: resource temporarily unavailable\n${lockInfoText(info)}\n\nOpenTofu acquires a state lock to protect the state from being written\nby multiple users at the same time. Please resolve the issue above and try\nagain. For most commands, you can disable locking with the "-lock=false"\nflag, but this is not recommended.`,
  });
}

const show = (v) => (v === null ? 'null' : JSON.stringify(v));

function block(sym, address, lines) {
  const [type, name] = address.split('.');
  return `${sym.padStart(3)} resource "${type}" "${name}" {\n${lines.join('\n')}\n    }`;
}

function attrLines(rows) {
  const width = Math.max(0, ...rows.map(([, k]) => k.length));
  return rows.map(([sym, k, v]) => `      ${sym} ${k.padEnd(width)} = ${v}`);
}

function createLines(after) {
  const keys = [...Object.keys(after).filter((k) => after[k] !== null), ...COMPUTED].sort();
  return attrLines(
    keys.map((k) => ['+', k, COMPUTED.includes(k) ? '(known after apply)' : show(after[k])]),
  );
}

function destroyLines(before) {
  const keys = Object.keys(before)
    .filter((k) => before[k] !== null)
    .sort();
  return attrLines(keys.map((k) => ['-', k, `${show(before[k])} -> null`]));
}

function replaceLines(ch) {
  const forcing = new Set(ch.replace_paths.map((p) => p[0]));
  const rows = [];
  let unchanged = 0;
  for (const k of Object.keys(ch.before).sort()) {
    if (COMPUTED.includes(k)) rows.push(['~', k, `${show(ch.before[k])} -> (known after apply)`]);
    else if (forcing.has(k))
      rows.push(['~', k, `${show(ch.before[k])} -> ${show(ch.after[k])} # forces replacement`]);
    else if (ch.before[k] !== null) unchanged++;
  }
  const lines = attrLines(rows);
  if (unchanged)
    lines.push(`        # (${unchanged} unchanged attribute${unchanged > 1 ? 's' : ''} hidden)`);
  return lines;
}

function changeText(ch) {
  if (ch.action === 'create')
    return `  # ${ch.address} will be created\n${block('+', ch.address, createLines(ch.after))}`;
  if (ch.action === 'delete')
    return `  # ${ch.address} will be destroyed\n  # (because ${ch.address} is not in configuration)\n${block('-', ch.address, destroyLines(ch.before))}`;
  return `  # ${ch.address} must be replaced\n${block('-/+', ch.address, replaceLines(ch))}`;
}

const LEGEND = {
  create: '  + create',
  delete: '  - destroy',
  replace: '-/+ destroy and then create replacement',
};

/** `tofu plan` on stdout, from the refresh lines to "Saved the plan to". */
export function planText(plan, out) {
  const parts = [];
  for (const address of [
    ...Object.keys(plan.refreshed),
    ...plan.drift.map((d) => d.address),
  ].sort()) {
    const id = (plan.refreshed[address] ?? plan.drift.find((d) => d.address === address).before).id;
    parts.push(`${address}: Refreshing state... [id=${id}]\n`);
  }
  if (plan.drift.length) {
    parts.push('\nNote: Objects have changed outside of OpenTofu\n\n');
    parts.push(
      wrap(
        'OpenTofu detected the following changes made outside of OpenTofu since the last "tofu apply" which may have affected this plan:',
      ) + '\n',
    );
    for (const d of plan.drift)
      parts.push(
        `\n  # ${d.address} has been deleted\n${block('-', d.address, destroyLines(d.before))}\n`,
      );
    parts.push(
      '\n\n' +
        wrap(
          'Unless you have made equivalent changes to your configuration, or ignored the relevant attributes using ignore_changes, the following plan may include actions to undo or respond to these changes.',
        ) +
        '\n',
    );
    parts.push(`\n${RULE}\n`);
  }
  const changed = plan.changes.filter((c) => c.action !== 'no-op');
  if (!hasChanges(plan)) {
    parts.push('\nNo changes. Your infrastructure matches the configuration.\n\n');
    parts.push(
      wrap(
        'OpenTofu has compared your real infrastructure against your configuration and found no differences, so no changes are needed.',
      ) + '\n',
    );
    return parts.join('');
  }
  parts.push(
    '\n' +
      wrap(
        'OpenTofu used the selected providers to generate the following execution plan. Resource actions are indicated with the following symbols:',
      ) +
      '\n',
  );
  for (const action of ['create', 'delete', 'replace'])
    if (changed.some((c) => c.action === action)) parts.push(`${LEGEND[action]}\n`);
  parts.push('\nOpenTofu will perform the following actions:\n');
  for (const ch of changed) parts.push(`\n${changeText(ch)}\n`);
  const c = counts(plan);
  parts.push(`\nPlan: ${c.add} to add, ${c.change} to change, ${c.destroy} to destroy.\n`);
  if (out) {
    parts.push(`\n${RULE}\n\nSaved the plan to: ${out}\n\n`);
    parts.push(
      `To perform exactly these actions, run the following command to apply:\n    tofu apply ${JSON.stringify(out)}\n`,
    );
  } else {
    parts.push(`\n${RULE}\n\n`);
    parts.push(
      wrap(
        'Note: You didn\'t use the -out option to save this plan, so OpenTofu can\'t guarantee to take exactly these actions if you run "tofu apply" now.',
      ) + '\n',
    );
  }
  return parts.join('');
}
