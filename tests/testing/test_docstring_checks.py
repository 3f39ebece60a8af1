"""`check_docstring_examples` fails on a wrong or missing example."""

import types

import pytest

from tfaction.testing import docstring_checks
from tfaction.testing.docstring_checks import check_docstring_examples


def _module(doc):
    module = types.ModuleType("example_module")
    module.__doc__ = doc
    return module


def test_passes_on_right_examples():
    check_docstring_examples(_module(">>> 1 + 1\n2\n"))
    check_docstring_examples(docstring_checks)


def test_wrong_output_is_reported():
    with pytest.raises(AssertionError, match="1 docstring example"):
        check_docstring_examples(_module(">>> 1 + 1\n3\n"))


def test_a_module_without_examples_fails():
    with pytest.raises(AssertionError, match="no docstring examples"):
        check_docstring_examples(_module("No examples here."))
