"""The reliability suite uses the page and pool fixtures of tests/conftest.py."""
