"""The ``stockade`` command-line client: wsk-like commands over the REST API, plus ``up``.

The entry point is ``stockade.cli.main:main``; it is not re-exported here because the name would
shadow the ``main`` submodule.
"""

from stockade.cli.client import Client, CliError, exit_code_for_status
from stockade.cli.main import build_parser, run
from stockade.cli.props import Props, load_props

__all__ = ["CliError", "Client", "Props", "build_parser", "exit_code_for_status", "load_props", "run"]
