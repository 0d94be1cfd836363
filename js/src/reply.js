// One reply streaming into a notebook cell (`%%specdec`), rendered as Markdown as the chat's
// replies are (only the blocks that changed are rendered again). Python sends {type: "reply_start"} and batches of {type: "tokens"}
// (stream.js, as the chat does); the finished reply, with its stats, lands in the
// `messages` trait (one message), which is what a reopened notebook shows.

import { el } from "./dom.js";
import { routeReplies, streamFor } from "./stream.js";
import { attachTokenHover } from "./hover.js";
import { appendReplyTokens, renderConversation } from "./transcript.js";

/** The views' half: the finished reply if there is one, else the live tokens, growing. */
function render({ model, el: host }) {
  const doc = host.ownerDocument;
  const transcript = el(doc, "div", { className: "specdec-transcript" });
  const tip = el(doc, "div", { className: "specdec-tip", hidden: true });
  const root = el(doc, "div", { className: "specdec-chat specdec-reply-view" }, [transcript, tip]);
  host.appendChild(root);
  const hover = new AbortController();
  attachTokenHover(transcript, tip, root, hover.signal);
  const stream = streamFor(model.get("_chat_id"));
  let live = null;

  const draw = () => {
    renderConversation(transcript, model.get("messages"));
    live = null;
    if (stream.tokens) {
      live = el(doc, "div", { className: "specdec-reply" });
      transcript.appendChild(el(doc, "div", { className: "specdec-msg specdec-assistant specdec-live" }, [live]));
      appendReplyTokens(live, stream.tokens);
    }
  };
  const onStream = (change) => {
    if (change.type === "tokens" && live) appendReplyTokens(live, change.tokens);
    else draw();
  };
  model.on("change:messages", draw);
  const unsubscribe = stream.subscribe(onStream);
  draw();
  return () => {
    model.off("change:messages", draw);
    unsubscribe();
    hover.abort();
  };
}

export default { initialize: routeReplies, render };
