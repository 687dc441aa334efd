pytest_plugins = ["tests.support.server"]
