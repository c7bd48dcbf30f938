"""pluggy markers of the ``ldns_framework`` project (no torch import here: discovery must stay light)."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "ldns_framework"

#: Version of the plugin API. Hook arguments are add-only within a major version; a plugin
#: declaring ``LDNS_PLUGIN_API = N`` with N greater than this is refused with a clear message.
PLUGIN_API_VERSION = 1

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
