import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import * as Fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as Path from "node:path"

/**
 * Swagger UI at `/api`, from the `swagger-ui-dist` package's files (offline: no outside script or
 * stylesheet), reading the OpenAPI document at `/api/openapi.json`.
 *
 * Its script and stylesheet (1.6 MB) are read from disk when asked for and not kept: the bundled UI of
 * `HttpApiSwagger` held them in the heap of every instance from start, for a page ops open now and then.
 */
const distDir = Path.dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"))

const assets: Readonly<Record<string, string>> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8"
}

const page = (path: string, title: string) => `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>${title}</title>
  <link rel="stylesheet" href="${path}/swagger-ui.css" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${path}/swagger-ui-bundle.js"></script>
  <script>
    window.onload = () => {
      window.ui = SwaggerUIBundle({ url: "${path}/openapi.json", dom_id: "#swagger-ui" })
    }
  </script>
</body>
</html>`

export const swaggerUi = (options: { readonly path: `/${string}`; readonly title: string }) =>
  HttpApiBuilder.Router.use((router) =>
    Effect.gen(function*() {
      const html = HttpServerResponse.html(page(options.path, options.title))
      yield* router.get(options.path, Effect.succeed(html))
      for (const [file, contentType] of Object.entries(assets)) {
        yield* router.get(
          `${options.path}/${file}`,
          Effect.promise(() => Fs.readFile(Path.join(distDir, file))).pipe(
            Effect.map((bytes) =>
              HttpServerResponse.uint8Array(bytes, {
                contentType,
                headers: { "cache-control": "public, max-age=86400" }
              })
            )
          )
        )
      }
    })
  )

export const swaggerUiLayer = swaggerUi({
  path: "/api",
  title: "Trainer Chat API"
})
