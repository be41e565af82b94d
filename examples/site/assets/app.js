document.querySelector("#stripe-checkout")?.addEventListener("click", () => {
  document.querySelector("#stripe-checkout").textContent = "Thanks!";
});

// A single-page app routes on the client: any extension-less path serves this page.
document.querySelector("#route").textContent = `Route: ${location.pathname}`;
