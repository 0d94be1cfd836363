// The wire format as the front end reads it: the shapes specdec_jupyter/sessions/wire.py
// writes, typed here once. js/tests/wire.test.js checks these typedefs against what Python
// writes (js/tests/fixtures/from_python.json), field by field, both ways.

/**
 * One token: a `TokenEvent`'s fields, probabilities rounded.
 * @typedef {object} Token
 * @property {number} token_id
 * @property {string} text the bytes this token adds, decoded
 * @property {"draft" | "main"} source "draft": an accepted draft token; "main": the main model's own
 * @property {number} round
 * @property {number | null} p_main the main model's probability of the token
 * @property {number | null} q_draft the draft's probability of the token
 * @property {number | null} acceptance min(1, p/q), for draft tokens
 * @property {"accepted" | "first" | "plain" | "correction" | "bonus" | null} kind which of the main model's tokens
 * @property {string[]} rejected a correction's draft tokens that were not kept (texts)
 * @property {string[]} drafted_as an accepted token of a draft of another vocabulary: the draft's own tokens that covered it (texts)
 */

/**
 * One round as Python summarises it, for the strip under a reply.
 * @typedef {object} Round
 * @property {number} round
 * @property {number} drafted k: tokens drafted
 * @property {number} accepted draft tokens kept
 * @property {number} emitted tokens the round added
 * @property {"model" | "lookup" | null} source what drafted; null when nothing was
 */

/**
 * A generation's stats, by LM Studio's names (the stats line shows `stats_rows`, which Python formats).
 * @typedef {object} Stats
 * @property {string | null} draft_model
 * @property {string | null} stop_reason
 * @property {number} prompt_tokens_count
 * @property {number} predicted_tokens_count
 * @property {number} time_to_first_token
 * @property {number} generation_time
 * @property {number} tokens_per_second
 * @property {number} total_draft_tokens_count
 * @property {number} accepted_draft_tokens_count
 * @property {number} rejected_draft_tokens_count
 * @property {number} ignored_draft_tokens_count
 * @property {number} rounds
 * @property {number[]} draft_lengths
 * @property {string[]} draft_kinds
 * @property {number | null} baseline_tokens_per_second
 * @property {string | null} backend
 * @property {string | null} auto_note why draft_tokens "auto" drafted or paused, in one line
 * @property {boolean} text_draft the draft had another vocabulary and drafted text (counts are in the main model's tokens)
 * @property {number} acceptance_rate
 * @property {number} mean_accepted_per_round
 * @property {number | null} speedup
 */

/**
 * One message of a conversation.
 * @typedef {object} Message
 * @property {"user" | "assistant" | "system"} role
 * @property {string} content
 * @property {Token[]} [tokens] a reply's tokens
 * @property {Stats} [stats]
 * @property {Array<[string, string]>} [stats_rows] the stats as Python formats them for people
 * @property {Round[]} [rounds]
 * @property {string} [main_model]
 * @property {string | null} [draft_model]
 * @property {object} [settings] the run settings it was generated with
 * @property {string} [error] why the reply ended early
 * @property {Array<Version | null>} [versions] a regenerated reply's versions; null where the one shown is
 * @property {number} [version] which of `versions` is shown
 */

/**
 * A version of a reply not shown: the message's own fields, and the conversation that followed it.
 * @typedef {object} Version
 * @property {"assistant"} role
 * @property {string} content
 * @property {Token[]} [tokens]
 * @property {Stats} [stats]
 * @property {Array<[string, string]>} [stats_rows]
 * @property {Round[]} [rounds]
 * @property {string} [main_model]
 * @property {string | null} [draft_model]
 * @property {object} [settings]
 * @property {string} [error]
 * @property {Message[]} after the messages that followed this version when it was last shown
 */

export {};
