/** The api token's one rule shared by the server (config) and the CLI (what it scrubs). */

/** Every norn api refuses to start with a shorter NORN_API_TOKEN. */
export const API_TOKEN_MIN_LENGTH = 16;
