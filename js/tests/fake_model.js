// anywidget's model as the views see it, for tests without a kernel.

/** A stand-in for anywidget's model: traits, change events, custom messages both ways. */
export class FakeModel {
  constructor(state) {
    this.state = { ...state };
    this.handlers = new Map();
    this.sent = [];
  }
  get(name) {
    return this.state[name];
  }
  set(name, value) {
    this.state[name] = value;
    this.emit(`change:${name}`);
  }
  save_changes() {}
  send(message) {
    this.sent.push(message);
  }
  on(names, callback) {
    for (const name of names.split(" ")) {
      if (!this.handlers.has(name)) this.handlers.set(name, new Set());
      this.handlers.get(name).add(callback);
    }
  }
  off(names, callback) {
    for (const name of names.split(" ")) this.handlers.get(name)?.delete(callback);
  }
  emit(name, payload) {
    for (const callback of [...(this.handlers.get(name) ?? [])]) callback(payload);
  }
  listenerCount() {
    return [...this.handlers.values()].reduce((n, set) => n + set.size, 0);
  }
}
