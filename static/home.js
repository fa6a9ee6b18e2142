// The home page: a new queue takes this browser's time zone (its statistics and opening
// hours are in it); without JavaScript, or for a zone the server does not know, UTC.
"use strict";
(function () {
  var field = document.getElementById("timezone");
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (field && zone && !field.value) field.value = zone;
  } catch (error) {
    // An old browser: the server takes UTC.
  }
})();
