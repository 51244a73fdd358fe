"""The ``ray`` marker of the tests that start a local Ray instance."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "ray: starts a local Ray instance (deselect with -m 'not ray'); needs the ray extra",
    )
