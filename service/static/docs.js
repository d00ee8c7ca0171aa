// Starts Swagger UI on GET /docs. A file of its own, not an inline script:
// the page's Content-Security-Policy runs scripts from this server only.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // Swagger UI's default badge asks validator.swagger.io about the spec.
    validatorUrl: null,
    displayOperationId: true,
    displayRequestDuration: true,
    // POST /params and POST /train bodies start from the spec's examples.
    tryItOutEnabled: false,
  });
});
