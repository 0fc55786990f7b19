/** The diagnostics the configuration and schema passes share, worded as hcl/json words them. */

export const err = (summary, detail, range) => ({ severity: 'error', summary, detail, range });

/** A JSON property that is neither an argument nor a block type where it stands. */
export const extraneous = (key, range) =>
  err('Extraneous JSON object property', `No argument or block type is named "${key}".`, range);

/** A block body given as something other than a JSON object. */
export const notAnObject = (range) =>
  err(
    'Incorrect JSON value type',
    'A JSON object is required here, setting the arguments for this block.',
    range,
  );
