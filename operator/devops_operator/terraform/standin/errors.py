"""The stand-in's own error for a module that is wrong as written (what `terraform validate` reports)."""


class ModuleError(Exception):
    """The module is wrong as written (a terraform validate error)."""
