pytest_plugins = ["tests.support.server", "tests.support.pcsc", "tests.support.browser"]
