/* The Manage page: while "Always open" is ticked, the days and times are
   disabled, as they are ignored (without JavaScript the server ignores them). */
(function () {
  "use strict";

  document.querySelectorAll("[data-off-when-checked]").forEach(function (fields) {
    var box = document.getElementById(fields.getAttribute("data-off-when-checked"));
    if (!box) return;
    var update = function () { fields.disabled = box.checked; };
    box.addEventListener("change", update);
    update();
  });
})();
