"""ldns_plugins: the built-in plugins, each written exactly as a third-party plugin would be.

Each sub-package is one plugin: its ``__init__`` holds the hookimpls (and imports no torch);
its components live in sibling modules that are imported only when used.
"""
