document.querySelector("#stripe-checkout")?.addEventListener("click", () => {
  document.querySelector("#stripe-checkout").textContent = "Thanks!";
});
