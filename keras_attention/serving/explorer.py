"""The attention explorer: a page that runs a served model on your input and
draws what it attends to.

`keras-attention serve` serves it at `/` and `/ui/<model>` (`--no_ui`
turns it off). The page is one HTML file with its script and style inlined
(`explorer_static/`), so it needs nothing from another host and works
behind a path prefix: it finds the API beside its own address. It reads
the served export's `metadata.json` to know the task, the inputs of each
signature and what the attention's axes mean, then calls the REST API's
`:predict` like any client:

- text in (translation): the answer, the n-best with scores, and the
  attention as a heatmap, output words down and source words across;
- an image (captioning): the caption, the pointed word's attention laid
  over the image, and a strip of every word's map;
- an animated GIF (video): the frames with the pointed word's attention
  over them (where the browser decodes GIFs) and the heatmap.

Two JSON routes serve the page: `GET /ui/api/models` (the models and their
available versions) and `GET /ui/api/models/<name>/metadata?version=N`
(the export's `metadata.json`).
"""

from pathlib import Path

from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from keras_attention.serving.errors import InvalidArgument, ServingError

STATIC = Path(__file__).with_name("explorer_static")


def explorer_routes(repository):
    """The page's routes for a Starlette app serving `repository` (a
    `ModelRepository`).

    Example:

    >>> from keras_attention.serving.repository import ModelRepository
    >>> routes = explorer_routes(ModelRepository([]))
    >>> [route.path for route in routes]
    ['/', '/ui', '/ui/api/models', '/ui/api/models/{name}/metadata', '/ui/{model}']
    """
    page = ((STATIC / "index.html").read_text(encoding="utf-8")
            .replace("/*STYLE*/", (STATIC / "explorer.css").read_text(encoding="utf-8"))
            .replace("/*SCRIPT*/", (STATIC / "explorer.js").read_text(encoding="utf-8")))

    async def page_endpoint(request):
        request.state.model, request.state.api = "", "ui"
        return HTMLResponse(page)

    async def models_endpoint(request):
        request.state.model, request.state.api = "", "ui"
        models = []
        for name in repository.model_names():
            try:
                versions = [served.version for served in repository.states(name)
                            if served.model is not None]
            except ServingError:
                versions = []
            models.append({"name": name, "versions": versions})
        return JSONResponse({"models": models})

    async def metadata_endpoint(request):
        name = request.path_params["name"]
        request.state.model, request.state.api = name, "ui"
        try:
            version = request.query_params.get("version")
            if version is not None and not version.isdigit():
                raise InvalidArgument(f"version must be a number, received {version!r}")
            served = repository.get(name, int(version) if version else None)
            model = served.model
            if model is None:
                raise InvalidArgument(f"model {name} version {served.version} is not loaded")
            return JSONResponse({**model.metadata, "version": served.version})
        except ServingError as error:
            return JSONResponse({"error": error.message}, status_code=error.status)

    return [Route("/", page_endpoint, methods=["GET"]),
            Route("/ui", page_endpoint, methods=["GET"]),
            Route("/ui/api/models", models_endpoint, methods=["GET"]),
            Route("/ui/api/models/{name}/metadata", metadata_endpoint, methods=["GET"]),
            Route("/ui/{model}", page_endpoint, methods=["GET"])]
