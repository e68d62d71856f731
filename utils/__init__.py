"""Glass Box: the shared, GPU-aware library that every chapter imports.

Modules: ``env`` (device, seeds, scale, threads), ``models`` (the embedded LM and tiny
transformers), ``data`` (offline corpora), ``training`` (a loop with a progress bar),
``plotting``, ``report`` (the "what you measured" table) and ``checks`` (learner checks).
"""
