/* Starts Swagger UI on the API docs page (/api/v1/docs), with the settings the page's
 * container carries: the OpenAPI document's URL and any extra Swagger UI configuration.
 * It lives in a file of its own because the Content-Security-Policy allows no inline script.
 */
(function () {
  "use strict";

  var container = document.getElementById("swagger-ui-container");
  var config = {
    url: container.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui-container",
  };
  var override = JSON.parse(container.getAttribute("data-config") || "{}");
  for (var name in override) {
    config[name] = override[name];
  }

  window.addEventListener("load", function () {
    window.ui = SwaggerUIBundle(config);
  });
})();
