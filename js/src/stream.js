// The reply being generated, kept per widget model rather than per view, so a view that
// is created mid-reply (the same chat shown twice, an output re-rendered) shows the
// tokens streamed so far. Python sends {type: "reply_start"}, then batches of
// {type: "tokens", tokens: [...]}; the finished reply arrives in the `messages` trait.

/** Live-reply state for one widget model, with subscribers notified of each change. */
export class ReplyStream {
  constructor() {
    this.tokens = null; // null when no reply is streaming
    this.subscribers = new Set();
  }

  /** Apply one custom message from Python; returns false for messages of other kinds. */
  handle(message) {
    if (message.type === "reply_start") {
      this.tokens = [];
      this.notify({ type: "start" });
    } else if (message.type === "tokens" && this.tokens) {
      this.tokens.push(...message.tokens);
      this.notify({ type: "tokens", tokens: message.tokens });
    } else {
      return false;
    }
    return true;
  }

  /** The reply has landed in `messages`: nothing is live any more. */
  finish() {
    if (this.tokens === null) return;
    this.tokens = null;
    this.notify({ type: "end" });
  }

  subscribe(callback) {
    this.subscribers.add(callback);
    return () => this.subscribers.delete(callback);
  }

  notify(change) {
    for (const callback of this.subscribers) callback(change);
  }
}

const streams = new Map();

/** The stream of the widget whose `_chat_id` is `id` (created on first use). */
export function streamFor(id) {
  if (!streams.has(id)) streams.set(id, new ReplyStream());
  return streams.get(id);
}

/** Forget a widget's stream when its model goes away. */
export function dropStream(id) {
  streams.delete(id);
}

/** Model-level setup of a widget that streams replies (the chat, the reply view): route its
 * custom messages into its stream, once per model, and end the stream when the reply lands. */
export function routeReplies({ model }) {
  const id = model.get("_chat_id");
  const stream = streamFor(id);
  const onMessage = (message) => stream.handle(message);
  const onMessages = () => stream.finish();
  model.on("msg:custom", onMessage);
  model.on("change:messages", onMessages);
  return () => {
    model.off("msg:custom", onMessage);
    model.off("change:messages", onMessages);
    dropStream(id);
  };
}
