// pi-server's chat page: streams replies from /v1/chat/completions (fetch, server-sent events
// read from the response body), keeps the conversation (the whole list is sent each turn), stops a
// reply on request (AbortController: the server sees the client leave and frees the slot).
// body[data-state] is "loading", "idle" or "streaming" (the browser test waits on it).
'use strict';

const $ = (id) => document.getElementById(id);
const conversation = [];  // {role, content} of the turns so far, the system prompt excepted
let controller = null;    // set while a reply streams

function setState(state) {
  document.body.dataset.state = state;
  $('send').disabled = state !== 'idle';
  $('stop').disabled = state !== 'streaming';
  $('new-chat').disabled = state === 'streaming';
}

function showStatus(text, isError) {
  $('status').textContent = text;
  $('status').classList.toggle('error', Boolean(isError));
}

function authHeaders() {
  const key = $('api-key').value.trim();
  return key ? {Authorization: 'Bearer ' + key} : {};
}

function addMessage(role, text) {
  const div = document.createElement('div');
  div.className = 'msg ' + role;
  div.textContent = text;
  $('messages').appendChild(div);
  div.scrollIntoView({block: 'end'});
  return div;
}

// "HTTP 401: <the server's message>" from an error response (OpenAI's {"error": {"message"}}).
async function errorOf(response) {
  let message = response.statusText;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch (ignored) {
    // not JSON: the status text
  }
  return 'HTTP ' + response.status + ': ' + message;
}

function numberSetting(id, parse) {
  const value = parse($(id).value);
  if (!Number.isFinite(value)) throw new Error($(id).labels[0].textContent.trim() + ' is not a number');
  return value;
}

async function loadProps() {
  try {
    const response = await fetch('/props', {headers: authHeaders()});
    if (!response.ok) {
      showStatus(await errorOf(response) + (response.status === 401 ? ' (set the API key in Settings)' : ''), true);
      return;
    }
    const props = await response.json();
    $('model').textContent = props.model + ' · context ' + props.context_length;
    // Dense is the ordinary case; a sparse or hybrid FFN is worth showing.
    $('mode').hidden = props.ffn_mode === 'dense';
    $('mode').textContent = props.ffn_mode;
    const maxTokens = $('max-tokens');
    maxTokens.max = props.max_tokens;
    if (Number(maxTokens.value) > props.max_tokens) maxTokens.value = props.max_tokens;
    if ($('status').classList.contains('error')) showStatus('');
  } catch (error) {
    showStatus('cannot reach the server: ' + error.message, true);
  }
}

// One server-sent event: its "data:" lines joined. Returns false at "[DONE]".
function onEvent(event, reply) {
  const data = event.split('\n').filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trimStart()).join('\n');
  if (data === '') return true;
  if (data === '[DONE]') return false;
  const chunk = JSON.parse(data);
  if (chunk.error) throw new Error(chunk.error.message || 'the server reported an error');
  if (chunk.usage) reply.usage = chunk.usage;
  const choice = chunk.choices && chunk.choices[0];
  if (choice && choice.delta && typeof choice.delta.content === 'string') {
    reply.text += choice.delta.content;  // shown by streamReply, once per read
  }
  if (choice && choice.finish_reason) reply.finish = choice.finish_reason;
  return true;
}

async function streamReply(body, reply) {
  const response = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: Object.assign({'Content-Type': 'application/json'}, authHeaders()),
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  if (!response.ok) throw new Error(await errorOf(response));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  let shown = '';
  const show = () => {
    if (reply.text === shown) return;
    shown = reply.text;
    reply.element.textContent = shown;
    reply.element.scrollIntoView({block: 'end'});
  };
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      pending += value.replace(/\r\n/g, '\n');
      let end;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const event = pending.slice(0, end);
        pending = pending.slice(end + 2);
        if (!onEvent(event, reply)) return;
      }
      // The DOM once per read, and then a task boundary: while the server streams faster than
      // the page renders, reader.read() resolves at once (a microtask), and without the yield the
      // page would neither paint nor take a click on Stop until the reply ended.
      show();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  } finally {
    show();
  }
}

async function send(event) {
  event.preventDefault();
  const text = $('input').value;
  if (controller || text.trim() === '') return;
  let body;
  try {
    body = {
      messages: [],
      stream: true,
      stream_options: {include_usage: true},
      temperature: numberSetting('temperature', parseFloat),
      top_p: numberSetting('top-p', parseFloat),
      max_tokens: numberSetting('max-tokens', (v) => parseInt(v, 10)),
    };
  } catch (error) {
    showStatus(error.message, true);
    return;
  }
  const system = $('system').value.trim();
  if (system) body.messages.push({role: 'system', content: system});
  conversation.push({role: 'user', content: text});
  body.messages.push(...conversation);
  const question = addMessage('user', text);
  $('input').value = '';
  const reply = {text: '', usage: null, finish: '', element: addMessage('assistant', '')};
  controller = new AbortController();
  setState('streaming');
  showStatus('generating…');
  const start = performance.now();
  let failure = null;
  let stopped = false;
  try {
    await streamReply(body, reply);
  } catch (error) {
    if (error.name === 'AbortError') stopped = true;
    else failure = error;
  }
  controller = null;
  const seconds = (performance.now() - start) / 1000;
  if (failure && reply.text === '') {
    // Nothing came: the turn did not happen; the text goes back to the input to try again.
    conversation.pop();
    question.remove();
    reply.element.remove();
    $('input').value = text;
  } else {
    // A partial reply (stopped, or cut by an error) stays part of the conversation.
    conversation.push({role: 'assistant', content: reply.text});
  }
  if (failure) {
    showStatus(failure.message, true);
  } else if (stopped) {
    showStatus('stopped after ' + seconds.toFixed(1) + ' s');
  } else {
    const tokens = reply.usage ? reply.usage.completion_tokens : 0;
    showStatus(tokens + ' tokens in ' + seconds.toFixed(2) + ' s, ' +
               (seconds > 0 ? tokens / seconds : 0).toFixed(1) + ' tokens/s' +
               (reply.finish ? ', finish ' + reply.finish : ''));
  }
  setState('idle');
  $('input').focus();
}

function init() {
  $('composer').addEventListener('submit', send);
  $('input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      $('composer').requestSubmit();
      event.preventDefault();
    }
  });
  $('stop').addEventListener('click', () => { if (controller) controller.abort(); });
  $('new-chat').addEventListener('click', () => {
    conversation.length = 0;
    $('messages').replaceChildren();
    showStatus('');
  });
  $('api-key').addEventListener('change', loadProps);
  // A phone turned, or a window resized: the latest message stays in view.
  window.addEventListener('resize', () => {
    const last = $('messages').lastElementChild;
    if (last) last.scrollIntoView({block: 'end'});
  });
  setState('idle');
  loadProps();
}

init();
