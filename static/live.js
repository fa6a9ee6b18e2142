/* Take A Number live updates: follows the page's updates URL (a stream of
   events where the server can, else long-polls) and updates the page in place.
   No framework, no build step. Without JavaScript the page reloads itself
   instead (a <noscript> meta refresh). */
(function () {
  "use strict";

  var body = document.body;
  var url = body.getAttribute("data-live-url");
  if (!url || !window.fetch || !window.JSON) return;
  var page = body.getAttribute("data-live-page");
  var version = parseInt(body.getAttribute("data-version"), 10);
  var previous = null;
  var failures = 0;
  var timer = null;
  var baseTitle = document.title;
  var titleTimer = null;
  var audio = null;
  // The words of alerts are the page's: its template's data-words-* attributes.
  var wordsHolder = document.querySelector(".alert-controls");
  var words = wordsHolder ? wordsHolder.dataset : {};

  // -- alerts -----------------------------------------------------------

  function enableSound() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return false;
    if (!audio) audio = new Context();
    if (audio.resume) audio.resume();
    return true;
  }

  function chime(notes) {
    if (!audio) return;
    var start = audio.currentTime + 0.05;
    notes.forEach(function (frequency, i) {
      var oscillator = audio.createOscillator();
      var gain = audio.createGain();
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + i * 0.35);
      gain.gain.exponentialRampToValueAtTime(0.4, start + i * 0.35 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.35 + 0.3);
      oscillator.connect(gain);
      gain.connect(audio.destination);
      oscillator.start(start + i * 0.35);
      oscillator.stop(start + i * 0.35 + 0.32);
    });
  }

  function vibrate(pattern) {
    // Browsers allow vibration only once the person has touched the page.
    var touched = !navigator.userActivation || navigator.userActivation.hasBeenActive;
    if (navigator.vibrate && touched) navigator.vibrate(pattern);
  }

  function notify(title, text) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      new Notification(title, { body: text, tag: "take-a-number-" + page, renotify: true });
    } catch (e) {
      /* Some mobile browsers only notify from a service worker. */
    }
  }

  function flashTitle(text) {
    stopFlashing();
    var on = false;
    titleTimer = setInterval(function () {
      on = !on;
      document.title = on ? text : baseTitle;
    }, 800);
    document.title = text;
  }

  function stopFlashing() {
    if (titleTimer) clearInterval(titleTimer);
    titleTimer = null;
    document.title = baseTitle;
  }

  ["focus", "click", "keydown"].forEach(function (name) {
    window.addEventListener(name, function () {
      if (document.visibilityState !== "hidden") stopFlashing();
    });
  });

  // -- rendering --------------------------------------------------------

  function listItem(className, parts) {
    var li = document.createElement("li");
    if (className) li.className = className;
    parts.forEach(function (part) {
      var el = document.createElement(part.tag || "span");
      if (part.className) el.className = part.className;
      el.textContent = part.text;
      li.appendChild(el);
    });
    return li;
  }

  // The console's waiting list: each number with its own Call button (a form, as
  // the template makes it).
  function hiddenField(name, value) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = text(value);
    return input;
  }

  function lineItem(ticket, view, list, csrf) {
    var li = listItem("in-line", [
      { className: "line-number", text: String(ticket.number) },
      { className: "line-waited", text: ticket.waited },
      { className: "line-note", text: ticket.let_others_first }
    ]);
    var form = document.createElement("form");
    form.method = "post";
    form.action = list.getAttribute("data-call-url");
    form.appendChild(hiddenField("csrf_token", csrf));
    form.appendChild(hiddenField("expected_current", view.expected_current));
    form.appendChild(hiddenField("number", ticket.number));
    var button = document.createElement("button");
    button.type = "submit";
    button.className = "secondary small";
    button.textContent = list.getAttribute("data-words-call");
    var number = document.createElement("span");
    number.className = "visually-hidden";
    number.textContent = " " + ticket.number;
    button.appendChild(number);
    form.appendChild(button);
    li.appendChild(form);
    return li;
  }

  var lists = {
    waiting_line: function (v, el) {
      var csrf = document.querySelector("input[name=csrf_token]");
      return v.waiting_line.map(function (ticket) {
        return lineItem(ticket, v, el, csrf ? csrf.value : "");
      });
    },
    last_calls: function (v) {
      return v.last_calls.map(function (c) {
        return listItem(c.serving ? "call-serving" : "call-done", [
          { className: "call-number", text: String(c.number) },
          { text: " " },
          { className: "call-desk", text: c.servicer_name }
        ]);
      });
    }
  };

  // The view holds every flag and every piece of text of the page
  // (take_a_number/views.py): this only copies them in, as the template does.
  function text(value) {
    return value === undefined || value === null ? "" : String(value);
  }

  function render(view) {
    document.querySelectorAll("[data-text]").forEach(function (el) {
      el.textContent = text(view[el.getAttribute("data-text")]);
    });
    // A form's hidden field that must follow the view (the console's expected_current).
    document.querySelectorAll("[data-value]").forEach(function (el) {
      el.value = text(view[el.getAttribute("data-value")]);
    });
    document.querySelectorAll("[data-show]").forEach(function (el) {
      el.hidden = !view[el.getAttribute("data-show")];
    });
    document.querySelectorAll("[data-class]").forEach(function (el) {
      var prefix = el.getAttribute("data-class") + "-";
      var kept = el.className.split(/\s+/).filter(function (name) {
        return name.indexOf(prefix) !== 0;
      });
      el.className = kept.concat(prefix + view[el.getAttribute("data-class")]).join(" ");
    });
    document.querySelectorAll("[data-list]").forEach(function (el) {
      var build = lists[el.getAttribute("data-list")];
      if (!build) return;
      el.textContent = "";
      build(view, el).forEach(function (item) { el.appendChild(item); });
    });
  }

  // -- what each page announces ------------------------------------------

  function announce(view, before) {
    if (page === "ticket") {
      var called = view.your_turn;
      var recalled = called && before && view.recalls > before.recalls;
      if (called && (!before || !before.your_turn || recalled)) {
        flashTitle(words.wordsTurnFlash + " " + view.message);
        vibrate([400, 150, 400, 150, 800]);
        chime([880, 1175, 1568]);
        notify(words.wordsTurn, view.message);
      } else if (view.is_next && before && !before.is_next) {
        flashTitle(words.wordsNext + " \u2013 " + baseTitle);
        vibrate([200]);
        chime([660]);
        notify(words.wordsNext, words.wordsNextText);
      } else if (!called) {
        stopFlashing();
      }
    } else if (page === "console") {
      var joined = before && view.newest_waiting > before.newest_waiting;
      var first = before && before.nobody_waiting && !view.nobody_waiting;
      if (first || (joined && chimeSetting() === "every")) {
        flashTitle(words.wordsJoinedFlash + " \u2013 " + view.title);
        chime([660, 880]);
        notify(words.wordsJoined, view.title);
      } else if (view.nobody_waiting || view.has_current !== (before && before.has_current)) {
        stopFlashing();
      }
    } else if (page === "board") {
      // A call, or a recall of the same entry: the view moved its time.
      if (view.has_newest && before && before.newest_call !== view.newest_call) {
        chime([784, 1047]);
        flashNewest();
      }
    }
  }

  // The board's newest call: its highlight plays once more.
  function flashNewest() {
    var newest = document.querySelector(".board-newest");
    if (!newest) return;
    newest.style.animation = "none";
    void newest.offsetWidth; /* restart the animation of style.css */
    newest.style.animation = "";
  }

  // -- the console: its chime setting and its keys ----------------------------

  // Per console (this browser, this queue): "empty" chimes when someone joins an
  // empty line, "every" on every new customer.
  var chimeKey = "take-a-number:chime:" + url;

  function chimeSetting() {
    try {
      return window.localStorage.getItem(chimeKey) || "empty";
    } catch (e) {
      return "empty"; /* storage refused: the default */
    }
  }

  function typingIn(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function consoleControls() {
    var choice = document.querySelector("[data-setting=chime]");
    if (choice) {
      choice.value = chimeSetting();
      choice.addEventListener("change", function () {
        try {
          window.localStorage.setItem(chimeKey, choice.value);
        } catch (e) {
          /* not kept: the choice holds until the page reloads */
        }
      });
    }
    // N, D, S, R and U press the button that shows that key, unless one types.
    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
      if (typingIn(event.target) || event.repeat) return;
      var key = (event.key || "").toLowerCase();
      if (!/^[a-z]$/.test(key)) return;
      var button = document.querySelector("button[data-key=" + key + "]");
      if (!button || button.closest("[hidden]")) return;
      event.preventDefault();
      button.focus();
      button.click();
    });
  }

  // -- following the updates URL -------------------------------------------
  // The first request is answered at once. After it, the page asks for a stream
  // (Server-Sent Events, `Accept: text/event-stream`): under take-a-number serve
  // every new view comes on that one answer, as `data: <view>`, with a comment as
  // a heartbeat each time a hold ends with nothing new. A server that cannot
  // stream answers as a long-poll instead: one view, held until it changes, and
  // the page asks again. Either way, when an answer ends the page asks again.

  var streams = !!(window.ReadableStream && window.TextDecoder && window.AbortController);
  var controller = null;
  // A stream that says nothing for this long (heartbeats come at least every
  // push_heartbeat_seconds, 55 s at most) is dead: the page asks again.
  var SILENT_MS = 70000;

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(poll, delay);
  }

  // One view, from a long-poll's answer or an event of a stream.
  function show(view) {
    failures = 0;
    body.classList.remove("offline");
    // A new version, or the same one read at another time: the queue
    // may have opened or closed by its hours meanwhile.
    if (previous === null || JSON.stringify(view) !== JSON.stringify(previous)) {
      render(view);
      announce(view, previous);
    }
    previous = view;
    version = view.version;
  }

  // The events of a stream as they come; resolves with the last view once it ends.
  function follow(response, aborter) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var last = null;
    var silence = null;
    function listen() {
      clearTimeout(silence);
      silence = setTimeout(function () { aborter.abort(); }, SILENT_MS);
    }
    function take(block) {
      var data = block.split("\n").filter(function (line) {
        return line.indexOf("data:") === 0;
      }).map(function (line) {
        return line.slice(line.charAt(5) === " " ? 6 : 5);
      });
      if (!data.length) return; /* a comment: the heartbeat */
      last = JSON.parse(data.join("\n"));
      show(last);
    }
    function read() {
      return reader.read().then(function (part) {
        listen();
        if (part.done) {
          clearTimeout(silence);
          return last;
        }
        buffer += decoder.decode(part.value, { stream: true }).replace(/\r\n?/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          take(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        return read();
      }, function (error) {
        clearTimeout(silence);
        throw error;
      });
    }
    listen();
    return read();
  }

  function poll() {
    clearTimeout(timer);
    if (controller) controller.abort();
    var since = previous === null ? "" : "?since=" + version;
    var stream = streams && previous !== null;
    var aborter = controller = window.AbortController ? new AbortController() : null;
    var options = { cache: "no-store", credentials: "same-origin" };
    if (aborter) options.signal = aborter.signal;
    if (stream) options.headers = { Accept: "text/event-stream" };
    fetch(url + since, options)
      .then(function (response) {
        if (response.status === 403 || response.status === 404) {
          window.location.reload();
          return null;
        }
        if (response.status === 204) return "again";
        if (!response.ok) throw new Error("HTTP " + response.status);
        var type = response.headers.get("Content-Type") || "";
        if (stream && type.indexOf("text/event-stream") === 0) {
          // A stream that ended without a view (gone, or failing): ask again in a moment.
          return follow(response, aborter).then(function (last) { return last || "quiet"; });
        }
        return response.json().then(function (view) {
          show(view);
          return view;
        });
      })
      .then(function (view) {
        if (view === null || aborter !== controller) return;
        controller = null;
        if (view === "again") return schedule(0);
        if (view === "quiet") return schedule(1000);
        // Out of push capacity: poll now and then until there is room again.
        schedule(view.retry_after ? view.retry_after * 1000 : 0);
      })
      .catch(function () {
        if (aborter !== controller && aborter !== null) return; /* replaced by a newer request */
        controller = null;
        failures += 1;
        if (failures > 1) body.classList.add("offline");
        schedule(Math.min(15000, 500 * Math.pow(2, failures)));
      });
  }

  // Back online: ask again now (a stream open meanwhile may be dead).
  window.addEventListener("online", function () { schedule(0); });

  // -- controls that only make sense with JavaScript -------------------------

  document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });

  var soundButton = document.querySelector("[data-action=enable-sound]");
  if (soundButton) {
    soundButton.addEventListener("click", function () {
      if (enableSound()) {
        chime([880]);
        soundButton.textContent = soundButton.getAttribute("data-words-on");
        soundButton.disabled = true;
      }
    });
  }
  var notifyButton = document.querySelector("[data-action=enable-notifications]");
  if (notifyButton) {
    if (!("Notification" in window) || Notification.permission !== "default") {
      notifyButton.hidden = true;
    }
    notifyButton.addEventListener("click", function () {
      Notification.requestPermission().then(function () { notifyButton.hidden = true; });
    });
  }
  if (page === "console") consoleControls();
  if (page === "board") boardSound(document.querySelector(".board-chime-hint"));

  // The board asks for a click only while the browser keeps its sound off
  // (a kiosk browser may allow it from the start).
  function boardSound(hint) {
    var showHint = function () {
      if (hint) hint.hidden = !!audio && audio.state === "running";
    };
    var turnOn = function () {
      if (enableSound()) {
        audio.onstatechange = showHint;
        showHint();
      }
    };
    turnOn();
    window.addEventListener("click", turnOn);
    window.addEventListener("keydown", turnOn);
  }

  poll();
})();
