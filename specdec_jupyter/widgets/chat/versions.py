"""Versions of a reply, as Regenerate keeps them (LM Studio's "1/2" switcher), in the
message dicts of the chat's `messages` trait.

A reply with versions carries `versions` (one slot per version) and `version` (the index
shown). The shown version is the message itself, so its slot is None and nothing is sent
twice; every other slot holds that version's fields plus `after`: the messages that
followed it when it was last shown, so switching back brings its branch of the
conversation back and the conversation goes on from the version shown.
"""

from __future__ import annotations

from ...sessions.wire import Message

VERSION_KEYS = ("versions", "version")


def _fields(message: Message) -> Message:
    return {key: value for key, value in message.items() if key not in VERSION_KEYS}


def version_count(message: Message) -> int:
    return len(message.get("versions") or [None])


def add_version(message: Message, reply: Message) -> Message:
    """`reply` as the newest version of `message`, shown; the versions before it kept."""
    versions = list(message.get("versions") or [None])
    versions[message.get("version", 0)] = {**_fields(message), "after": []}
    return {**_fields(reply), "versions": [*versions, None], "version": len(versions)}


def replace_shown(message: Message, reply: Message) -> Message:
    """`reply` in place of the version shown (a continued reply), the others kept."""
    kept = {key: message[key] for key in VERSION_KEYS if key in message}
    return {**_fields(reply), **kept}


def show_version(messages: list[Message], index: int, version: int) -> list[Message]:
    """The conversation with version `version` of reply `index` shown, and its branch."""
    if not 0 <= index < len(messages) or messages[index]["role"] != "assistant":
        raise IndexError(f"message {index} is not a reply of this conversation")
    message = messages[index]
    count = version_count(message)
    if not 0 <= version < count:
        raise IndexError(f"reply {index} has versions 0 to {count - 1}, not {version}")
    shown = message.get("version", 0)
    if version == shown:
        return messages
    versions = list(message["versions"])
    versions[shown] = {**_fields(message), "after": messages[index + 1 :]}
    chosen, versions[version] = dict(versions[version]), None
    after = chosen.pop("after", [])
    return [*messages[:index], {**chosen, "versions": versions, "version": version}, *after]
