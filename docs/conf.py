"""Sphinx configuration of diffad's documentation (``make docs``): an API reference built from the
docstrings (numpydoc), beside the markdown pages of ``docs/``."""

project = "diffad"
author = "the diffad authors"
copyright = "2026, the diffad authors"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "numpydoc"]
autosummary_generate = True
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    # scikit-learn's generated metadata-routing methods (documented by scikit-learn)
    "exclude-members": "set_fit_request, set_predict_request, set_score_request, set_decision_function_request, get_metadata_routing",
}
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
exclude_patterns = ["_build", "*.md"]
html_theme = "alabaster"
nitpicky = False
