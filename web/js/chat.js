// The chat panel: a second WebSocket to /chat speaking the JSON protocol
// in the README ("Chat"). Kept apart from main.js, which teaches the raw API.
const $ = (id) => document.getElementById(id);

const state = { ws: null, room: null, nick: null, members: new Set() };

function chatUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/chat`;
}

function line(kind, nick, text, title) {
  const li = document.createElement('li');
  li.className = kind;
  if (nick) {
    const n = document.createElement('span');
    n.className = 'nick';
    n.textContent = nick;
    li.append(n);
  }
  li.append(document.createTextNode(text));
  if (title) li.title = title;
  const list = $('chat-lines');
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

// Every JSON text message both ways, as its own line: shown when "the JSON" is ticked.
function jsonLine(dir, text) {
  const li = document.createElement('li');
  li.className = `json ${dir}`;
  li.dataset.testid = 'chat-json';
  const tag = document.createElement('span');
  tag.className = `dir ${dir}`;
  tag.textContent = dir === 'in' ? 'sent ↑' : 'received ↓';
  const code = document.createElement('code');
  code.textContent = text;
  li.append(tag, ' ', code);
  const list = $('chat-lines');
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

function sendJson(obj) {
  const text = JSON.stringify(obj);
  state.ws.send(text);
  jsonLine('in', text);
}

function renderMembers() {
  const ul = $('chat-members');
  ul.replaceChildren(...[...state.members].sort().map((n) => {
    const li = document.createElement('li');
    li.textContent = n;
    return li;
  }));
  $('chat-count').textContent = String(state.members.size);
}

function setJoined(joined) {
  $('chat-join-btn').disabled = joined;
  $('chat-leave-btn').disabled = !joined;
  $('chat-text').disabled = !joined;
  $('chat-send-btn').disabled = !joined;
  $('chat-room').disabled = joined;
  $('chat-nick').disabled = joined;
  if (joined) $('chat-text').focus();
}

function onMessage(ev) {
  jsonLine('out', ev.data);
  let m;
  try {
    m = JSON.parse(ev.data);
  } catch {
    return line('error', null, 'not JSON: ' + ev.data);
  }
  switch (m.type) {
    case 'joined':
      state.members = new Set(m.members);
      renderMembers();
      for (const h of m.history) line('message', h.nick, h.text, `#${h.id} ${new Date(h.ts).toLocaleTimeString()}`);
      line('system', null, `you joined ${m.room} as ${m.nick}`);
      setJoined(true);
      break;
    case 'presence':
      if (m.event === 'join') state.members.add(m.nick);
      else state.members.delete(m.nick);
      renderMembers();
      line('system', null, `${m.nick} ${m.event === 'join' ? 'joined' : 'left'}`);
      break;
    case 'message':
      line('message', m.nick, m.text, `#${m.id} ${new Date(m.ts).toLocaleTimeString()}`);
      break;
    case 'error':
      line('error', null, `${m.code}: ${m.message}`);
      break;
    default:
      line('system', null, ev.data);
  }
}

function join(ev) {
  ev.preventDefault();
  const room = $('chat-room').value.trim();
  const nick = $('chat-nick').value.trim();
  if (!room || !nick) return line('error', null, 'pick a room and a nickname');
  state.room = room;
  state.nick = nick;
  const send = () => sendJson({ type: 'join', room, nick });
  if (state.ws && state.ws.readyState === WebSocket.OPEN) return send();
  state.ws = new WebSocket(chatUrl());
  state.ws.onopen = send;
  state.ws.onmessage = onMessage;
  state.ws.onclose = (e) => {
    line('system', null, `chat connection closed (code ${e.code}${e.reason ? ', ' + e.reason : ''})`);
    state.ws = null;
    state.members.clear();
    renderMembers();
    setJoined(false);
  };
}

function leave() {
  if (!state.ws) return;
  sendJson({ type: 'leave', room: state.room });
  state.members.clear();
  renderMembers();
  line('system', null, `you left ${state.room}`);
  setJoined(false);
}

function say(ev) {
  ev.preventDefault();
  const text = $('chat-text').value;
  if (!text || !state.ws) return;
  sendJson({ type: 'send', room: state.room, text });
  $('chat-text').value = '';
}

$('chat-nick').value = 'guest' + Math.floor(Math.random() * 1000);
$('chat-join').addEventListener('submit', join);
$('chat-leave-btn').addEventListener('click', leave);
$('chat-send').addEventListener('submit', say);
const showJson = () => $('chat-lines').classList.toggle('show-json', $('chat-json').checked);
$('chat-json').addEventListener('change', showJson);
showJson();
