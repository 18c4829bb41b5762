/* Switchboard web chat widget.
 * <script src="https://HOST/chat/widget.js" data-channel="<channel-uuid>" async></script>
 * Optional: data-color="#rrggbb" (the button), data-lang="ar" (else the page's <html lang>).
 * Adds a round button (bottom-right; bottom-left on dir=rtl pages) that opens the chat in an iframe.
 * Exposes only window.SwitchboardWidget = { open, close, toggle }. */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script) {
    var found = document.querySelectorAll('script[data-channel][src*="widget.js"]');
    script = found[found.length - 1];
  }
  var channel = script && script.getAttribute('data-channel');
  if (!channel || window.SwitchboardWidget) return;
  // The chat speaks the page's language (data-lang, else <html lang>) when it has it.
  var lang = (script.getAttribute('data-lang') || document.documentElement.lang || '').trim().toLowerCase();
  var langParam = /^[a-z]{2}\b/.test(lang) ? '&lang=' + lang.slice(0, 2) : '';
  // Resolve against the script's own URL, so the chat comes from the same host (and path prefix).
  var chatUrl = new URL(encodeURIComponent(channel.trim()) + '?embed=1' + langParam, script.src).href;
  var chatOrigin = new URL(chatUrl).origin;

  var ICON_CHAT = '<svg width="28" height="28" viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" d="M12 3C6.48 3 2 6.9 2 11.7c0 2.5 1.22 4.75 3.17 6.33-.13 1.2-.62 2.4-1.5 3.4a.5.5 0 0 0 .43.83c1.93-.16 3.6-.86 4.83-1.7 1 .27 2 .4 3.07.4 5.52 0 10-3.9 10-8.7S17.52 3 12 3Z"/></svg>';
  var ICON_CLOSE = '<svg width="24" height="24" viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" fill="none"/></svg>';
  var CSS =
    ':host{all:initial}' +
    '.btn{position:fixed;bottom:20px;SIDE:20px;z-index:2147483000;width:60px;height:60px;border:0;border-radius:50%;' +
    'background:COLOR;color:#fff;display:grid;place-items:center;cursor:pointer;' +
    'box-shadow:0 8px 24px rgba(20,20,50,.28),0 2px 6px rgba(20,20,50,.16);transition:transform .15s}' +
    '.btn:hover{transform:scale(1.06)}.btn:focus-visible{outline:3px solid COLOR;outline-offset:3px}' +
    '.frame{position:fixed;bottom:92px;SIDE:20px;z-index:2147483000;width:380px;height:620px;' +
    'max-height:calc(100vh - 112px);max-width:calc(100vw - 40px);border:0;border-radius:18px;background:#fff;' +
    'box-shadow:0 18px 50px rgba(20,20,50,.28);color-scheme:normal}' +
    '@media (max-width:480px){.frame{inset:0;width:100%;height:100%;max-width:none;max-height:none;border-radius:0}' +
    '.open .btn{display:none}}';

  function init() {
    var rtl = (document.documentElement.dir || (document.body && document.body.dir) || '').toLowerCase() === 'rtl' ||
      getComputedStyle(document.body || document.documentElement).direction === 'rtl';
    var color = /^#[0-9a-f]{3,8}$/i.test(script.getAttribute('data-color') || '') ? script.getAttribute('data-color') : '#4f46e5';
    var host = document.createElement('div');
    host.setAttribute('data-switchboard-widget', '');
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    var style = document.createElement('style');
    style.textContent = CSS.replace(/SIDE/g, rtl ? 'left' : 'right').replace(/COLOR/g, color);
    var wrap = document.createElement('div');
    var btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'btn';
    btn.setAttribute('aria-haspopup', 'dialog');
    wrap.appendChild(btn);
    root.appendChild(style);
    root.appendChild(wrap);
    document.body.appendChild(host);

    var frame = null;
    var isOpen = false;
    function render() {
      wrap.className = isOpen ? 'open' : '';
      btn.innerHTML = isOpen ? ICON_CLOSE : ICON_CHAT; // static markup only
      btn.setAttribute('aria-expanded', String(isOpen));
      btn.setAttribute('aria-label', isOpen ? 'Close chat' : 'Open chat');
      if (frame) frame.hidden = !isOpen;
    }
    function open() {
      if (!frame) { // created on first open, so the page pays nothing until then
        frame = document.createElement('iframe');
        frame.className = 'frame';
        frame.title = 'Chat';
        frame.src = chatUrl;
        frame.setAttribute('allow', 'clipboard-write');
        wrap.insertBefore(frame, btn);
      }
      isOpen = true;
      render();
      try { frame.focus(); } catch (e) { /* ignore */ }
    }
    function close() {
      if (!isOpen) return;
      isOpen = false;
      render();
      btn.focus();
    }
    btn.addEventListener('click', function () { if (isOpen) close(); else open(); });
    window.addEventListener('message', function (e) {
      if (frame && e.source === frame.contentWindow && e.origin === chatOrigin && e.data && e.data.type === 'switchboard:close') close();
    });
    render();
    window.SwitchboardWidget = { open: open, close: close, toggle: function () { if (isOpen) close(); else open(); } };
    if (early) open();
  }

  var early = null; // a call made before the page body exists is replayed by init
  window.SwitchboardWidget = {
    open: function () { early = 'open'; }, close: function () { early = null; }, toggle: function () { early = early ? null : 'open'; }
  };
  if (document.body) init();
  else document.addEventListener('DOMContentLoaded', init);
})();
