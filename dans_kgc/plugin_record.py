"""Which plugins this process has loaded: the record the unknown-name errors of the registries and the config
check name.

Apart from the loader (``dans_kgc.plugins``), which reads recipe files through ``dans_kgc.recipes`` and so builds
on the config check: the registries and the config check name what is loaded without importing the loader.
"""

from __future__ import annotations

# what has been imported in this process, in order (dans_kgc.plugins.load_plugin appends)
LOADED: list[str] = []


def loaded_note() -> str:
    """For unknown-name errors: which plugins are loaded, or how to load one."""
    return (
        f"plugins loaded: {', '.join(LOADED)}"
        if LOADED
        else "no plugins loaded (add yours with --plugin MODULE_OR_FILE)"
    )
