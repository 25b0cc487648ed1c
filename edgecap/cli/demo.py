"""``edgecap demo``: the browser demo (web/demo/) on 127.0.0.1, its web files built on first use."""

from __future__ import annotations

from pathlib import Path

import click

from edgecap.cli.common import fail


@click.command("demo")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="TCP port (0: any free one)."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 lets a phone on the same network open it; the camera then needs HTTPS or localhost).",
)
@click.option("--build-only", is_flag=True, help="Write the web files (web/models/) and exit.")
@click.option(
    "--photos",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A folder of photos the page offers (served at /examples/; default: the repository's examples/).",
)
@click.option("--verbose", is_flag=True, help="Log every request.")
def command(port, host, build_only, photos, verbose):
    """Serve the demo page: caption photos in the browser with LiteRT.js (WebAssembly).

    The page runs the default pipeline of `edgecap caption` (detector, tags, constraints) on the
    built-in int8 models. LiteRT.js cannot feed decode_step's dynamic batch, so each model's web
    file is made from the released one with the step's batch fixed to its beam size
    (web/models/, kept until a release changes). The JavaScript packages come from npm:
    run `npm ci --prefix web` once.
    """
    from edgecap.paths import examples_dir, repo_root
    from edgecap.runtime.metadata import ModelFileError
    from edgecap.web.files import WebFileError, build
    from edgecap.web.serve import make_server

    web = repo_root() / "web"
    if not (web / "demo" / "index.html").is_file():
        fail(f"{web}: no demo page here: `edgecap demo` runs from a clone of the repository")
    try:
        build(web / "models", progress=lambda f: click.echo(f"wrote web/models/{f}", err=True))
    except ImportError as e:
        fail(f"cannot make the web files: {e}")
    except (ModelFileError, WebFileError, OSError) as e:
        fail(str(e))
    if build_only:
        return
    if not (web / "node_modules" / "@litertjs" / "core").is_dir():
        fail(f"{web / 'node_modules'}: the page's packages are not installed: run `npm ci --prefix web` first")
    try:
        server = make_server(web, host, port, verbose, examples=photos or examples_dir())
    except OSError as e:
        fail(f"cannot listen on {host}:{port} ({e.strerror or e})")
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{server.server_address[1]}/demo/"
    click.echo(f"serving {url} (Ctrl-C stops)", err=True)
    click.echo(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
