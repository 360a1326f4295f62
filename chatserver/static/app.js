// The web client of threadchat: PROTOCOL.md over a WebSocket, one frame per
// text message. Plain JavaScript, no build step, no third-party code.
// Everything that comes from the wire is shown with textContent, never as HTML.
"use strict";

(() => {
  const PROTOCOL = "1.3";
  const COLOURS = 12;
  const PAGE = 50;

  const ERRORS = {
    nick_in_use: "That nick is in use. Choose another one.",
    auth_failed: "Wrong or missing password (or too many failed attempts: wait a minute).",
    unsupported_version: "This server speaks another version of the protocol.",
    too_many_connections: "Your address has too many connections open.",
    server_full: "The server is full. Try again later.",
    too_many_rooms: "You are in as many rooms as allowed. Leave one first.",
    room_full: "That room is full.",
    no_such_room: "There is no such room.",
    not_in_room: "You are not in that room.",
    no_such_nick: "Nobody with that nick is connected.",
    rate_limited: "You are sending too fast. Slow down a little.",
    slow_consumer: "The connection was too slow to keep up.",
    timeout: "The connection timed out.",
    shutdown: "The server is restarting.",
    internal_error: "The server failed to do that. It was not done.",
    unavailable: "The server cannot reach its shared state right now. Try again soon.",
    invalid_fields: "The server did not accept that (a name or text breaks its rules).",
    already_registered: "That nick is registered already.",
    frame_too_large: "That message is too large.",
    too_many_errors: "Too many rejected requests.",
    storage_full: "The server cannot store messages right now. It was not sent.",
    quota_exceeded: "You have stored as many messages as allowed.",
    replaced: "You logged in from somewhere else.",
    out_of_order: "The server did not expect that request.",
  };
  // Fatal errors after which reconnecting by itself would not help.
  const FINAL = new Set(["nick_in_use", "auth_failed", "unsupported_version", "replaced", "invalid_fields"]);

  const $ = (id) => document.getElementById(id);
  const fold = (nick) => nick.toLowerCase();

  const state = {
    ws: null,
    login: null, // {nick, password, server_password}
    nick: null,
    resume: null,
    epoch: null,
    welcomed: false,
    v13: false, // the server speaks 1.3: `joined.more` is meaningful
    leaving: false, // the person logged out: do not reconnect
    retry: 0,
    nextId: 0,
    pending: new Map(), // request id -> {resolve, reject}
    rooms: new Map(), // name -> room
    dms: new Map(), // folded nick -> {nick, messages, ids, unread}
    view: null, // {kind: "room" | "dm", name}
    unsent: new Map(), // key -> say/dm command awaiting its echo
  };

  // -- the connection ----------------------------------------------------

  function url() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  }

  function connect() {
    const ws = new WebSocket(url());
    state.ws = ws;
    state.welcomed = false;
    ws.onopen = () => {
      const hello = { type: "hello", nick: state.login.nick, version: PROTOCOL, client: "threadchat-web 1.0" };
      if (state.login.password) hello.password = state.login.password;
      if (state.login.server_password) hello.server_password = state.login.server_password;
      if (state.resume) hello.resume = state.resume;
      request(hello).then(welcomed, () => {});
    };
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === "string") receive(frame);
    };
    ws.onclose = (event) => {
      if (state.ws !== ws) return;
      state.ws = null;
      for (const waiter of state.pending.values()) waiter.reject(new Error("closed"));
      state.pending.clear();
      if (state.leaving) return;
      if (!state.welcomed && state.retry === 0 && !state.nick) {
        showLogin(state.finalError || "Could not connect to the server" + (event.code === 1006 ? "." : ` (${event.code}).`));
        return;
      }
      if (state.finalError) {
        showLogin(state.finalError);
        return;
      }
      const delay = Math.min(10000, 500 * 2 ** Math.min(state.retry, 5));
      state.retry += 1;
      status(`Connection lost. Reconnecting in ${Math.round(delay / 1000)} s…`);
      setTimeout(connect, delay);
    };
  }

  function send(frame) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  // A command with a fresh id; resolves with its reply, rejects with its error.
  function request(frame) {
    state.nextId += 1;
    const id = `w${state.nextId}`;
    const promise = new Promise((resolve, reject) => {
      if (!send({ ...frame, id })) {
        reject(new Error("not connected"));
        return;
      }
      state.pending.set(id, { resolve, reject });
    });
    promise.id = id;
    return promise;
  }

  function receive(frame) {
    if (frame.ref !== undefined && frame.ref !== null && state.pending.has(frame.ref)) {
      const waiter = state.pending.get(frame.ref);
      state.pending.delete(frame.ref);
      if (frame.type === "error") waiter.reject(frame);
      else waiter.resolve(frame);
    }
    switch (frame.type) {
      case "message": onMessage(frame); break;
      case "dm": onDm(frame); break;
      case "member_joined": onMemberJoined(frame); break;
      case "member_left": onMemberLeft(frame); break;
      case "member_count": onMemberCount(frame); break;
      case "renamed": onRenamed(frame); break;
      case "topic": onTopic(frame); break;
      case "ping": send({ type: "pong", token: frame.token }); break;
      case "error": onError(frame); break;
      default: break;
    }
  }

  function welcomed(welcome) {
    state.welcomed = true;
    state.retry = 0;
    state.finalError = null;
    state.nick = welcome.nick;
    const [major, minor] = String(welcome.version).split(".").map(Number);
    state.v13 = major > 1 || (major === 1 && minor >= 3);
    state.resume = welcome.resume || null;
    if (state.epoch !== null && welcome.epoch && welcome.epoch !== state.epoch) {
      // The server lost its stored state: ids seen before mean nothing now.
      for (const room of state.rooms.values()) forget(room);
    }
    state.epoch = welcome.epoch || state.epoch;
    $("me").textContent = state.nick;
    showChat();
    status(welcome.resumed ? "Reconnected." : state.rooms.size ? "Reconnected; rejoining…" : "");
    if (!state.rooms.size) {
      join(state.login.room || "lobby");
      return;
    }
    Promise.all([...state.rooms.values()].map(rejoin)).then(() => {
      resendUnsent();
      status("");
    });
  }

  // -- rooms -------------------------------------------------------------

  function newRoom(name) {
    return { name, topic: "", members: new Map(), count: 0, messages: [], ids: new Set(),
      oldest: null, newest: null, more: false, loading: false, unread: 0 };
  }

  function forget(room) {
    room.messages = [];
    room.ids.clear();
    room.oldest = room.newest = null;
    room.more = false;
  }

  function join(name) {
    request({ type: "join", room: name }).then((joined) => {
      const room = state.rooms.get(joined.room) || newRoom(joined.room);
      state.rooms.set(room.name, room);
      applyJoined(room, joined);
      select({ kind: "room", name: room.name });
    }, showError);
  }

  // After a reconnect: the room again, then everything after the last message seen.
  function rejoin(room) {
    const last = room.newest;
    return request({ type: "join", room: room.name }).then(async (joined) => {
      applyJoined(room, joined);
      if (last !== null) await catchUp(room, last);
      render();
    }, showError);
  }

  async function catchUp(room, after) {
    let cursor = after;
    for (;;) {
      const page = await request({ type: "history", room: room.name, after: cursor, limit: 100 });
      for (const m of page.messages) addMessage(room, m);
      if (!page.more || !page.messages.length) return;
      cursor = page.messages[page.messages.length - 1].id;
    }
  }

  function applyJoined(room, joined) {
    room.topic = joined.topic;
    room.members = new Map(joined.members.map((nick) => [fold(nick), nick]));
    room.count = joined.count ?? joined.members.length;
    const empty = room.messages.length === 0;
    for (const m of joined.history) addMessage(room, m);
    // Before 1.3 a server does not say whether older messages exist: ask once to learn it.
    if (empty) room.more = state.v13 ? Boolean(joined.more) : joined.history.length > 0;
    render();
  }

  function addMessage(room, m) {
    if (room.ids.has(m.id)) return false;
    room.ids.add(m.id);
    const list = room.messages;
    let at = list.length;
    while (at > 0 && list[at - 1].id > m.id) at -= 1;
    list.splice(at, 0, m);
    if (room.oldest === null || m.id < room.oldest) room.oldest = m.id;
    if (room.newest === null || m.id > room.newest) room.newest = m.id;
    return true;
  }

  function onMessage(m) {
    const room = state.rooms.get(m.room);
    if (!room) return;
    if (m.ref !== undefined) dropUnsent(m);
    if (!addMessage(room, m)) return;
    if (!viewing("room", room.name) && fold(m.nick) !== fold(state.nick)) room.unread += 1;
    render(m.ref !== undefined);
  }

  function older() {
    const room = currentRoom();
    if (!room || room.loading || !room.more || room.oldest === null) return;
    room.loading = true;
    const box = $("messages");
    const height = box.scrollHeight;
    request({ type: "history", room: room.name, before: room.oldest, limit: PAGE }).then((page) => {
      room.loading = false;
      for (const m of page.messages) addMessage(room, m);
      room.more = page.more;
      render();
      box.scrollTop = box.scrollHeight - height; // keep the reader's place
    }, (err) => {
      room.loading = false;
      showError(err);
    });
  }

  function onMemberJoined(e) {
    const room = state.rooms.get(e.room);
    if (!room) return;
    room.members.set(fold(e.nick), e.nick);
    room.count += 1;
    render();
  }

  function onMemberLeft(e) {
    const room = state.rooms.get(e.room);
    if (!room) return;
    room.members.delete(fold(e.nick));
    room.count = Math.max(0, room.count - 1);
    render();
  }

  function onMemberCount(e) {
    const room = state.rooms.get(e.room);
    if (room) {
      room.count = e.count;
      render();
    }
  }

  function onRenamed(e) {
    if (fold(e.old) === fold(state.nick || "")) {
      state.nick = e.new;
      state.login.nick = e.new;
      $("me").textContent = e.new;
    }
    for (const room of state.rooms.values()) {
      if (room.members.delete(fold(e.old))) room.members.set(fold(e.new), e.new);
    }
    const dm = state.dms.get(fold(e.old));
    if (dm) {
      state.dms.delete(fold(e.old));
      dm.nick = e.new;
      state.dms.set(fold(e.new), dm);
      if (viewing("dm", e.old)) state.view = { kind: "dm", name: e.new };
    }
    render();
  }

  function onTopic(e) {
    const room = state.rooms.get(e.room);
    if (room) {
      room.topic = e.topic;
      render();
    }
  }

  // -- direct messages -------------------------------------------------------

  function conversation(nick) {
    let dm = state.dms.get(fold(nick));
    if (!dm) {
      dm = { nick, messages: [], ids: new Set(), unread: 0 };
      state.dms.set(fold(nick), dm);
    }
    return dm;
  }

  function onDm(m) {
    const mine = fold(m.nick) === fold(state.nick);
    const dm = conversation(mine ? m.to : m.nick);
    if (m.ref !== undefined) dropUnsent(m);
    if (dm.ids.has(m.id)) return;
    dm.ids.add(m.id);
    dm.messages.push(m);
    if (!mine && !viewing("dm", dm.nick)) dm.unread += 1;
    render(mine);
  }

  // -- sending -----------------------------------------------------------

  function key() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function say(text) {
    const view = state.view;
    if (!view) return;
    const command = view.kind === "room"
      ? { type: "say", room: view.name, text, key: key() }
      : { type: "dm", to: view.name, text, key: key() };
    track(command);
  }

  // A say or dm stays here, with the id it was last sent under, until its echo.
  function track(command) {
    const sent = request(command);
    state.unsent.set(command.key, { command, id: sent.id });
    sent.catch((err) => {
      if (err && err.type === "error") {
        state.unsent.delete(command.key);
        showError(err);
      }
    });
  }

  function dropUnsent(echo) {
    for (const [k, entry] of state.unsent) {
      if (entry.id === echo.ref) {
        state.unsent.delete(k);
        return;
      }
    }
  }

  // Commands whose echo never came: sent again with the same key, which the
  // server recognises, so that nothing is stored twice.
  function resendUnsent() {
    for (const entry of [...state.unsent.values()]) track(entry.command);
  }

  function runCommand(text) {
    const [word, ...rest] = text.slice(1).split(" ");
    const arg = rest.join(" ").trim();
    switch (word.toLowerCase()) {
      case "join": if (arg) join(arg); return true;
      case "part": partRoom(); return true;
      case "nick": changeNick(arg.split(" ")[0], arg.split(" ")[1]); return true;
      case "topic": setTopic(arg); return true;
      case "msg": {
        const [to, ...words] = arg.split(" ");
        if (to) {
          select({ kind: "dm", name: to });
          if (words.length) say(words.join(" "));
        }
        return true;
      }
      default: return false;
    }
  }

  function changeNick(nick, password) {
    if (!nick) return;
    const command = { type: "nick", nick };
    if (password) command.password = password;
    request(command).catch(showError);
  }

  function setTopic(topic) {
    const room = currentRoom();
    if (room) request({ type: "topic", room: room.name, topic }).catch(showError);
  }

  function partRoom() {
    const room = currentRoom();
    if (!room) return;
    request({ type: "part", room: room.name }).then(() => {
      state.rooms.delete(room.name);
      const next = state.rooms.keys().next();
      state.view = next.done ? null : { kind: "room", name: next.value };
      render();
    }, showError);
  }

  // -- errors and status -------------------------------------------------

  function onError(e) {
    if (e.fatal) {
      // A nick still held by our own lost connection is let go in time: retry.
      const ghost = e.code === "nick_in_use" && state.rooms.size > 0;
      if (FINAL.has(e.code) && !ghost) state.finalError = plain(e);
      status(plain(e));
    } else if (e.ref === undefined) {
      showError(e);
    }
  }

  function plain(e) {
    return ERRORS[e.code] || "Something went wrong.";
  }

  function showError(err) {
    if (!err || err.type !== "error") return;
    $("error").textContent = plain(err);
    clearTimeout(showError.timer);
    showError.timer = setTimeout(() => { $("error").textContent = ""; }, 8000);
  }

  function status(text) {
    $("status").textContent = text;
  }

  // -- the page ----------------------------------------------------------

  function colour(nick) {
    let h = 0;
    for (const c of fold(nick)) h = (h * 31 + c.codePointAt(0)) >>> 0;
    return `nick-c${h % COLOURS}`;
  }

  function time(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function viewing(kind, name) {
    return state.view !== null && state.view.kind === kind && fold(state.view.name) === fold(name);
  }

  function currentRoom() {
    return state.view && state.view.kind === "room" ? state.rooms.get(state.view.name) : null;
  }

  function select(view) {
    state.view = view;
    if (view.kind === "room") {
      const room = state.rooms.get(view.name);
      if (room) room.unread = 0;
    } else {
      conversation(view.name).unread = 0;
    }
    closePanels();
    render(true);
    $("composer-text").focus();
  }

  function render(stick) {
    const box = $("messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    renderLists();
    renderView();
    if (stick === true || atBottom) box.scrollTop = box.scrollHeight;
    // Too few messages to scroll: nothing would ever ask for older ones.
    if (box.scrollHeight <= box.clientHeight) older();
    let unread = 0;
    for (const r of state.rooms.values()) unread += r.unread;
    for (const d of state.dms.values()) unread += d.unread;
    document.title = unread ? `(${unread}) threadchat` : "threadchat";
    // At phone width the lists are folded away: their button carries the count.
    const toggle = $("toggle-rooms");
    toggle.replaceChildren("Rooms");
    if (unread) toggle.append(" ", el("span", "unread", String(unread)));
  }

  function entry(label, unread, current, onSelect, data) {
    const li = el("li");
    const button = el("button", current ? "current" : "");
    button.type = "button";
    button.dataset.name = data;
    button.append(el("bdi", "name", label));
    if (current) button.setAttribute("aria-current", "true");
    if (unread) {
      const badge = el("span", "unread", String(unread));
      badge.setAttribute("aria-label", `${unread} unread`);
      button.append(badge);
    }
    button.addEventListener("click", onSelect);
    li.append(button);
    return li;
  }

  function renderLists() {
    const rooms = $("room-list");
    rooms.replaceChildren(...[...state.rooms.values()].map((room) =>
      entry(room.name, room.unread, viewing("room", room.name),
        () => select({ kind: "room", name: room.name }), room.name)));
    const dms = $("dm-list");
    dms.replaceChildren(...[...state.dms.values()].map((dm) => {
      const li = entry(dm.nick, dm.unread, viewing("dm", dm.nick),
        () => select({ kind: "dm", name: dm.nick }), dm.nick);
      li.firstChild.classList.add(online(dm.nick) ? "online" : "offline");
      return li;
    }));
  }

  function online(nick) {
    for (const room of state.rooms.values()) if (room.members.has(fold(nick))) return true;
    return false;
  }

  function renderView() {
    const view = state.view;
    const list = $("messages");
    const members = $("member-list");
    $("older").hidden = true;
    if (!view) {
      $("title-name").textContent = "";
      $("topic").textContent = "";
      list.replaceChildren();
      members.replaceChildren();
      return;
    }
    if (view.kind === "room") {
      const room = state.rooms.get(view.name);
      if (!room) return;
      $("title-name").textContent = room.name;
      $("topic").textContent = room.topic;
      $("older").hidden = !room.more;
      list.replaceChildren(...room.messages.map(line));
      $("member-count").textContent = `(${room.count})`;
      const nicks = [...room.members.values()].sort((a, b) => fold(a).localeCompare(fold(b)));
      members.replaceChildren(...nicks.map((nick) => {
        const li = el("li", "member online");
        const button = el("button", colour(nick));
        button.type = "button";
        button.append(el("bdi", "", nick));
        button.title = `Message ${nick}`;
        button.addEventListener("click", () => select({ kind: "dm", name: nick }));
        li.append(button);
        return li;
      }));
    } else {
      const dm = conversation(view.name);
      $("title-name").textContent = dm.nick;
      $("topic").textContent = online(dm.nick) ? "direct messages (online)" : "direct messages";
      list.replaceChildren(...dm.messages.map(line));
      members.replaceChildren();
      $("member-count").textContent = "";
    }
  }

  function line(m) {
    const li = el("li", "msg");
    li.dataset.id = String(m.id);
    const stamp = el("time", "time", time(m.ts));
    stamp.dateTime = new Date(m.ts).toISOString();
    const nick = el("bdi", `nick ${colour(m.nick)}`, m.nick);
    const text = el("bdi", "text", m.text);
    li.append(stamp, " ", nick, " ", text);
    return li;
  }

  // -- panels (phone width) and screens -----------------------------------

  function closePanels() {
    for (const [button, panel] of [["toggle-rooms", "sidebar"], ["toggle-members", "members"]]) {
      $(panel).classList.remove("open");
      $(button).setAttribute("aria-expanded", "false");
    }
  }

  function toggle(button, panel) {
    const open = !$(panel).classList.contains("open");
    closePanels();
    $(panel).classList.toggle("open", open);
    $(button).setAttribute("aria-expanded", String(open));
  }

  function showChat() {
    $("login").hidden = true;
    $("chat").hidden = false;
  }

  function showLogin(message) {
    $("chat").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("login-button").disabled = false;
    state.nick = null;
    state.resume = null;
    state.rooms.clear();
    state.dms.clear();
    state.view = null;
  }

  // -- wiring ------------------------------------------------------------

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.login = {
      nick: $("login-nick").value.trim(),
      password: $("login-password").value,
      server_password: $("login-server-password").value,
      room: $("login-room").value.trim() || "lobby",
    };
    state.leaving = false;
    state.finalError = null;
    $("login-error").textContent = "";
    $("login-button").disabled = true;
    connect();
  });

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const box = $("composer-text");
    const text = box.value;
    if (!text.trim()) return;
    if (text.startsWith("/") && runCommand(text.trim())) {
      box.value = "";
      return;
    }
    say(text);
    box.value = "";
  });

  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });

  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("join-room").value.trim();
    if (name) join(name);
    $("join-room").value = "";
  });

  $("dm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const nick = $("dm-nick").value.trim();
    if (nick) select({ kind: "dm", name: nick });
    $("dm-nick").value = "";
  });

  $("nick-form").addEventListener("submit", (event) => {
    event.preventDefault();
    changeNick($("nick-new").value.trim());
    $("nick-new").value = "";
  });

  $("topic-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setTopic($("topic-new").value);
    $("topic-new").value = "";
  });

  $("browse-rooms").addEventListener("click", () => {
    request({ type: "rooms" }).then((reply) => {
      const list = $("all-rooms");
      list.replaceChildren(...reply.rooms.map((info) => {
        const li = entry(`${info.room} (${info.members})`, 0, false, () => join(info.room), info.room);
        if (info.topic) li.append(el("span", "topic", info.topic));
        return li;
      }));
      list.hidden = false;
    }, showError);
  });

  $("part-room").addEventListener("click", partRoom);
  $("logout").addEventListener("click", () => {
    state.leaving = true;
    request({ type: "bye" }).catch(() => {});
    showLogin("");
  });
  $("older").addEventListener("click", older);
  $("messages").addEventListener("scroll", () => {
    if ($("messages").scrollTop < 40) older();
  });
  $("toggle-rooms").addEventListener("click", () => toggle("toggle-rooms", "sidebar"));
  $("toggle-members").addEventListener("click", () => toggle("toggle-members", "members"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePanels();
  });
  window.addEventListener("pagehide", () => {
    if (state.ws) send({ type: "bye" });
  });
})();
