// The desk's live connection: one websocket, many streams, nothing lost (docs/desk.md).
//
// Every event frame carries its stream's epoch and sequence number. Frames are applied in
// order, exactly once, on top of a REST snapshot:
// - after (re)subscribing, the page's `resync(stream)` loads the snapshot and returns its
//   position {epoch, seq}; frames that arrived meanwhile are buffered, and only those after
//   the snapshot's position are applied;
// - a frame from another epoch (Redis lost its counters) means resync;
// - a gap (seq > expected) waits briefly for the missing frame (two publishers may race),
//   then resyncs;
// - a duplicate or older frame (seq <= applied) is dropped;
// - a dropped socket reconnects with back-off and resyncs every stream; a silent one is
//   detected by ping/pong and treated as dropped.

const GAP_WAIT_MS = 1000;
const PING_EVERY_MS = 20000;
const PONG_WITHIN_MS = 8000;
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000, 10000];

export class LiveClient {
  constructor({ url, resync, onEvent, onStatus = () => {}, onControl = () => {} }) {
    this.url = url;
    this.resyncStream = resync;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onControl = onControl;
    this.streams = new Map(); // stream → {epoch, seq, ready, buffer: Map(seq → frame), gapTimer, syncing}
    this.socket = null;
    this.attempt = 0;
    this.pingTimer = null;
    this.pongTimer = null;
    this.stopped = false;
    this.counters = { resyncs: 0, gaps: 0, duplicates: 0, reconnects: 0 };
  }

  start() {
    this.stopped = false;
    this.connect();
    window.addEventListener("online", () => this.reconnectSoon(0));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    if (this.socket) this.socket.close(1000);
  }

  subscribe(stream) {
    if (!this.streams.has(stream)) {
      this.streams.set(stream, this.blankState());
    }
    this.send({ type: "subscribe", stream });
  }

  unsubscribe(stream) {
    const state = this.streams.get(stream);
    if (state) clearTimeout(state.gapTimer);
    this.streams.delete(stream);
    this.send({ type: "unsubscribe", stream });
  }

  has(stream) {
    return this.streams.has(stream);
  }

  blankState() {
    return { epoch: null, seq: 0, ready: false, buffer: new Map(), gapTimer: null, syncing: false, again: false };
  }

  // ------------------------------------------------------------ the socket

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.onStatus("connecting");
    const socket = new WebSocket(`${scheme}//${location.host}${this.url}`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.onStatus("live");
      this.startHeartbeat();
      for (const [stream, state] of this.streams) {
        Object.assign(state, this.blankState());
        this.send({ type: "subscribe", stream });
      }
    });
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.stopHeartbeat();
      this.onStatus("offline");
      if (event.code === 4401 || event.code === 4403) {
        this.onControl({ type: "closed", code: event.code });
        return; // signed out or no role: reconnecting would not help
      }
      this.reconnectSoon();
    });
  }

  reconnectSoon(delay) {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    const wait = delay ?? BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.counters.reconnects += 1;
    this.reconnectTimer = setTimeout(() => {
      if (this.socket && this.socket.readyState <= WebSocket.OPEN) {
        this.socket.onclose = null;
        this.socket.close();
      }
      this.connect();
    }, wait);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      this.send({ type: "ping", id: Date.now() });
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => {
        // No answer: the connection is dead even if the browser has not noticed.
        const dead = this.socket;
        this.socket = null;
        if (dead) dead.close();
        this.onStatus("offline");
        this.reconnectSoon(0);
      }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
    }
  }

  // ------------------------------------------------------------ frames

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    switch (frame.type) {
      case "event":
        this.event(frame);
        break;
      case "subscribed":
        this.resync(frame.stream);
        break;
      case "pong":
        clearTimeout(this.pongTimer);
        break;
      case "revoked":
        this.streams.delete(frame.stream);
        this.onControl(frame);
        break;
      default:
        if (frame.type === "error" && frame.stream) this.streams.delete(frame.stream);
        this.onControl(frame);
    }
  }

  event(frame) {
    const state = this.streams.get(frame.stream);
    if (!state) return;
    if (!state.ready) {
      state.buffer.set(frame.seq, frame); // applied after the snapshot, if newer
      return;
    }
    if (frame.epoch !== state.epoch) {
      this.resync(frame.stream);
      return;
    }
    if (frame.seq <= state.seq) {
      this.counters.duplicates += 1;
      return;
    }
    state.buffer.set(frame.seq, frame);
    this.drain(frame.stream, state);
  }

  drain(stream, state) {
    while (state.buffer.has(state.seq + 1)) {
      const frame = state.buffer.get(state.seq + 1);
      state.buffer.delete(state.seq + 1);
      state.seq = frame.seq;
      this.apply(frame);
      if (this.streams.get(stream) !== state) return; // the page unsubscribed meanwhile
    }
    clearTimeout(state.gapTimer);
    state.gapTimer = null;
    if (state.buffer.size > 0) {
      this.counters.gaps += 1;
      state.gapTimer = setTimeout(() => this.resync(stream), GAP_WAIT_MS);
    }
  }

  apply(frame) {
    try {
      this.onEvent(frame);
    } catch (error) {
      console.error("live event handler failed", frame, error);
    }
  }

  async resync(stream) {
    const state = this.streams.get(stream);
    if (!state) return;
    if (state.syncing) {
      state.again = true; // one more after the current one: it may predate the cause
      return;
    }
    state.syncing = true;
    state.ready = false;
    clearTimeout(state.gapTimer);
    this.counters.resyncs += 1;
    try {
      const position = await this.resyncStream(stream);
      if (this.streams.get(stream) !== state) return;
      state.epoch = position.epoch;
      state.seq = position.seq;
      state.ready = true;
      for (const [seq, frame] of [...state.buffer]) {
        if (frame.epoch !== state.epoch || seq <= state.seq) state.buffer.delete(seq);
      }
      this.drain(stream, state);
    } catch (error) {
      console.error("resync failed", stream, error);
      state.again = true;
    } finally {
      state.syncing = false;
      if (state.again && this.streams.get(stream) === state) {
        state.again = false;
        setTimeout(() => this.resync(stream), 500);
      }
    }
  }
}
