// Labels each cell of a list table with its column's heading (data-label),
// so that on a narrow screen, where CSS turns rows into cards, every value
// says what it is. The server labels the leaderboards itself; this covers
// the other tables. Without JavaScript the cards simply carry no labels.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.list")) {
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim().split("\n")[0].trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.children].forEach((cell, i) => {
        if (cell.tagName === "TD" && !cell.hasAttribute("data-label") && !cell.hasAttribute("colspan") && heads[i]) {
          cell.setAttribute("data-label", heads[i]);
        }
      });
    }
  }
});
