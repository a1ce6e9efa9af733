"""What the notebooks need from their host, on Databricks and anywhere else.

Databricks gives a notebook ``spark``, ``display`` and ``dbutils`` (widgets). Jupyter, ``jupyter
execute`` and plain ``python notebooks/x.py`` give none or some of them; this module stands in::

    from counterweight import notebook_env
    env = notebook_env.NotebookEnv(globals())
    param, display, show, spark = env.param, env.display, env.show, env.spark(overrides)

Parameters come from a widget when ``dbutils`` exists, else from an environment variable, else a
default. Figures go to Databricks' ``display``, to IPython as a PNG, or to stdout as a title line.
Outside Databricks the session is a local one (``local[2]``, no progress bars) built from the
project config, so notebooks read the lake exactly as the jobs wrote it.
"""

from __future__ import annotations

import io
import os
from typing import Any, Callable, Mapping, Sequence


class NotebookEnv:
    def __init__(self, namespace: Mapping[str, Any]):
        self._ns = namespace
        self._dbutils = namespace.get("dbutils")
        self._display = namespace.get("display") or _builtin_display()
        self.on_databricks = "DATABRICKS_RUNTIME_VERSION" in os.environ

    def param(self, name: str, env_var: str, default: str, label: str) -> str:
        """A Databricks widget's value, else the environment variable, else the default."""
        if self._dbutils is None:
            return os.environ.get(env_var, "").strip() or default
        self._dbutils.widgets.text(name, default, label)
        return self._dbutils.widgets.get(name).strip() or default

    @property
    def display(self) -> Callable[[Any], None]:
        return self._display or _print_display

    def show(self, fig) -> None:
        """Put a matplotlib figure in the cell's output (a PNG outside Databricks), then free it."""
        import matplotlib.pyplot as plt

        if self.on_databricks:
            self.display(fig)
        elif _in_ipython():
            from IPython.display import Image

            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
            self.display(Image(buffer.getvalue()))
        else:
            print(f"[figure: {', '.join(ax.get_title() for ax in fig.axes if ax.get_title())}]")
        plt.close(fig)

    def spark(self, overrides: Sequence[str] = ()):
        """The host's ``spark``, else a local session (local[2]) from the project config."""
        if self._ns.get("spark") is not None:
            return self._ns["spark"]
        from omegaconf import OmegaConf

        from counterweight import config
        from counterweight.session import build_session

        local = OmegaConf.to_container(config.load(["spark.master='local[2]'", "spark.log_level=ERROR", *overrides]),
                                       enum_to_str=True)
        local["spark"]["conf"]["spark.ui.showConsoleProgress"] = "false"  # no progress bars in cell outputs
        return build_session(config.validate(local))


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def _builtin_display():
    """IPython's display when running under IPython (Jupyter puts it in builtins, not globals)."""
    if not _in_ipython():
        return None
    from IPython.display import display

    return display


def _print_display(obj) -> None:
    import pandas as pd

    print(obj.to_string() if isinstance(obj, pd.DataFrame) else obj)
