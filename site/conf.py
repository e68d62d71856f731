# Sphinx configuration of the rendered course (`make site`, built by tools/site.py).
# The notebooks arrive already executed (by `make test`), so nothing is executed here.
project = "Glass Box"
author = "the Glass Box authors"
extensions = ["myst_nb"]
nb_execution_mode = "off"
nb_merge_streams = True                # one block of printed text per cell, not one per write
myst_enable_extensions = ["dollarmath"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_title = "Glass Box — the rendered course"
html_theme_options = {"show_toc_level": 2}
suppress_warnings = ["mystnb.unknown_mime_type", "misc.highlighting_failure", "myst.header"]
