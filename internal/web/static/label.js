// Reordering for the /label ranking form: drag and drop, Move up/down
// buttons and Alt+ArrowUp/ArrowDown. The rank <select>s stay the source of
// truth (they are what the form submits, and they work without this file):
// moving a response renumbers them, and choosing a rank moves the response.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Sliders show their value.
  document.querySelectorAll("input[type=range]").forEach(function (input) {
    var out = document.querySelector('output[data-for="' + input.name + '"]');
    if (!out) return;
    input.addEventListener("input", function () { out.value = input.value; });
  });

  var list = document.getElementById("ranking");
  if (!list) return;
  var announce = document.getElementById("rank-announce");
  var items = function () { return Array.prototype.slice.call(list.children); };

  function renumber(moved) {
    items().forEach(function (li, i) {
      li.querySelector("select.rank").value = String(i + 1);
      li.classList.toggle("just-moved", li === moved);
    });
    if (moved && announce) {
      announce.textContent = "Response " + moved.dataset.letter + " is now rank " + (items().indexOf(moved) + 1) + " of " + items().length + ".";
    }
  }

  function moveTo(li, index) {
    var all = items().filter(function (x) { return x !== li; });
    index = Math.max(0, Math.min(all.length, index));
    list.insertBefore(li, all[index] || null);
    renumber(li);
  }

  function moveBy(li, delta, focusSel) {
    moveTo(li, items().indexOf(li) + delta);
    var again = li.querySelector(focusSel);
    if (again) again.focus();
  }

  items().forEach(function (li) {
    li.querySelectorAll("button.move").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () {
        moveBy(li, Number(b.dataset.move), 'button.move[data-move="' + b.dataset.move + '"]');
      });
    });
    li.addEventListener("keydown", function (e) {
      if (!e.altKey || (e.key !== "ArrowUp" && e.key !== "ArrowDown")) return;
      e.preventDefault();
      moveBy(li, e.key === "ArrowUp" ? -1 : 1, "select.rank");
    });
    li.querySelector("select.rank").addEventListener("change", function (e) {
      moveTo(li, Number(e.target.value) - 1);
      e.target.focus();
    });
    li.draggable = true;
    li.addEventListener("dragstart", function (e) {
      li.classList.add("dragging");
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", li.dataset.id);
    });
    li.addEventListener("dragend", function () {
      li.classList.remove("dragging");
      renumber(li);
    });
  });

  list.addEventListener("dragover", function (e) {
    var dragging = list.querySelector(".dragging");
    if (!dragging) return;
    e.preventDefault();
    var after = null;
    items().some(function (li) {
      if (li === dragging) return false;
      var box = li.getBoundingClientRect();
      if (e.clientY < box.top + box.height / 2) { after = li; return true; }
      return false;
    });
    list.insertBefore(dragging, after);
  });
  list.addEventListener("drop", function (e) { e.preventDefault(); });
})();
