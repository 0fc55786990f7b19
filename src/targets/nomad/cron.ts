/**
 * norn's schedules in Nomad's cron dialect. norn checks a schedule with cron-parser (BullMQ's),
 * where 6 fields mean SECONDS first (`s m h dom mon dow`). Nomad parses `Periodic.Spec` with
 * hashicorp/cronexpr, where 6 fields mean `m h dom mon dow YEAR` and only 7 fields put seconds
 * first (cronexpr.go `Parse`: "second field (optional)" only when fieldCount == 7). Passed through
 * unchanged, `5 * * * * *` (5 seconds past every minute) would run at minute 5 of every hour, so
 * a 6-field schedule gets a year field `*` appended: 7 fields, seconds first.
 * A 5-field schedule means the same in both (cronexpr sets seconds to 0).
 *
 * Macros: cronexpr knows @yearly, @annually, @monthly, @weekly, @daily and @hourly; cron-parser
 * also @minutely, @secondly, @weekdays and @weekends. Every macro is written out here from
 * cron-parser's own table (PredefinedExpressions in cron-parser 5), so Nomad runs exactly what
 * norn validated.
 */

/** cron-parser 5's PredefinedExpressions (6 fields, seconds first), which norn's schedules use. */
const MACROS: Record<string, string> = {
  '@yearly': '0 0 0 1 1 *',
  '@annually': '0 0 0 1 1 *',
  '@monthly': '0 0 0 1 * *',
  '@weekly': '0 0 0 * * 0',
  '@daily': '0 0 0 * * *',
  '@hourly': '0 0 * * * *',
  '@minutely': '0 * * * * *',
  '@secondly': '* * * * * *',
  '@weekdays': '0 0 0 * * 1-5',
  '@weekends': '0 0 0 * * 0,6',
};

export type CronTranslation = { ok: true; spec: string } | { ok: false; message: string };

/**
 * A norn schedule (already accepted by the infraspec: 5 or 6 fields, or a macro) as a
 * hashicorp/cronexpr expression with the same meaning.
 */
export function toCronexpr(schedule: string): CronTranslation {
  const trimmed = schedule.trim();
  if (trimmed.startsWith('@')) {
    // cron-parser takes a macro only as the whole text, exactly as written.
    const expanded = Object.hasOwn(MACROS, schedule) ? MACROS[schedule] : undefined;
    if (expanded === undefined)
      return { ok: false, message: `the macro ${trimmed.slice(0, 20)} has no Nomad equivalent` };
    return { ok: true, spec: `${expanded} *` };
  }
  const fields = trimmed.split(/\s+/);
  // cron-parser's `H` (a hashed value) has no cronexpr equivalent; cronexpr would refuse it.
  if (fields.some((field) => field.split(',').some((part) => /^H(?:$|[/(])/i.test(part))))
    return {
      ok: false,
      message: 'uses H (a hashed value), which Nomad’s cron parser does not know; write the value',
    };
  if (fields.length === 5) return { ok: true, spec: fields.join(' ') };
  if (fields.length === 6) return { ok: true, spec: `${fields.join(' ')} *` };
  return {
    ok: false,
    message: `must have 5 or 6 fields (seconds first) for Nomad; it has ${fields.length}`,
  };
}
